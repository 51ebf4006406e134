"""The raw data's schema as an Open Data Contract Standard document (ODCS v3.2), and back.

:func:`contract_document` describes ``[data]`` as one schema object whose
properties are the raw columns: each dtype as an ODCS logical type (with the
physical Arrow type lockstep reads it as), nullability as ``required``,
``min``/``max`` as ``logicalTypeOptions``, allowed values as ``enum`` (RFC
0033), the id as the primary key, and the target, the task and lockstep's
dtype as custom properties (vendor ``lockstep``), so that reading the
document back (:func:`schema_from_contract`) gives the same schema.
:func:`check_contract` validates a document against the standard's JSON
schema (shipped with ``open-data-contract-standard``) and names the first
field at fault.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import jsonschema
import yaml

from lockstep.core.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.core.sections import ColumnSchema

__all__ = ["API_VERSION", "ContractSchema", "check_contract", "contract_document", "contract_yaml", "load_contract",
           "schema_from_contract"]

#: The version of the standard the documents are written in.
API_VERSION = "v3.2.0"

#: lockstep's dtype -> (ODCS logicalType, physicalType: the Arrow type lockstep reads the column as).
_TYPES = {"int": ("integer", "int64"), "float": ("number", "double"), "bool": ("boolean", "bool"),
          "str": ("string", "string"), "datetime": ("timestamp", "timestamp[us]"), "date": ("date", "date32")}
#: An ODCS logicalType -> lockstep's dtype, for contracts written by other tools (no lockstep dtype recorded).
_DTYPES = {"integer": "int", "number": "float", "boolean": "bool", "string": "str", "timestamp": "datetime",
           "date": "date"}
_VENDOR = "lockstep"


@dataclass(frozen=True)
class ContractSchema:
    """What a contract says about the raw data, as ``[data]`` keys.

    Attributes
    ----------
    columns : dict
        ``[data.schema]`` entries (``dtype``, ``nullable``, ``min``, ``max``, ``allowed``, ``description``).
    id_column : str or None
        The primary key, if the contract has one.
    target, task : str or None
        As recorded by lockstep, if it wrote the contract.
    """

    columns: dict[str, dict[str, Any]]
    id_column: str | None = None
    target: str | None = None
    task: str | None = None


def _custom(**values: Any) -> list[dict[str, Any]]:
    return [{"property": key, "value": value, "vendor": _VENDOR} for key, value in values.items()
            if value is not None]


def _bound(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def _property(name: str, spec: ColumnSchema, *, is_id: bool, is_target: bool) -> dict[str, Any]:
    logical, physical = _TYPES[spec.dtype]
    prop: dict[str, Any] = {"name": name, "logicalType": logical, "physicalType": physical,
                            "required": not spec.nullable}
    if spec.description:
        prop["description"] = spec.description
    options = {key: _bound(value) for key, value in (("minimum", spec.min), ("maximum", spec.max))
               if value is not None}
    if spec.dtype == "int":
        options["format"] = "i64"
    if options:
        prop["logicalTypeOptions"] = options
    if spec.allowed is not None:
        prop["enum"] = [{"value": value} for value in spec.allowed]
    if is_id:
        prop.update(primaryKey=True, primaryKeyPosition=1, unique=True)
    prop["customProperties"] = _custom(lockstepDtype=spec.dtype, lockstepRole="target" if is_target else None)
    return prop


def contract_document(config: Config, *, version: str = "1.0.0") -> dict[str, Any]:
    """The ODCS v3.2 document of the project's raw data (``[data]``)."""
    data, name = config.data, config.project.name
    properties = [_property(column, spec, is_id=column == data.id, is_target=column == data.target)
                  for column, spec in data.columns.items()]
    where = data.source or "the [data] sql query"
    return {
        "apiVersion": API_VERSION,
        "kind": "DataContract",
        "id": f"{name}-raw",
        "name": f"{name} raw data",
        "version": version,
        "status": "active",
        "description": {"purpose": f"The raw rows of the lockstep project {name!r}, as `lockstep ingest` "
                                   f"accepts them (rows that break a rule are refused or quarantined).",
                        "usage": f"Read from {where}; `lockstep init --contract` builds [data.schema] from this "
                                 f"document."},
        "schema": [{"name": "raw", "physicalName": "raw", "logicalType": "object", "physicalType": "table",
                    "description": f"One row per {data.id or 'record'}; {data.target!r} is the {data.task} "
                                   f"target.",
                    "properties": properties,
                    "customProperties": _custom(lockstepTarget=data.target, lockstepTask=data.task,
                                                lockstepId=data.id)}],
        "customProperties": _custom(lockstepProject=name),
    }


def contract_yaml(document: dict[str, Any]) -> str:
    """The document as YAML, in the order it was built."""
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def load_contract(text: str, where: str) -> dict[str, Any]:
    """A contract's YAML (or JSON) text, parsed and validated (:func:`check_contract`).

    Raises
    ------
    ConfigError
        Naming ``where`` and the line of a YAML error, or the field that breaks the standard.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{where} is not YAML{line}: {getattr(exc, 'problem', None) or exc}",
                          hint="fix the file's syntax") from None
    check_contract(document, where)
    return document


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    return jsonschema.validators.validator_for(schema)(schema)


def check_contract(document: Any, where: str) -> None:
    """Validate ``document`` against the ODCS JSON schema.

    Raises
    ------
    ConfigError
        Naming ``where`` and the first field that breaks the standard.
    """
    if not isinstance(document, dict):
        raise ConfigError(f"{where} is not a data contract: it holds a {type(document).__name__}, not a mapping",
                          hint="an ODCS document starts with apiVersion, kind: DataContract, id and version")
    errors = sorted(_validator().iter_errors(document), key=lambda e: (len(e.absolute_path), list(map(str,
                                                                                           e.absolute_path))))
    if errors:
        error = errors[0]
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        raise ConfigError(f"{where} is not a valid ODCS data contract: {field or 'the document'}: "
                          f"{error.message}", hint="see https://bitol-io.github.io/open-data-contract-standard/")


def _custom_values(entry: dict[str, Any]) -> dict[str, Any]:
    return {c["property"]: c["value"] for c in entry.get("customProperties") or []
            if isinstance(c, dict) and "property" in c}


def _column(prop: dict[str, Any], where: str) -> dict[str, Any]:
    name = prop["name"]
    dtype = _custom_values(prop).get("lockstepDtype") or _DTYPES.get(prop.get("logicalType", ""))
    if dtype not in _TYPES:
        raise ConfigError(f"{where}: column {name!r} has logicalType {prop.get('logicalType')!r}, which raw data "
                          f"cannot hold", hint="lockstep reads integer, number, boolean, string, timestamp and "
                                               "date columns")
    entry: dict[str, Any] = {"dtype": dtype, "nullable": not prop.get("required", False)}
    options = prop.get("logicalTypeOptions") or {}
    for key, bound in (("minimum", "min"), ("maximum", "max")):
        if key in options:
            value = options[key]
            if dtype == "datetime":
                value = dt.datetime.fromisoformat(value)
            elif dtype == "date":
                value = dt.date.fromisoformat(value)
            entry[bound] = value
    if prop.get("enum"):
        entry["allowed"] = [item["value"] if isinstance(item, dict) else item for item in prop["enum"]]
    if prop.get("description"):
        entry["description"] = prop["description"]
    return entry


def schema_from_contract(document: dict[str, Any], where: str) -> ContractSchema:
    """``[data]``'s schema, id, target and task from a valid contract (:func:`check_contract` first).

    The first schema object is the raw table.

    Raises
    ------
    ConfigError
        If the contract has no table with columns, or a column of a type raw data cannot hold.
    """
    objects = [o for o in document.get("schema") or [] if o.get("properties")]
    if not objects:
        raise ConfigError(f"{where} describes no table with columns", hint="a contract for lockstep has one schema "
                                                                           "object whose properties are the columns")
    table = objects[0]
    columns = {prop["name"]: _column(prop, where) for prop in table["properties"]}
    keys = sorted((p.get("primaryKeyPosition", 1), p["name"]) for p in table["properties"] if p.get("primaryKey"))
    custom = _custom_values(table)
    targets = [p["name"] for p in table["properties"] if _custom_values(p).get("lockstepRole") == "target"]
    return ContractSchema(columns=columns, id_column=keys[0][1] if len(keys) == 1 else custom.get("lockstepId"),
                          target=custom.get("lockstepTarget") or (targets[0] if targets else None),
                          task=custom.get("lockstepTask"))
