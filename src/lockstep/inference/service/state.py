"""What one service process holds: the model it serves, its audit recorder, metrics and recent predictions."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from lockstep.core.errors import FileSystemError, LockstepError
from lockstep.inference.audit import AuditRecorder
from lockstep.inference.service.feedback import RecentPredictions
from lockstep.inference.service.loading import (
    ServingModel,
    audit_log,
    configured_ref,
    load_serving_model,
    model_source,
)
from lockstep.inference.service.metrics import Metrics
from lockstep.inference.service.settings import ServeSettings
from lockstep.store.audit import AuditLog

__all__ = ["AuditUnavailable", "ServiceState", "internal_answer", "unaudited_answer"]

log = logging.getLogger("lockstep.serve")


class AuditUnavailable(Exception):
    """A request's audit record could not be made durable: the request gets a 503, not its answer."""


def unaudited_answer(request_id: str | None, exc: AuditUnavailable) -> tuple[int, dict, list]:
    """The status, body and headers of a request whose prediction was made but could not be recorded.

    It is not given out; ``Retry-After``: the audit log is checked again by ``/ready`` and by the next request.
    """
    return 503, {"detail": f"the prediction could not be recorded in the audit log, so it is not answered: {exc}",
                 "request_id": request_id}, [(b"retry-after", b"5")]


def internal_answer(request_id: str | None, exc: Exception) -> tuple[int, dict]:
    """The status and body of a request that met a bug in the service: its type, none of its internals."""
    return 500, {"detail": f"internal error: {type(exc).__name__}", "request_id": request_id}


@dataclass
class ServiceState:
    """The state of one service process, kept on ``app.state.lockstep``.

    Attributes
    ----------
    settings : ServeSettings
    model : ServingModel or None
        The model new requests use (a request keeps the one it started with).
    recorder : AuditRecorder or None
        Writes the audit log; None when the service runs without one.
    audit_problem : str or None
        Why the last audit write failed, until one succeeds again (``/ready`` says it).
    """

    settings: ServeSettings
    metrics: Metrics = field(default_factory=Metrics)
    recent: RecentPredictions = field(default_factory=RecentPredictions)
    model: ServingModel | None = None
    recorder: AuditRecorder | None = None
    audit_problem: str | None = None
    app: Any = None  # the FastAPI app, whose cached OpenAPI document depends on the model

    audit_log: AuditLog = field(init=False)  # one for the process: its index connection is reused

    def __post_init__(self) -> None:
        self.audit_log = audit_log(self.settings)

    def serving(self) -> ServingModel:
        """The model being served (the lifespan loads it before any request is answered)."""
        if self.model is None:
            raise LockstepError("the model is not loaded yet")
        return self.model

    def install(self, model: ServingModel) -> None:
        """Serve ``model`` from now on."""
        old, self.model = self.model, model
        if old is not None:
            self.metrics.model_info.remove(old.info.name, str(old.info.version), old.info.fingerprint)
        self.metrics.model_info.labels(model.info.name, str(model.info.version), model.info.fingerprint).set(1)
        if self.app is not None:
            self.app.openapi_schema = None

    async def reload(self, ref_text: str | None, only_if_changed: bool = False) -> ServingModel:
        """Load ``ref_text`` (default: the configured reference) and serve it; with ``only_if_changed``, only
        when the configured reference now names another version."""
        settings = self.settings
        if settings.bundle and self.model is not None and (only_if_changed or ref_text is None):
            return self.model  # a bundle is one fixed version
        if only_if_changed and self.model is not None:
            current = await run_in_threadpool(model_source(settings).version, configured_ref(settings))
            if (current.name, current.version) == (self.model.info.name, self.model.info.version):
                return self.model
        model = await run_in_threadpool(load_serving_model, settings, ref_text)
        self.install(model)
        return model

    async def poll(self) -> None:
        """Follow the configured reference (an alias that moves) every ``poll_seconds``."""
        while True:
            await asyncio.sleep(self.settings.poll_seconds)
            try:
                await self.reload(None, only_if_changed=True)
            except (LockstepError, OSError) as exc:  # the old model keeps serving; the next poll tries again
                log.warning("polling for a new model version failed: %s", exc)
            except Exception:  # noqa: BLE001 - a bug here must not stop the current model from serving
                log.exception("polling for a new model version failed")

    async def record(self, scope: Scope, model: ServingModel | None, status: int, *, started: float,
                     rows: int = 0, inputs: Any = None, outputs: Any = None, error: Any = None,
                     endpoint: str = "/predict", identity: tuple[str, int] | None = None) -> None:
        """Write the audit record of the request of ASGI ``scope`` and wait until it is durable.

        Raises
        ------
        AuditUnavailable
            When it cannot be made durable (a full disk): the request is not answered.
        """
        if self.recorder is None:
            return
        name, version = identity if identity else ((model.info.name, model.info.version) if model else (None, None))
        same = model is not None and (name, version) == (model.info.name, model.info.version)
        client = scope.get("client")
        record = {
            "request_id": scope["state"]["request_id"],
            "time": datetime.now(UTC).isoformat(),
            "endpoint": endpoint, "status": status,
            "client": client[0] if client else None,
            "model_name": name,
            "model_version": version,
            "model_fingerprint": model.info.fingerprint if same and model is not None else None,
            "runtime": self.settings.runtime,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "rows": rows, "inputs": inputs, "outputs": outputs, "error": error,
        }
        try:
            await self.recorder.record(record)
        except FileSystemError as exc:
            self.audit_problem = exc.message
            raise AuditUnavailable(exc.message) from exc
        self.audit_problem = None
