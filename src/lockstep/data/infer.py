"""A draft schema inferred from data, for ``lockstep init`` to write and the user to review."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["Draft", "infer_draft"]

#: Text columns with at most this many distinct values get ``allowed`` categories.
MAX_CATEGORIES = 30
_ID_NAMES = ("id", "rownames", "row_id", "index", "key", "uuid")


@dataclass
class Draft:
    """What :func:`infer_draft` found.

    Attributes
    ----------
    schema : dict
        Column name to a ``[data.schema]`` entry (``dtype``, ``nullable``,
        ``min``, ``max``, ``allowed``), in data order.
    task : str
    notes : list of str
        What the user should review.
    id_candidates : list of str
        Columns that look like ids (unique, named like one), when no id was given.
    """

    schema: dict[str, dict[str, Any]]
    task: str
    rows: int
    notes: list[str] = field(default_factory=list)
    id_candidates: list[str] = field(default_factory=list)


def _dtype(t: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return _dtype(t.value_type)
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_timestamp(t):
        return "datetime"
    if pa.types.is_date(t):
        return "date"
    return "str"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def infer_draft(table: pa.Table, *, target: str, id_column: str | None, task: str | None) -> Draft:
    """Infer a draft ``[data.schema]`` and the task from a table.

    Parameters
    ----------
    table : pyarrow.Table
        The raw data as read.
    target : str
        The target column (must exist).
    id_column : str, optional
        The id column (must exist and be unique), or ``None`` to derive ids.
    task : {"classification", "regression"}, optional
        Inferred from the target when not given: text or boolean targets, and
        integers with at most 20 distinct values, are classification.

    Returns
    -------
    Draft
    """
    import pyarrow.compute as pc

    n = table.num_rows
    schema: dict[str, dict[str, Any]] = {}
    categorical, nullable_cols = [], []
    for name in table.column_names:
        column = table.column(name)
        dtype = _dtype(column.type)
        entry: dict[str, Any] = {"dtype": dtype, "nullable": column.null_count > 0}
        if entry["nullable"]:
            nullable_cols.append(name)
        if name != id_column:
            if dtype in ("int", "float", "datetime", "date") and column.null_count < n:
                lo, hi = pc.min(column).as_py(), pc.max(column).as_py()
                if dtype == "float":
                    lo, hi = float(lo), float(hi)
                entry["min"], entry["max"] = _plain(lo), _plain(hi)
            if dtype == "str":
                distinct = pc.count_distinct(column.drop_null()).as_py()
                if 0 < distinct <= MAX_CATEGORIES and distinct <= max(2, (n - column.null_count) // 2):
                    entry["allowed"] = sorted(v for v in pc.unique(column.drop_null()).to_pylist())
                    categorical.append(name)
        schema[name] = entry

    target_entry = schema[target]
    if task is None:
        if target_entry["dtype"] in ("str", "bool"):
            task = "classification"
        elif target_entry["dtype"] == "int":
            task = "classification" if pc.count_distinct(table.column(target)).as_py() <= 20 else "regression"
        else:
            task = "regression"
        task_note = f"task '{task}' was inferred from the target '{target}' ({target_entry['dtype']}); " \
                    "pass --task to choose"
    else:
        task_note = None
    if task == "classification" and target_entry["dtype"] in ("str", "int", "bool") and "allowed" not in target_entry:
        classes = sorted(pc.unique(table.column(target).drop_null()).to_pylist())
        if target_entry["dtype"] != "bool" and len(classes) <= 100:
            target_entry["allowed"] = classes
        target_entry.pop("min", None)
        target_entry.pop("max", None)

    notes = [
        f"the schema of {len(schema)} columns was inferred from {n} rows: review every entry in [data.schema]",
        "min/max are the observed ranges: widen them to what valid data can be, or new data will be refused",
    ]
    if categorical:
        notes.append(f"{len(categorical)} text column(s) got allowed categories from the data "
                     f"({', '.join(categorical[:6])}{', ...' if len(categorical) > 6 else ''}): "
                     "add the categories that can occur but are not in this sample")
    if nullable_cols:
        notes.append(f"columns with missing values are nullable: {', '.join(nullable_cols[:8])}"
                     f"{', ...' if len(nullable_cols) > 8 else ''}")
    else:
        notes.append("no column has missing values, so none is nullable: allow them where they can occur")
    if task_note:
        notes.append(task_note)

    candidates = []
    if id_column is None:
        for name in table.column_names:
            if name == target or schema[name]["dtype"] not in ("int", "str"):
                continue
            column = table.column(name)
            if column.null_count == 0 and pc.count_distinct(column).as_py() == n and (
                    name.lower() in _ID_NAMES or name.lower().endswith("_id")):
                candidates.append(name)
        msg = ("no --id given: lockstep derives the id '_row_id' from each row's content "
               "(stable when rows are appended; a row whose values change gets a new id)")
        if candidates:
            msg += f"; '{candidates[0]}' looks like an id: run init again with --id {candidates[0]}"
        notes.append(msg)
    return Draft(schema=schema, task=task, rows=n, notes=notes, id_candidates=candidates)
