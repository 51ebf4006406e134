"""The app factory: the routes, the middleware, the exception handlers and the lifespan that loads the model."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from functools import partial

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from lockstep.inference.audit import AuditRecorder
from lockstep.inference.service.loading import ServingModel, load_serving_model
from lockstep.inference.service.middleware import ServiceMiddleware
from lockstep.inference.service.openapi import service_openapi
from lockstep.inference.service.routes import router
from lockstep.inference.service.settings import ServeSettings
from lockstep.inference.service.state import AuditUnavailable, ServiceState, unaudited_answer

__all__ = ["create_app", "create_app_from_env"]

_DESCRIPTION = "Predictions from a registered lockstep model, each one recorded in the audit log."


def create_app(settings: ServeSettings, serving: ServingModel | None = None) -> FastAPI:
    """The FastAPI application.

    Parameters
    ----------
    settings : ServeSettings
    serving : ServingModel, optional
        An already-loaded model (tests); by default the lifespan loads it.
    """
    state = ServiceState(settings)
    app = FastAPI(title="lockstep prediction service", version="1", description=_DESCRIPTION,
                  lifespan=partial(_lifespan, state=state, serving=serving))
    state.app = app
    app.state.lockstep = state
    app.include_router(router)
    app.openapi = partial(service_openapi, app, state)  # type: ignore[method-assign]
    app.add_exception_handler(AuditUnavailable, _unaudited)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal)
    app.add_middleware(ServiceMiddleware, settings=settings, metrics=state.metrics, state=state)
    return app


def create_app_from_env() -> FastAPI:
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
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        if state.recorder is not None:
            await state.recorder.close()


async def _unaudited(request: Request, exc: AuditUnavailable) -> Response:
    status, body, headers = unaudited_answer(_request_id(request), exc)
    return JSONResponse(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})


async def _internal(request: Request, exc: Exception) -> Response:  # a bug, not the client's fault
    return JSONResponse({"detail": f"internal error: {type(exc).__name__}", "request_id": _request_id(request)},
                        status_code=500)


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")
