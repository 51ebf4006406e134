"""Reading a request body and sending a JSON answer at the ASGI level, without Starlette's request objects."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from lockstep.inference.requests import BodyError

__all__ = ["ANSWER", "ClientDisconnect", "Receive", "Scope", "Send", "read_body", "send_json"]

#: How answers are encoded (``json.dumps(payload, default=str)``, built once rather than at every call).
ANSWER = json.JSONEncoder(default=str)


async def read_body(receive: Receive, limit: int) -> bytes:
    """The body of a request, from its ASGI ``receive``; refused with 413 as soon as it grows past ``limit``.

    Raises
    ------
    BodyError
        413 when the body is larger than ``limit`` bytes.
    ClientDisconnect
        When the client went away before sending the whole body.
    """
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyError(413, [{"field": None, "rule": "max_body_bytes",
                                   "message": f"the body is larger than {limit} bytes"}])
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(send: Send, status: int, payload: Any, headers: list | None = None) -> None:
    """Send ``payload`` (a JSON-able value, or bytes already encoded) as the whole answer."""
    body = payload if isinstance(payload, bytes) else ANSWER.encode(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
