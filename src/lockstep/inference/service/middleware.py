"""Request ids, the body size limit, bearer-token authentication and metrics, as one ASGI layer."""

from __future__ import annotations

import hmac
import json
import time
import uuid
from typing import Any

from lockstep.inference.service.metrics import Metrics
from lockstep.inference.service.settings import ServeSettings

__all__ = ["ServiceMiddleware"]

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
