"""Ground truth for earlier predictions: the body of ``POST /feedback``, and the ids this process answered."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any

from lockstep.inference.requests import BodyError, load_json

__all__ = ["MAX_REQUEST_ID", "RecentPredictions", "feedback_schema", "parse_feedback"]


#: The longest request id /feedback accepts (the service's own are 32 characters).
MAX_REQUEST_ID = 200


def feedback_schema(schema: Any) -> dict:
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


def parse_feedback(body: bytes, schema: Any) -> tuple[str, list]:
    """``(request_id, labels)`` from a feedback body, or a BodyError naming the field."""
    def problem(field: str | None, rule: str, message: str) -> BodyError:
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
