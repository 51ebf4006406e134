"""The service's endpoints but ``/predict`` (:mod:`.predict`), on one ``APIRouter``.

Each reads the process's :class:`ServiceState` from the app.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from lockstep.core.errors import FileSystemError
from lockstep.inference.requests import BodyError, load_json
from lockstep.inference.service.asgi import read_body
from lockstep.inference.service.feedback import parse_feedback
from lockstep.inference.service.predict import preview
from lockstep.inference.service.state import ServiceState

__all__ = ["router"]

# FastAPI resolves the endpoints' annotations in this module's globals: Request and Response are imported above.
router = APIRouter()


def _state(request: Request) -> ServiceState:
    return request.app.state.lockstep


def _refused(request: Request, exc: BodyError) -> JSONResponse:
    return JSONResponse({"detail": exc.detail, "request_id": request.scope["state"]["request_id"]},
                        status_code=exc.status)


@router.post("/feedback", responses={200: {"description": "The ground truth was recorded"},
                                     404: {"description": "No prediction with this request id"},
                                     422: {"description": "Invalid feedback"}})
async def feedback(request: Request) -> Response:
    """Record the ground truth of an earlier prediction: ``{"request_id": ..., "label": ...}``.

    ``label`` is the true class (or value, for a regressor) of a one-record
    request, or a list with one per record of a batch request. The latest
    feedback for a request is the one ``lockstep monitor --quality`` uses.
    """
    started = time.perf_counter()
    state = _state(request)
    model = state.serving()
    body = b""
    try:
        body = await read_body(request.receive, state.settings.max_body_bytes)
        target, labels = parse_feedback(body, model.schema)
    except BodyError as exc:
        await state.record(request.scope, model, exc.status, started=started, inputs=preview(body), error=exc.detail,
                           endpoint="/feedback")
        return _refused(request, exc)
    found = state.recent.get(target)
    if found is None:  # another worker's, or before a restart: the log's index, never a scan
        found = await run_in_threadpool(state.audit_log.prediction, target)
    given = {"request_id": target, "labels": labels}
    if found is None:
        message = f"no successful prediction with request id {target!r} in the audit log"
        return await _feedback_refused(request, state, model, 404, "request_id", "unknown", message, given, started)
    name, version, rows = found
    if len(labels) != rows:
        message = (f"request {target} predicted {rows} record(s): give one label"
                   + (" (not a list)" if rows == 1 else f" per record, a list of {rows}"))
        return await _feedback_refused(request, state, model, 422, "label", "length", message, given, started)
    await state.record(request.scope, model, 200, started=started, rows=rows, inputs=given, endpoint="/feedback",
                       identity=(name, version))
    state.metrics.feedback.labels(str(version)).inc(rows)
    return JSONResponse({"request_id": request.scope["state"]["request_id"], "recorded": target, "rows": rows,
                         "model": {"name": name, "version": version}})


async def _feedback_refused(request: Request, state: ServiceState, model: Any, status: int, field: str, rule: str,
                            message: str, given: dict, started: float) -> JSONResponse:
    detail = [{"field": field, "rule": rule, "message": message}]
    await state.record(request.scope, model, status, started=started, inputs=given, error=detail,
                       endpoint="/feedback")
    return JSONResponse({"detail": detail, "request_id": request.scope["state"]["request_id"]}, status_code=status)


# load balancers probe with HEAD; the OpenAPI document keeps one operation per path
@router.get("/health")
@router.head("/health", include_in_schema=False)
async def health() -> dict:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready")
@router.head("/ready", include_in_schema=False)
async def ready(request: Request) -> Response:
    """Readiness: the model is loaded and the audit log can be written."""
    state = _state(request)
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


@router.get("/model")
async def model_info(request: Request) -> dict:
    """The served version: identity, aliases, runtime, input schema, metrics and lineage."""
    state = _state(request)
    model = state.serving()
    info = model.info
    return {
        **model.identity,
        "aliases": info.aliases,
        "runtime": state.settings.runtime,
        "loaded_at": model.loaded_at,
        "task": model.schema.task,
        "classes": model.schema.classes,
        "input_schema": model.schema.to_dict()["columns"],
        "inputs": model.schema.inputs,
        "metrics": {"test": info.metric_summary("test"), "valid": info.metric_summary("valid")},
        "lineage": {k[len("lockstep."):]: v for k, v in info.tags.items() if k.startswith("lockstep.")
                    and not k.endswith((".files", ".inputs"))},
    }


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics, with the drift of the recent requests computed now."""
    state = _state(request)
    if state.model is not None:
        await run_in_threadpool(state.metrics.update_drift, state.model)
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.post("/admin/reload")
async def admin_reload(request: Request) -> Response:
    """Switch to another version (default: the configured reference) without dropping a request."""
    try:
        body = await read_body(request.receive, 10_000)
        payload = load_json(body) if body.strip() else {}
    except BodyError as exc:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)
    ref_text = payload.get("model") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or set(payload) - {"model"} or not isinstance(ref_text, str | None):
        return JSONResponse({"detail": 'send {"model": "NAME@ALIAS"} or an empty body'}, status_code=422)
    try:
        model = await _state(request).reload(ref_text)
    except Exception as exc:  # noqa: BLE001 - whatever failed, the old model keeps serving and the client is told
        return JSONResponse({"detail": f"reload failed, still serving the previous model: {exc}"},
                            status_code=409)
    return JSONResponse({"reloaded": True, "model": model.identity})
