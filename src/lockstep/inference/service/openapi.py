"""The service's OpenAPI document, with the request schema of the model it serves."""

from __future__ import annotations

from typing import Any

from fastapi.openapi.utils import get_openapi

from lockstep.inference.service.feedback import feedback_schema
from lockstep.inference.service.state import ServiceState

__all__ = ["service_openapi"]

_RELOAD = {"type": "object", "additionalProperties": False,
           "properties": {"model": {"type": "string", "minLength": 1, "description": "NAME@ALIAS or NAME/VERSION"}}}


def _body(ref: str, required: bool) -> dict:
    return {"required": required, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _predict_body(max_batch: int) -> dict:
    record = {"$ref": "#/components/schemas/Record"}
    return {"required": True, "content": {"application/json": {"schema": {
        "oneOf": [record, {"type": "array", "items": record, "minItems": 1, "maxItems": max_batch}]}}}}


def service_openapi(app: Any, state: ServiceState) -> dict:
    """The OpenAPI document of ``app``: the routes, and the served model's record, feedback and reload bodies.

    Cached on the app until another model is installed.
    """
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    paths = schema.get("paths", {})
    if "post" in paths.get("/predict", {}):
        paths["/predict"]["post"]["requestBody"] = _predict_body(state.settings.max_batch)
    model = state.model
    if model is not None:
        record = model.requests.record.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(record.pop("$defs", {}))
        components["Record"] = record
        components["Feedback"] = feedback_schema(model.schema)
        components["Reload"] = _RELOAD
        for path, ref in (("/feedback", "Feedback"), ("/admin/reload", "Reload")):
            operation = paths.get(path, {}).get("post")
            if operation is not None:
                operation["requestBody"] = _body(ref, required=path == "/feedback")
    app.openapi_schema = schema
    return schema
