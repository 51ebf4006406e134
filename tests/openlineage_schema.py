"""Validate OpenLineage events against the specification as the official client ships it.

``openlineage-python`` ships the specification as classes generated from its
JSON schema (``openlineage.client.generated``), not as the JSON files. This
module turns those classes back into a JSON schema: each field with its type,
the fields without a default required, no other keys on the core objects
(events, runs, jobs, datasets), and each facet checked against the generated
class whose ``_schemaURL`` it names. lockstep's own facets are checked against
the schema the package ships (``lockstep/docgen/openlineage_facets.json``).
Then :func:`validate` runs ``jsonschema`` on a serialized event.
"""

from __future__ import annotations

import enum
import importlib
import json
import pkgutil
import types
import typing
import uuid
from datetime import datetime
from typing import Any

import attr
import jsonschema
import openlineage.client.generated as generated
from openlineage.client.event_v2 import RunEvent
from openlineage.client.generated.base import BaseEvent, BaseFacet

from lockstep.docgen.openlineage import FACETS_SCHEMA

_CUSTOM = json.loads(FACETS_SCHEMA.read_text())


def _facet_classes() -> dict[str, type]:
    """Every facet class the client generates, by the schema URL its instances carry."""
    out: dict[str, type] = {}
    for module in pkgutil.iter_modules(generated.__path__):
        mod = importlib.import_module(f"{generated.__name__}.{module.name}")
        for value in vars(mod).values():
            if isinstance(value, type) and issubclass(value, BaseFacet) and attr.has(value):
                out[value._get_schema()] = value
    return out


FACETS = _facet_classes()


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def of_class(self, cls: type) -> dict[str, Any]:
        key = f"{cls.__module__}.{cls.__qualname__}"
        if key not in self.defs:
            self.defs[key] = {}  # placeholder: the classes are recursive (schema fields hold fields)
            # each class's annotations in its own module, with typing's names for those imported only for types
            names = {**vars(typing), **vars(importlib.import_module(cls.__module__))}
            hints = typing.get_type_hints(cls, localns=names)
            props, required = {}, []
            for f in attr.fields(cls):
                props[f.name] = self.of_type(hints[f.name])
                if f.default is attr.NOTHING:
                    required.append(f.name)
            if issubclass(cls, BaseFacet):
                required += ["_producer", "_schemaURL"]
            if issubclass(cls, BaseEvent):
                required += ["eventTime", "producer", "schemaURL"]
            self.defs[key] = {"type": "object", "properties": props, "required": sorted(set(required)),
                              "additionalProperties": issubclass(cls, BaseFacet)}
        return {"$ref": f"#/$defs/{key}"}

    def of_type(self, tp: Any) -> dict[str, Any]:
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [self.of_type(a) for a in args]}
        if origin is list:
            return {"type": "array", "items": self.of_type(args[0])}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.of_type(args[1])}
        if tp is type(None):
            return {"type": "null"}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return {"enum": [m.value for m in tp]}
        if isinstance(tp, type) and attr.has(tp):
            return self.of_class(tp)
        simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
        return {"type": simple[tp]} if tp in simple else {}


def _schema_of(cls: type) -> dict[str, Any]:
    builder = _Builder()
    root = builder.of_class(cls)
    return {"$defs": builder.defs, **root}


RUN_EVENT_SCHEMA = _schema_of(RunEvent)


def _facets(event: dict[str, Any]) -> list[dict[str, Any]]:
    found = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
        for key in ("facets", "inputFacets", "outputFacets"):
            found += list(dataset.get(key, {}).values())
    return found


def validate(line: str | dict[str, Any]) -> dict[str, Any]:
    """Check one serialized run event; return it parsed. Raises ``jsonschema.ValidationError`` or ``ValueError``."""
    event = json.loads(line) if isinstance(line, str) else line
    jsonschema.validate(event, RUN_EVENT_SCHEMA)
    uuid.UUID(event["run"]["runId"])
    if "T" not in event["eventTime"] or datetime.fromisoformat(event["eventTime"]).tzinfo is None:
        raise ValueError(f"eventTime {event['eventTime']!r} is not a date-time with a time zone")
    for facet in _facets(event):
        url = facet["_schemaURL"]
        if url in FACETS:
            jsonschema.validate(facet, _schema_of(FACETS[url]))
        else:
            name = url.rsplit("/", 1)[-1]
            if name not in _CUSTOM["$defs"]:
                raise ValueError(f"facet schema {url!r} is neither the client's nor lockstep's")
            jsonschema.validate(facet, {**_CUSTOM, "$ref": f"#/$defs/{name}"})
    return event
