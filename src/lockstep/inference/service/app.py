"""The app factory: the routes, the middleware, the exception handlers and the lifespan that loads the model."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from functools import partial

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from lockstep.inference.audit import AuditRecorder
from lockstep.inference.service.loading import ServingModel, load_serving_model
from lockstep.inference.service.middleware import ServiceMiddleware
from lockstep.inference.service.openapi import service_openapi
from lockstep.inference.service.routes import router
from lockstep.inference.service.settings import ServeSettings
from lockstep.inference.service.state import (
    AuditUnavailable,
    ServiceState,
    freeze_heap,
    internal_answer,
    unaudited_answer,
)

__all__ = ["ServiceApp", "create_app", "create_app_from_env"]

_DESCRIPTION = "Predictions from a registered lockstep model, each one recorded in the audit log."


class ServiceApp(FastAPI):
    """The service's FastAPI app, with its own layer (:class:`.ServiceMiddleware`) outside FastAPI's stack.

    Every request goes through that layer first (ids, authentication, limits, metrics); it answers
    ``/predict`` itself and hands every other request to FastAPI. So the hot path skips FastAPI's own
    middleware (errors, telemetry, body limit) as well as its router: about 40 us a request of the 450 the
    service took (docs/benchmarks.md).
    """

    service: ServiceMiddleware

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.service(scope, receive, send)


def create_app(settings: ServeSettings, serving: ServingModel | None = None) -> ServiceApp:
    """The FastAPI application.

    Parameters
    ----------
    settings : ServeSettings
    serving : ServingModel, optional
        An already-loaded model (tests); by default the lifespan loads it.
    """
    state = ServiceState(settings)
    app = ServiceApp(title="lockstep prediction service", version="1", description=_DESCRIPTION,
                  lifespan=partial(_lifespan, state=state, serving=serving))
    state.app = app
    app.state.lockstep = state
    app.include_router(router)
    app.openapi = partial(service_openapi, app, state)  # type: ignore[method-assign]
    app.add_exception_handler(AuditUnavailable, _unaudited)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal)
    app.service = ServiceMiddleware(partial(FastAPI.__call__, app), settings=settings, metrics=state.metrics,
                                    state=state)
    return app


def create_app_from_env() -> ServiceApp:
    """The app for ``uvicorn --factory`` (several workers): settings from ``LOCKSTEP_SERVE_SETTINGS``."""
    return create_app(ServeSettings.from_env())


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI, *, state: ServiceState, serving: ServingModel | None) -> AsyncIterator[None]:
    settings = state.settings
    state.install(serving if serving is not None else await run_in_threadpool(load_serving_model, settings))
    tasks = []
    if settings.audit:
        state.recorder = AuditRecorder(state.audit_log)
        await state.recorder.start()
    if settings.poll_seconds > 0 and not settings.bundle:
        tasks.append(asyncio.create_task(state.poll()))
    freeze_heap()  # what is loaded now lives as long as the service: out of the garbage collector's way
    try:
        yield
    finally:
        gc.unfreeze()
        for task in tasks:
            task.cancel()
        if state.recorder is not None:
            await state.recorder.close()


async def _unaudited(request: Request, exc: AuditUnavailable) -> Response:
    status, body, headers = unaudited_answer(_request_id(request), exc)
    return JSONResponse(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})


async def _internal(request: Request, exc: Exception) -> Response:  # a bug, not the client's fault
    status, body = internal_answer(_request_id(request), exc)
    return JSONResponse(body, status_code=status)


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")
