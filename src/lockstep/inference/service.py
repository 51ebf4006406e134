"""The HTTP prediction service: FastAPI on uvicorn.

The model is loaded in the app's lifespan (checked against its registered
fingerprint; a model that does not match is refused and the service does
not start). Endpoints:

``POST /predict``
    One record (a JSON object) or a list of records (a JSON array, at most
    ``max_batch``). The answer: predictions, class probabilities, the model's
    name, version and fingerprint, and a request id (also the
    ``X-Request-ID`` header). The response is sent only once the request's
    audit record is durable.
``GET /health``, ``GET /ready``, ``GET /model``, ``GET /metrics``
    Liveness, readiness (model loaded), the model's identity, lineage, input
    schema and metrics, and Prometheus metrics.
``POST /admin/reload``
    Switch to a model version (default: the configured reference, for
    example after the champion alias moved) without dropping requests: each
    request uses the model it started with.

With a token configured, every endpoint but ``/health`` answers 401 without
``Authorization: Bearer <token>``. Oversized bodies and batches get 413,
invalid records 422 naming each field and rule; nothing a client sends is
answered with a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import json
import math
import os
import time
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# This module is imported only to serve, so FastAPI is imported at its top:
# FastAPI resolves the endpoints' annotations in the module's globals.
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool

from lockstep.core.errors import FileSystemError, LockstepError, UserError
from lockstep.inference.audit import AuditRecorder
from lockstep.inference.requests import BodyError, build_request_model, load_json
from lockstep.inference.runtime import OnnxRuntime, SklearnRuntime
from lockstep.profiles.live import LiveDrift
from lockstep.profiles.profile import PROFILE_VERSION
from lockstep.profiles.scores import scores_of
from lockstep.registry.bundle import Bundle
from lockstep.registry.mlflow_registry import Registry
from lockstep.registry.refs import parse_model_ref
from lockstep.store.audit import AuditLog

__all__ = ["ServeSettings", "create_app", "create_app_from_env"]

_ENV = "LOCKSTEP_SERVE_SETTINGS"


@dataclass
class ServeSettings:
    """Everything the service needs, independent of the project folder."""

    store_root: str
    experiment: str
    model: str
    default_name: str
    runtime: str = "sklearn"
    max_batch: int = 1000
    max_body_bytes: int = 1_000_000
    allow_unknown_fields: bool = False
    token: str | None = None
    poll_seconds: float = 0.0
    audit: bool = True
    bundle: str | None = None  # serve this bundle folder instead of a version from the registry
    drift_window: int = 1000  # recent records behind the PSI gauges of /metrics (0: none)
    public_key: str | None = None  # verify the model's signature with this key (refuse it unsigned)

    @property
    def key_path(self) -> Path | None:
        return Path(self.public_key) if self.public_key else None

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        return cls(**json.loads(os.environ[_ENV]))


@dataclass
class ServingModel:
    """A loaded model version with its runtime and request model."""

    runtime: Any
    info: Any
    schema: Any
    requests: Any
    loaded_at: str
    live: Any = None  # LiveDrift of the recent requests, when the version has a reference profile

    @property
    def identity(self) -> dict:
        return {"name": self.info.name, "version": self.info.version, "fingerprint": self.info.fingerprint}


def load_serving_model(settings: ServeSettings, ref_text: str | None = None) -> ServingModel:
    """Load and check a registered version and build its runtime and request model."""
    if settings.bundle:
        if ref_text:
            raise UserError("this service serves a fixed bundle; it cannot switch to another model version")
        registry = Bundle(settings.bundle)
        loaded = registry.load(settings.key_path)
    else:
        registry = Registry(Path(settings.store_root), settings.experiment, settings.key_path)
        loaded = registry.load(parse_model_ref(ref_text or settings.model, settings.default_name))
    if settings.runtime == "onnx":
        runtime = OnnxRuntime(loaded, registry)
    else:
        runtime = SklearnRuntime(loaded)
    requests = build_request_model(loaded.schema, max_batch=settings.max_batch,
                                   allow_unknown=settings.allow_unknown_fields)
    return ServingModel(runtime=runtime, info=loaded.info, schema=loaded.schema, requests=requests,
                        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
                        live=_live_drift(registry, loaded, settings.drift_window))


def check_audit_writable(settings: ServeSettings) -> None:
    """Refuse to serve with an audit log that can never be written (a read-only store, no permission).

    A full disk is not refused: it may pass, and until then the service
    answers 503 and ``/ready`` says why.

    Raises
    ------
    FileSystemError
    """
    if not settings.audit:
        return
    try:
        AuditLog(Path(settings.store_root) / "audit").writer().probe(size=1)
    except FileSystemError as exc:
        cause = exc.__cause__
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            return
        raise FileSystemError(exc.message, hint=(exc.hint or "") + "; or serve without an audit log "
                              "([serve] audit = false) if nothing must be recorded") from None


def _live_drift(source: Any, loaded: Any, window: int) -> Any:
    """The sliding drift window of a model, if it has a reference profile of the current format."""
    if window <= 0:
        return None
    try:
        profile = source.reference_profile(loaded.info)
    except LockstepError:
        return None
    if profile.get("version") != PROFILE_VERSION:
        return None
    return LiveDrift(profile, list(loaded.schema.inputs), window)


class Metrics:
    """Prometheus metrics of one service process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("lockstep_requests_total", "HTTP requests", ["endpoint", "status", "model_version"],
                                registry=self.registry)
        self.errors = Counter("lockstep_errors_total", "HTTP responses with status 400 or more",
                              ["endpoint", "status", "model_version"], registry=self.registry)
        self.latency = Histogram("lockstep_request_latency_seconds", "Request latency", ["endpoint", "model_version"],
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                                 registry=self.registry)
        self.predictions = Counter("lockstep_predicted_records_total", "Records predicted", ["model_version"],
                                   registry=self.registry)
        self.model_info = Gauge("lockstep_model_info", "The model being served", ["name", "version", "fingerprint"],
                                registry=self.registry)
        self.psi = Gauge("lockstep_drift_psi", "PSI of the recent requests against the training data, per raw input "
                         "(raw:<name>) and for the predicted score (prediction)", ["column", "model_version"],
                         registry=self.registry)
        self.window = Gauge("lockstep_drift_window_records", "Records in the window behind lockstep_drift_psi",
                            ["model_version"], registry=self.registry)
        self.feedback = Counter("lockstep_feedback_records_total", "Ground-truth labels received", ["model_version"],
                                registry=self.registry)

    def update_drift(self, model: Any) -> None:
        """Set the PSI gauges from the model's window (called when /metrics is scraped)."""
        live = getattr(model, "live", None)
        if live is None:
            return
        version = str(model.info.version)
        self.window.labels(version).set(len(live))
        for column, value in live.psi().items():
            self.psi.labels(column, version).set(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)


_KNOWN = {"/predict", "/feedback", "/health", "/ready", "/model", "/metrics", "/admin/reload", "/docs",
          "/openapi.json"}


class ServiceMiddleware:
    """Request ids, body size limit, bearer-token authentication and metrics, as one ASGI layer."""

    def __init__(self, app: Any, settings: ServeSettings, metrics: Metrics, state: Any) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.state = state
        self.token = settings.token.encode() if settings.token else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope.get("path", "")
        endpoint = path if path in _KNOWN else "other"
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if 0 < len(given) <= 128 and given.isascii() and given.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status_holder = {"status": 500}

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
            await send(message)

        try:
            if self.token is not None and path != "/health":
                auth = headers.get(b"authorization", b"")
                if not (auth.startswith(b"Bearer ") and hmac.compare_digest(auth[7:], self.token)):
                    await _json(send_wrapper, 401, {"detail": "missing or wrong bearer token"},
                                [(b"www-authenticate", b"Bearer")])
                    return
            length = headers.get(b"content-length")
            if length is not None:
                try:
                    too_big = int(length) > self.settings.max_body_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await _json(send_wrapper, 413, {"detail": f"the body is larger than "
                                                              f"{self.settings.max_body_bytes} bytes"})
                    return
            await self.app(scope, receive, send_wrapper)
        finally:
            model = getattr(self.state, "model", None)
            version = str(model.info.version) if model is not None else "none"
            status = str(status_holder["status"])
            self.metrics.requests.labels(endpoint, status, version).inc()
            if status_holder["status"] >= 400:
                self.metrics.errors.labels(endpoint, status, version).inc()
            self.metrics.latency.labels(endpoint, version).observe(time.perf_counter() - start)


async def _json(send: Any, status: int, payload: dict, headers: list | None = None) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(request: Any, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(413, [{"field": None, "rule": "max_body_bytes",
                                   "message": f"the body is larger than {limit} bytes"}])
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: ServeSettings, serving: ServingModel | None = None):
    """The FastAPI application.

    Parameters
    ----------
    settings : ServeSettings
    serving : ServingModel, optional
        An already-loaded model (tests); by default the lifespan loads it.
    """
    metrics = Metrics()
    recent = RecentPredictions()

    class State:
        model: ServingModel | None = None
        recorder: Any = None
        audit_problem: str | None = None  # why the last audit write failed, until one succeeds again

    state = State()
    audit_log = AuditLog(Path(settings.store_root) / "audit")

    def install(model: ServingModel) -> None:
        old = state.model
        state.model = model
        if old is not None:
            metrics.model_info.remove(old.info.name, str(old.info.version), old.info.fingerprint)
        metrics.model_info.labels(model.info.name, str(model.info.version), model.info.fingerprint).set(1)
        app.openapi_schema = None

    async def poll() -> None:
        while True:
            await asyncio.sleep(settings.poll_seconds)
            with contextlib.suppress(Exception):
                await reload_model(None, only_if_changed=True)

    async def reload_model(ref_text: str | None, only_if_changed: bool = False) -> ServingModel:
        if settings.bundle and (only_if_changed or ref_text is None):
            return state.model  # a bundle is one fixed version
        if only_if_changed and state.model is not None:
            registry = Registry(Path(settings.store_root), settings.experiment, settings.key_path)
            ref = parse_model_ref(settings.model, settings.default_name)
            current = await run_in_threadpool(registry.version, ref)
            if current.version == state.model.info.version and current.name == state.model.info.name:
                return state.model
        model = await run_in_threadpool(load_serving_model, settings, ref_text)
        install(model)
        return model

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        model = serving if serving is not None else await run_in_threadpool(load_serving_model, settings)
        install(model)
        tasks = []
        if settings.audit:
            state.recorder = AuditRecorder(audit_log)
            await state.recorder.start()
        if settings.poll_seconds > 0 and not settings.bundle:
            tasks.append(asyncio.create_task(poll()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            if state.recorder is not None:
                await state.recorder.close()

    app = FastAPI(title="lockstep prediction service", version="1", lifespan=lifespan,
                  description="Predictions from a registered lockstep model, each one recorded in the audit log.")
    app.state.lockstep = state

    async def audit(request: Request, model: ServingModel | None, status: int, rows: int, inputs: Any,
                    outputs: Any, error: Any, started: float, endpoint: str = "/predict",
                    identity: tuple[str, int] | None = None) -> None:
        if state.recorder is None:
            return
        name, version = identity if identity else ((model.info.name, model.info.version) if model else (None, None))
        same = model is not None and (name, version) == (model.info.name, model.info.version)
        record = {
            "request_id": request.scope["state"]["request_id"],
            "time": datetime.now(UTC).isoformat(),
            "endpoint": endpoint, "status": status,
            "client": request.client.host if request.client else None,
            "model_name": name,
            "model_version": version,
            "model_fingerprint": model.info.fingerprint if same else None,
            "runtime": settings.runtime,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "rows": rows, "inputs": inputs, "outputs": outputs, "error": error,
        }
        try:
            await state.recorder.record(record)
        except FileSystemError as exc:
            state.audit_problem = exc.message
            raise AuditUnavailable(exc.message) from exc
        state.audit_problem = None

    def body_schema() -> dict:
        record = {"$ref": "#/components/schemas/Record"}
        max_batch = settings.max_batch
        return {"required": True, "content": {"application/json": {"schema": {
            "oneOf": [record, {"type": "array", "items": record, "minItems": 1, "maxItems": max_batch}]}}}}

    @app.post("/predict", openapi_extra={"requestBody": body_schema()},
              responses={200: {"description": "Predictions"}, 413: {"description": "Body or batch too large"},
                         422: {"description": "Invalid records: each field and rule"}})
    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        model = state.model
        request_id = request.scope["state"]["request_id"]
        body = b""
        try:
            body = await _read_body(request, settings.max_body_bytes)
            records, _ = model.requests.parse(body)
        except BodyError as exc:
            preview = body.decode("utf-8", "replace")[:2000] or None
            await audit(request, model, exc.status, 0, preview, None, exc.detail, started)
            return JSONResponse({"detail": exc.detail, "request_id": request_id}, status_code=exc.status)
        runtime = model.runtime
        if runtime.blocking:
            labels, probabilities = await run_in_threadpool(runtime.predict, records)
        else:
            labels, probabilities = runtime.predict(records)
        payload = {"request_id": request_id, "model": model.identity, "predictions": labels}
        if probabilities is not None:
            payload["probabilities"] = probabilities
        payload["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        metrics.predictions.labels(str(model.info.version)).inc(len(records))
        await audit(request, model, 200, len(records), records,
                    {"predictions": labels, "probabilities": probabilities}, None, started)
        recent.remember(request_id, model.info, len(records))
        if model.live is not None:
            model.live.observe(records, _scores(labels, probabilities, model.schema))
        return Response(json.dumps(payload, default=str), media_type="application/json")

    @app.post("/feedback", responses={200: {"description": "The ground truth was recorded"},
                                      404: {"description": "No prediction with this request id"},
                                      422: {"description": "Invalid feedback"}})
    async def feedback(request: Request) -> Response:
        """Record the ground truth of an earlier prediction: ``{"request_id": ..., "label": ...}``.

        ``label`` is the true class (or value, for a regressor) of a one-record
        request, or a list with one per record of a batch request. The latest
        feedback for a request is the one ``lockstep monitor --quality`` uses.
        """
        started = time.perf_counter()
        model = state.model
        body = b""
        try:
            body = await _read_body(request, settings.max_body_bytes)
            target, labels = _parse_feedback(body, model.schema)
        except BodyError as exc:
            preview = body.decode("utf-8", "replace")[:2000] or None
            await audit(request, model, exc.status, 0, preview, None, exc.detail, started, "/feedback")
            return JSONResponse({"detail": exc.detail, "request_id": request.scope["state"]["request_id"]},
                                status_code=exc.status)
        found = recent.get(target)
        if found is None:  # another worker's, or before a restart: the log's index, never a scan
            found = await run_in_threadpool(audit_log.prediction, target)
        own_id = request.scope["state"]["request_id"]
        if found is None:
            detail = [{"field": "request_id", "rule": "unknown",
                       "message": f"no successful prediction with request id {target!r} in the audit log"}]
            await audit(request, model, 404, 0, {"request_id": target, "labels": labels}, None, detail, started,
                        "/feedback")
            return JSONResponse({"detail": detail, "request_id": own_id}, status_code=404)
        name, version, rows = found
        if len(labels) != rows:
            detail = [{"field": "label", "rule": "length",
                       "message": f"request {target} predicted {rows} record(s): give one label"
                                  + (" (not a list)" if rows == 1 else f" per record, a list of {rows}")}]
            await audit(request, model, 422, 0, {"request_id": target, "labels": labels}, None, detail, started,
                        "/feedback")
            return JSONResponse({"detail": detail, "request_id": own_id}, status_code=422)
        await audit(request, model, 200, rows, {"request_id": target, "labels": labels}, None, None, started,
                    "/feedback", identity=(name, version))
        metrics.feedback.labels(str(version)).inc(rows)
        return JSONResponse({"request_id": own_id, "recorded": target, "rows": rows,
                             "model": {"name": name, "version": version}})

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> Response:
        if state.model is None:
            return JSONResponse({"ready": False, "reason": "the model is not loaded yet"}, status_code=503)
        if state.audit_problem is not None and state.recorder is not None:
            try:  # not ready while the audit log cannot be written; ready again as soon as it can
                await state.recorder.probe()
            except FileSystemError as exc:
                state.audit_problem = exc.message
                return JSONResponse({"ready": False, "reason": exc.message}, status_code=503)
            state.audit_problem = None
        return JSONResponse({"ready": True, "model": state.model.identity})

    # load balancers probe with HEAD; the OpenAPI document keeps one operation per path
    app.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)
    app.add_api_route("/ready", ready, methods=["HEAD"], include_in_schema=False)

    @app.get("/model")
    async def model_info() -> dict:
        model = state.model
        info = model.info
        return {
            **model.identity,
            "aliases": info.aliases,
            "runtime": settings.runtime,
            "loaded_at": model.loaded_at,
            "task": model.schema.task,
            "classes": model.schema.classes,
            "input_schema": model.schema.to_dict()["columns"],
            "inputs": model.schema.inputs,
            "metrics": {"test": info.metric_summary("test"), "valid": info.metric_summary("valid")},
            "lineage": {k[len("lockstep."):]: v for k, v in info.tags.items() if k.startswith("lockstep.")
                        and not k.endswith((".files", ".inputs"))},
        }

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        if state.model is not None:
            await run_in_threadpool(metrics.update_drift, state.model)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/admin/reload")
    async def admin_reload(request: Request) -> Response:
        try:
            body = await _read_body(request, 10_000)
            payload = load_json(body) if body.strip() else {}
        except BodyError as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status)
        ref_text = payload.get("model") if isinstance(payload, dict) else None
        if not isinstance(payload, dict) or set(payload) - {"model"} or not isinstance(ref_text, str | None):
            return JSONResponse({"detail": 'send {"model": "NAME@ALIAS"} or an empty body'}, status_code=422)
        try:
            model = await reload_model(ref_text)
        except Exception as exc:  # the old model keeps serving
            return JSONResponse({"detail": f"reload failed, still serving the previous model: {exc}"},
                                status_code=409)
        return JSONResponse({"reloaded": True, "model": model.identity})

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            model = state.model
            if model is not None:
                record = model.requests.record.model_json_schema(ref_template="#/components/schemas/{model}")
                defs = record.pop("$defs", {})
                components = schema.setdefault("components", {}).setdefault("schemas", {})
                components.update(defs)
                components["Record"] = record
                components["Feedback"] = _feedback_schema(model.schema)
                for path, ref in (("/feedback", "Feedback"), ("/admin/reload", "Reload")):
                    operation = schema.get("paths", {}).get(path, {}).get("post")
                    if operation is not None:
                        operation["requestBody"] = {"required": path == "/feedback", "content": {
                            "application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}
                components["Reload"] = {"type": "object", "additionalProperties": False,
                                        "properties": {"model": {"type": "string", "minLength": 1,
                                                                 "description": "NAME@ALIAS or NAME/VERSION"}}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

    @app.exception_handler(AuditUnavailable)
    async def unaudited(request: Request, exc: AuditUnavailable) -> Response:
        # the prediction was made but its record is not durable: it is not given out (Retry-After: the
        # audit log is checked again by /ready and by the next request)
        return JSONResponse({"detail": f"the prediction could not be recorded in the audit log, so it is not "
                                       f"answered: {exc}", "request_id": request.scope.get("state", {}).get(
                                           "request_id")}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:  # a bug, not the client's fault
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}",
                             "request_id": request.scope.get("state", {}).get("request_id")}, status_code=500)

    app.add_middleware(ServiceMiddleware, settings=settings, metrics=metrics, state=state)
    return app


#: The longest request id /feedback accepts (the service's own are 32 characters).
MAX_REQUEST_ID = 200


def _feedback_schema(schema: Any) -> dict:
    """The OpenAPI schema of a /feedback body: the request id and the true label (one, or one per record)."""
    if schema.task == "classification":
        label: dict = {"enum": [c.item() if hasattr(c, "item") else c for c in schema.classes or []]}
    else:
        label = {"type": "number"}
    return {
        "type": "object", "additionalProperties": False, "required": ["request_id", "label"],
        "properties": {
            "request_id": {"type": "string", "minLength": 1, "maxLength": MAX_REQUEST_ID,
                           "description": "the X-Request-ID of the prediction"},
            "label": {"anyOf": [label, {"type": "array", "items": label, "minItems": 1}],
                      "description": "the true class (or value); a list with one per record of a batch request"},
        },
    }


class AuditUnavailable(Exception):
    """A request's audit record could not be made durable: the request gets a 503, not its answer."""


class RecentPredictions:
    """The request ids this process answered lately: model and rows, to check feedback without the store."""

    def __init__(self, size: int = 200_000) -> None:
        self.size = size
        self.items: OrderedDict[str, tuple[str, int, int]] = OrderedDict()

    def remember(self, request_id: str, info: Any, rows: int) -> None:
        self.items[request_id] = (info.name, info.version, rows)
        if len(self.items) > self.size:
            self.items.popitem(last=False)

    def get(self, request_id: str) -> tuple[str, int, int] | None:
        return self.items.get(request_id)




def _parse_feedback(body: bytes, schema: Any) -> tuple[str, list]:
    """``(request_id, labels)`` from a feedback body, or a BodyError naming the field."""
    def problem(field: str, rule: str, message: str) -> BodyError:
        return BodyError(422, [{"field": field, "rule": rule, "message": message}])

    payload = load_json(body)
    if not isinstance(payload, dict):
        raise problem(None, "type", 'send {"request_id": "...", "label": ...}')
    unknown = sorted(set(payload) - {"request_id", "label", "value"})
    if unknown:
        raise problem(unknown[0], "extra_forbidden", "unknown field; send request_id and label")
    target = payload.get("request_id")
    if not isinstance(target, str) or not target or len(target) > MAX_REQUEST_ID:
        raise problem("request_id", "missing" if target is None else "type",
                      f"the request id of the prediction (its X-Request-ID), as text of 1 to {MAX_REQUEST_ID} "
                      "characters")
    key = "label" if "label" in payload else "value"
    if key not in payload:
        raise problem("label", "missing", "the true class (or value) of the prediction")
    raw = payload[key]
    labels = raw if isinstance(raw, list) else [raw]
    if not labels:
        raise problem(key, "min_length", "an empty list of labels")
    if schema.task == "classification":
        classes = {json.dumps(c): c for c in schema.classes or []}
        out = []
        for i, label in enumerate(labels):
            known = classes.get(json.dumps(label))
            if known is None:
                shown = ", ".join(json.dumps(c) for c in schema.classes or [])
                where = f"{key}[{i}]" if isinstance(raw, list) else key
                raise problem(where, "enum", f"{json.dumps(label)} is not a class of the model ({shown})")
            out.append(known)
        return target, out
    for i, value in enumerate(labels):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            where = f"{key}[{i}]" if isinstance(raw, list) else key
            raise problem(where, "type", "a finite number (the true value)")
    return target, [float(v) for v in labels]


def _scores(labels: Any, probabilities: Any, schema: Any):
    """The monitored score of each answered record (see :func:`lockstep.profiles.scores.scores_of`)."""
    if probabilities is not None:
        classes = [str(c) for c in schema.classes or []]
        return scores_of(None, [[p[c] for c in classes] for p in probabilities])
    return scores_of(labels, None, schema.classes if schema.task == "classification" else None)


def create_app_from_env():
    """The app for ``uvicorn --factory`` (several workers): settings from ``LOCKSTEP_SERVE_SETTINGS``."""
    return create_app(ServeSettings.from_env())
