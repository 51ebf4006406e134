"""The service's OpenAPI document, with the request schema of the model it serves."""

from __future__ import annotations

from typing import Any

from fastapi.openapi.utils import get_openapi

from lockstep.inference.service import predict
from lockstep.inference.service.feedback import feedback_schema
from lockstep.inference.service.state import ServiceState

__all__ = ["service_openapi"]

_RELOAD = {"type": "object", "additionalProperties": False,
           "properties": {"model": {"type": "string", "minLength": 1, "description": "NAME@ALIAS or NAME/VERSION"}}}


def _body(ref: str, required: bool) -> dict:
    return {"required": required, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _predict_operation(max_batch: int) -> dict:
    """``POST /predict``, which is not on the router (:mod:`.predict`), described as FastAPI would."""
    record = {"$ref": "#/components/schemas/Record"}
    responses: dict[str, Any] = {str(code): {"description": text} for code, text in predict.RESPONSES.items()}
    responses["200"]["content"] = {"application/json": {"schema": {}}}
    return {"summary": "Predict", "description": predict.DESCRIPTION, "operationId": "predict_predict_post",
            "responses": responses,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [record, {"type": "array", "items": record, "minItems": 1, "maxItems": max_batch}]}}}}}


def service_openapi(app: Any, state: ServiceState) -> dict:
    """The OpenAPI document of ``app``: the routes, and the served model's record, feedback and reload bodies.

    Cached on the app until another model is installed.
    """
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    paths = schema["paths"] = {"/predict": {"post": _predict_operation(state.settings.max_batch)},
                               **schema.get("paths", {})}
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
