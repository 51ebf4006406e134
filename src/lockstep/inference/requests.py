"""The service's request model, generated from the model's raw input schema.

Each input column becomes a field: ``int`` a strict integer, ``float`` a
number (integers accepted, text, NaN and infinity refused), ``bool`` a
strict boolean, ``str`` text (an enum of the allowed values when the schema
lists them), ``datetime``/``date`` ISO 8601 text; ``min``/``max`` become
bounds. A nullable column may be null or left out; the others are required.
The id column, when the project has one, is an optional field that is
recorded in the audit log. Unknown fields are refused unless the service
allows them.

The body is one record (a JSON object) or a list of records (a JSON array);
it is validated by pydantic-core straight from the JSON bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import PydanticCustomError

from lockstep.data.schema import INT_LIMIT

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.schema import ModelSchema
    from lockstep.core.sections import ColumnSchema

__all__ = ["BodyError", "RequestModel", "build_request_model"]


class BodyError(Exception):
    """A request body that cannot be used: ``status`` (413 or 422) and ``detail`` (a list of problems)."""

    def __init__(self, status: int, detail: list[dict]) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


#: JSON bodies nested deeper than this are refused (a label or a model reference is never nested).
MAX_DEPTH = 32


def load_json(body: bytes) -> Any:
    """A JSON body as Python values, or a 422 :class:`BodyError` that says why not.

    Beyond malformed JSON, refused as a client's error rather than failing
    the server: nesting deeper than :data:`MAX_DEPTH` (or Python's recursion
    limit), integers of more digits than Python converts (4,300), and text
    holding a lone surrogate (``"\\ud800"``: not text, cannot be written back).
    """
    def refuse(rule: str, message: str) -> BodyError:
        return BodyError(422, [{"field": None, "rule": rule, "message": message}])

    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise refuse("json_invalid", "the body is not JSON") from None
    except RecursionError:
        raise refuse("json_too_deep", f"the body is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # for example an integer of more than 4,300 digits
        raise refuse("json_invalid", f"the body is not usable JSON: {exc}") from None
    stack = [(payload, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise refuse("json_too_deep", f"the body is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise refuse("string_unicode", "a string holds a lone surrogate (such as \\ud800), which is "
                             "not text") from None
        elif isinstance(value, dict):
            stack += [(k, depth + 1) for k in value] + [(v, depth + 1) for v in value.values()]
        elif isinstance(value, list):
            stack += [(v, depth + 1) for v in value]
    return payload


def _one_of(allowed: tuple) -> Any:
    """A validator of allowed integers, with the error a ``Literal`` gives (``literal_error``)."""
    expected = " or ".join(str(a) for a in allowed)

    def check(value: Any) -> Any:
        if value not in allowed:
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value

    return check


def _field_type(spec: ColumnSchema) -> Any:
    bounds: dict[str, Any] = {}
    if spec.dtype in ("int", "float"):  # bounds as declared
        if spec.min is not None:
            bounds["ge"] = spec.min
        if spec.max is not None:
            bounds["le"] = spec.max
    if spec.dtype == "int":  # the schema's range of integers (lockstep.data.schema.INT_LIMIT), on every path
        bounds["ge"] = max(bounds.get("ge", -INT_LIMIT), -INT_LIMIT)
        bounds["le"] = min(bounds.get("le", INT_LIMIT), INT_LIMIT)
    if spec.allowed is not None and spec.dtype == "int":
        # as strict as a plain integer field (no true, false or 1.0), then one of the allowed values
        allowed = tuple(spec.allowed)
        base: Any = Annotated[int, Field(strict=True, json_schema_extra={"enum": list(allowed)}, **bounds),
                              AfterValidator(_one_of(allowed))]
    elif spec.allowed is not None:
        base = Literal[tuple(spec.allowed)]
    elif spec.dtype == "int":
        base = Annotated[int, Field(**bounds)]
    elif spec.dtype == "float":
        base = Annotated[float, Field(allow_inf_nan=False, **bounds)]
    elif spec.dtype == "bool":
        base = bool
    elif spec.dtype == "str":
        base = Annotated[str, Field(min_length=1)]
    elif spec.dtype == "datetime":
        base = dt.datetime
    else:
        base = dt.date
    return base


@dataclass
class RequestModel:
    """The record model and how to validate request bodies with it."""

    record: type[BaseModel]
    many: TypeAdapter
    one: TypeAdapter
    max_batch: int

    def parse(self, body: bytes) -> tuple[list[dict], bool]:
        """Validate a body; return the records (as dicts with every field) and whether it was a list.

        Raises
        ------
        BodyError
            413 for a list longer than ``max_batch``, 422 naming each field and rule otherwise.
        """
        stripped = body.lstrip()
        is_list = stripped[:1] == b"["
        try:
            if is_list:
                values = self.many.validate_json(body)
            else:
                values = [self.one.validate_json(body)]
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            if is_list and any(e["type"] == "too_long" and len(e["loc"]) == 0 for e in errors):
                raise BodyError(413, [{"field": None, "rule": "max_batch",
                                       "message": f"at most {self.max_batch} records per request"}]) from None
            raise BodyError(422, [_problem(e, is_list) for e in errors]) from None
        if is_list and not values:
            raise BodyError(422, [{"record": None, "field": None, "rule": "min_length",
                                   "message": "the list of records is empty"}])
        return [v.model_dump() for v in values], is_list

    def json_schema(self) -> dict:
        """The OpenAPI schema of a request body: one record or a list of records."""
        record = self.record.model_json_schema(ref_template="#/components/schemas/{model}")
        return record


def _problem(error: Any, is_list: bool) -> dict:
    loc = list(error.get("loc", ()))
    record = loc.pop(0) if is_list and loc and isinstance(loc[0], int) else (0 if not is_list else None)
    field = ".".join(str(p) for p in loc) or None
    problem = {"record": record, "field": field, "rule": error.get("type"), "message": error.get("msg")}
    if "input" in error and error.get("type") not in ("missing", "json_invalid"):
        value = error["input"]
        if isinstance(value, float) and not math.isfinite(value):
            problem["input"] = repr(value)  # JSON cannot carry inf or nan: echo them as text
        elif isinstance(value, (str, int, float, bool)) or value is None:
            problem["input"] = value
    return problem


def build_request_model(schema: ModelSchema, *, max_batch: int, allow_unknown: bool) -> RequestModel:
    """The pydantic model of one record of ``schema``'s inputs."""
    fields: dict[str, Any] = {}
    for name in schema.inputs:
        spec = schema.columns[name]
        kind = _field_type(spec)
        description = spec.description or f"{spec.dtype}" + (", may be null" if spec.nullable else "")
        if spec.nullable:
            fields[name] = (kind | None, Field(default=None, description=description))
        else:
            fields[name] = (kind, Field(..., description=description))
    if schema.id_column and schema.id_column not in fields:
        id_type = int if schema.columns[schema.id_column].dtype == "int" else str
        fields[schema.id_column] = (id_type | None, Field(default=None, description="optional id, recorded in "
                                                                                     "the audit log"))
    config = ConfigDict(extra="ignore" if allow_unknown else "forbid", strict=True, title="Record")
    record = create_model("Record", __config__=config, **fields)
    many: TypeAdapter[Any] = TypeAdapter(Annotated[list[record], Field(max_length=max_batch)])  # type: ignore[valid-type, arg-type]
    return RequestModel(record=record, many=many, one=TypeAdapter(record), max_batch=max_batch)
