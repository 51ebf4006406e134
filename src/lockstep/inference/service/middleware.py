"""Request ids, the body size limit, bearer-token authentication and metrics, as one ASGI layer.

It is the app's outermost layer (:class:`~lockstep.inference.service.app.ServiceApp`): it hands ``/predict``
to its endpoint directly (:mod:`.predict`), ahead of FastAPI's middleware and router, and answers a bug there
with the 500 FastAPI would give.
"""

from __future__ import annotations

import hmac
import time
import uuid
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from lockstep.inference.service.asgi import send_json
from lockstep.inference.service.metrics import Metrics
from lockstep.inference.service.predict import predict
from lockstep.inference.service.settings import ServeSettings
from lockstep.inference.service.state import internal_answer

__all__ = ["ServiceMiddleware"]

_KNOWN = {"/predict", "/feedback", "/health", "/ready", "/model", "/metrics", "/admin/reload", "/docs",
          "/openapi.json"}


class ServiceMiddleware:
    """Request ids, body size limit, bearer-token authentication and metrics, as one ASGI layer.

    ``/predict`` is answered here by :func:`~lockstep.inference.service.predict.predict`; every other path
    goes on to the app.
    """

    def __init__(self, app: Any, settings: ServeSettings, metrics: Metrics, state: Any) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.state = state
        self.token = settings.token.encode() if settings.token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
        status_holder = {"status": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder.update(status=message["status"], started=True)
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
            await send(message)

        try:
            if self.token is not None and path != "/health":
                auth = headers.get(b"authorization", b"")
                if not (auth.startswith(b"Bearer ") and hmac.compare_digest(auth[7:], self.token)):
                    await send_json(send_wrapper, 401, {"detail": "missing or wrong bearer token"},
                                    [(b"www-authenticate", b"Bearer")])
                    return
            length = headers.get(b"content-length")
            if length is not None:
                try:
                    too_big = int(length) > self.settings.max_body_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await send_json(send_wrapper, 413, {"detail": f"the body is larger than "
                                                                  f"{self.settings.max_body_bytes} bytes"})
                    return
            if path == "/predict":
                await self._predict(scope, receive, send_wrapper, status_holder)
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            model = getattr(self.state, "model", None)
            self.metrics.request(endpoint, status_holder["status"], model.version_label if model is not None
                                 else "none", time.perf_counter() - start)

    async def _predict(self, scope: Scope, receive: Receive, send: Send, answered: dict) -> None:
        """``/predict``; a bug there gets the 500 of the app's handler of internal errors, then reaches the server's
        log (as Starlette's error middleware does)."""
        try:
            await predict(self.state, scope, receive, send)
        except Exception as exc:
            if not answered["started"]:
                status, body = internal_answer(scope["state"]["request_id"], exc)
                await send_json(send, status, body)
            raise
