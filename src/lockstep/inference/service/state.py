"""What one service process holds: the model it serves, its audit recorder, metrics and recent predictions."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
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

__all__ = ["AuditUnavailable", "ServiceState", "freeze_heap", "internal_answer", "unaudited_answer"]

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


def freeze_heap() -> None:
    """Collect, then put every object alive now out of the cyclic garbage collector's reach (``gc.freeze``).

    What a service process holds for its life (the libraries, the model and its runtime: about 180,000
    objects for the telco example) was traversed by every full collection: a pause of about 140 ms in
    which no request was answered, and about 6 us of CPU a request on average (docs/benchmarks.md).
    Frozen objects are still freed by reference counting; only their reference cycles are not collected,
    which is why a model that is replaced is unfrozen first (:meth:`ServiceState.install`).
    """
    gc.collect()
    gc.freeze()


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
    _retired: list[weakref.ref] = field(default_factory=list, init=False, repr=False)  # replaced models

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
            self._retire(old)
        self.metrics.model_info.labels(model.info.name, str(model.info.version), model.info.fingerprint).set(1)
        if self.app is not None:
            self.app.openapi_schema = None

    def _retire(self, old: ServingModel, every: float = 1.0) -> None:
        """Let the replaced model's reference cycles be collected, then freeze the heap again once it is gone.

        Requests that started with it keep it alive until they end, so the heap is unfrozen now and frozen
        again (:func:`freeze_heap`) only when no replaced model is left, checked every ``every`` seconds.
        """
        if not gc.get_freeze_count():
            return  # not frozen (the lifespan has not started, or has ended): nothing is kept from the collector
        gc.unfreeze()
        self._retired.append(weakref.ref(old))
        if len(self._retired) > 1:
            return  # the check of an earlier replacement is under way, and now waits for this one too
        loop = asyncio.get_running_loop()

        def check() -> None:
            gc.collect()
            self._retired = [ref for ref in self._retired if ref() is not None]
            if self._retired:
                loop.call_later(every, check)
            else:
                gc.freeze()

        loop.call_later(every, check)

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
