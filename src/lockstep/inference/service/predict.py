"""``POST /predict``, the hot path: a plain ASGI endpoint that the service's outermost layer calls directly.

Every other endpoint goes through FastAPI (its middleware, then its router,
:mod:`.routes`); this one does not need what they add per request (error
and telemetry wrappers, a body limit, route matching, dependency solving, a
request object, an exit stack, exception wrapping): about 0.15 ms of the
service's time per request, more than the model itself (docs/benchmarks.md).
Its contract is the same: the request id, the authentication, the size limit
and the metrics come from that layer (:mod:`.middleware`), the body is
validated by the model's request model, the answer is sent only once its
audit record is durable (503 otherwise), and a bug gets the 500 of the app's
handler of internal errors. :mod:`.openapi` documents it.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool

from lockstep.inference.requests import BodyError
from lockstep.inference.service.asgi import ANSWER, ClientDisconnect, Receive, Scope, Send, read_body, send_json
from lockstep.inference.service.state import AuditUnavailable, ServiceState, unaudited_answer
from lockstep.profiles.scores import answer_scores

__all__ = ["DESCRIPTION", "RESPONSES", "predict"]

DESCRIPTION = "Predictions for one record (a JSON object) or a batch (a JSON array), sent once they are audited."
RESPONSES = {200: "Predictions", 413: "Body or batch too large", 422: "Invalid records: each field and rule"}


def preview(body: bytes) -> str | None:
    """The start of a refused body, as text, for its audit record."""
    return body.decode("utf-8", "replace")[:2000] or None


async def predict(state: ServiceState, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one ``/predict`` request (any method: only POST is allowed)."""
    if scope["method"] != "POST":
        await send_json(send, 405, {"detail": "Method Not Allowed"}, [(b"allow", b"POST")])
        return
    started = time.perf_counter()
    model = state.serving()
    request_id = scope["state"]["request_id"]
    body = b""
    try:
        try:
            body = await read_body(receive, state.settings.max_body_bytes)
            records, _ = model.requests.parse(body)
        except BodyError as exc:
            await state.record(scope, model, exc.status, started=started, inputs=preview(body), error=exc.detail)
            await send_json(send, exc.status, {"detail": exc.detail, "request_id": request_id})
            return
        answer = await _answer(state, model, scope, records, started)
    except ClientDisconnect:  # nobody to answer, nothing predicted
        return
    except AuditUnavailable as exc:
        await send_json(send, *unaudited_answer(request_id, exc))
        return
    await send_json(send, 200, answer)


async def _answer(state: ServiceState, model: Any, scope: Scope, records: list[dict], started: float) -> bytes:
    """Predict ``records``, record them durably, and return the encoded answer."""
    runtime = model.runtime
    if runtime.blocking:
        labels, probabilities = await run_in_threadpool(runtime.predict, records)
    else:
        labels, probabilities = runtime.predict(records)
    payload: dict[str, Any] = {"request_id": scope["state"]["request_id"], "model": model.identity,
                               "predictions": labels}
    if probabilities is not None:
        payload["probabilities"] = probabilities
    payload["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    state.metrics.predicted(model.version_label, len(records))
    await state.record(scope, model, 200, started=started, rows=len(records), inputs=records,
                       outputs={"predictions": labels, "probabilities": probabilities})
    state.recent.remember(payload["request_id"], model.info, len(records))
    if model.live is not None:
        model.live.observe(records, answer_scores(labels, probabilities, model.schema))
    return ANSWER.encode(payload).encode()
