"""A draft schema inferred from data, for ``lockstep init`` to write and the user to review.

Every column gets a type and nullability, and a *role* in the model:

``numeric``
    integers, floats and booleans;
``categorical``
    text with a moderate number of distinct values;
``date``
    dates and datetimes (the scaffolded feature pipeline turns them into
    numbers: year, month, day, day of week);
``excluded``
    left out of the model by default, with the reason: text that identifies
    rows rather than describes them (a name, a case number: most values
    distinct), free text (long values), and integers that number the rows
    (unique, named like an id or counting 1, 2, 3, ...). A model would
    memorize them, not learn from them, and they would raise false drift
    alarms; the user can add them back.

Observed ranges and categories are *not* written as limits (``min``,
``max``, ``allowed``): data that comes later may lie outside what this
sample shows (a future date, a larger price, a new city), and a limit would
refuse it at ingest, ``predict`` and ``serve``. They are kept as comments for
the user to turn into limits where a value is truly impossible. The target
of a classification gets its classes as ``allowed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockstep.core.dtypes import dtype_of
from lockstep.core.values import plain

__all__ = ["ColumnDraft", "Draft", "infer_draft"]

#: Text columns with at most this many distinct values list them in their comment.
MAX_CATEGORIES = 30
#: Text with more distinct values than this share of its rows (and more than ``ID_MIN_DISTINCT``) is id-like.
ID_DISTINCT_SHARE = 0.5
ID_MIN_DISTINCT = 20
#: Text whose values average more characters than this is free text.
FREE_TEXT_CHARS = 50
_ID_NAMES = ("id", "rownames", "row_id", "index", "key", "uuid")


@dataclass
class ColumnDraft:
    """What :func:`infer_draft` found about one column: its role, why, and what was observed."""

    role: str  # numeric, categorical, date, excluded, id, target
    observed: str = ""
    reason: str = ""
    distinct: int = 0  # distinct values of a text column


@dataclass
class Draft:
    """What :func:`infer_draft` found.

    Attributes
    ----------
    schema : dict
        Column name to a ``[data.schema]`` entry (``dtype``, ``nullable``,
        ``allowed`` for a classification target), in data order.
    columns : dict
        Column name to its :class:`ColumnDraft` (role, observed values, reason).
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
    columns: dict[str, ColumnDraft] = field(default_factory=dict)

    def role(self, role: str) -> list[str]:
        """The columns of one role, in data order."""
        return [name for name, column in self.columns.items() if column.role == role]






def _shown(value: Any) -> str:
    """A value as a person reads it: ``2016-07-02``, ``12.5``, ``3``."""
    value = plain(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _looks_like_id(name: str) -> bool:
    lower = name.lower()
    return lower in _ID_NAMES or lower.endswith(("_id", "id", "_no", "_number", "_key"))


def _text_column(name: str, column: pa.ChunkedArray, present: int) -> ColumnDraft:
    values = column.drop_null()
    distinct = pc.count_distinct(values).as_py() if present else 0
    mean_chars = float(pc.mean(pc.utf8_length(pc.cast(values, "string"))).as_py() or 0.0) if present else 0.0
    counts = f"{distinct:,} distinct value(s) in {present:,} rows"
    if present and mean_chars > FREE_TEXT_CHARS:
        return ColumnDraft("excluded", counts, f"free text (values average {mean_chars:.0f} characters)", distinct)
    if distinct > ID_MIN_DISTINCT and distinct > ID_DISTINCT_SHARE * present:
        return ColumnDraft("excluded", counts, "id-like: most values are distinct, so they name rows rather than "
                           "describe them", distinct)
    if 0 < distinct <= MAX_CATEGORIES:
        shown = sorted(str(v) for v in pc.unique(values).to_pylist())
        return ColumnDraft("categorical", ", ".join(shown[:12]) + (", ..." if len(shown) > 12 else ""),
                           distinct=distinct)
    return ColumnDraft("categorical", counts, distinct=distinct)


def _int_column(name: str, column: pa.ChunkedArray, rows: int) -> ColumnDraft | None:
    """``excluded`` for integers that number the rows, else None."""
    if column.null_count or rows < 3 or pc.count_distinct(column).as_py() != rows:
        return None
    if _looks_like_id(name):
        return ColumnDraft("excluded", "", "id-like: unique per row and named like an identifier")
    values = np.sort(column.to_numpy())
    if np.all(np.diff(values) == 1):
        return ColumnDraft("excluded", "", f"a row number: unique, counting from {values[0]} by 1")
    return None


def infer_draft(table: pa.Table, *, target: str, id_column: str | None, task: str | None) -> Draft:
    """Infer a draft ``[data.schema]``, the task, and each column's role in the model.

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
    n = table.num_rows
    schema: dict[str, dict[str, Any]] = {}
    columns: dict[str, ColumnDraft] = {}
    for name in table.column_names:
        column = table.column(name)
        schema[name] = {"dtype": dtype_of(column.type), "nullable": column.null_count > 0}
        columns[name] = _column_draft(name, column, schema[name]["dtype"], n, target, id_column)
    task, task_note = _task(table, target, schema[target], task)
    notes = _notes(schema, columns, n, task_note)
    candidates = _id_candidates(table, schema, target) if id_column is None else []
    if id_column is None:
        msg = ("no --id given: lockstep derives the id '_row_id' from each row's content "
               "(stable when rows are appended; a row whose values change gets a new id)")
        if candidates:
            msg += f"; '{candidates[0]}' looks like an id: run init again with --id {candidates[0]}"
        notes.append(msg)
    return Draft(schema=schema, task=task, rows=n, notes=notes, id_candidates=candidates, columns=columns)


def _column_draft(name: str, column: pa.ChunkedArray, dtype: str, n: int, target: str, id_column: str | None,
                  ) -> ColumnDraft:
    """A column's role in the model, with what was observed in it (range, missing share)."""
    if name == id_column:
        return ColumnDraft("id")
    present = n - column.null_count
    observed = ""
    if dtype in ("int", "float", "datetime", "date") and present:
        observed = f"{_shown(pc.min(column).as_py())} .. {_shown(pc.max(column).as_py())}"
    if name == target:
        draft = ColumnDraft("target", observed)
    elif dtype == "str":
        draft = _text_column(name, column, present)
    elif dtype in ("datetime", "date"):
        draft = ColumnDraft("date", observed)
    else:
        excluded = _int_column(name, column, n) if dtype == "int" else None
        draft = excluded or ColumnDraft("numeric", observed)
    if column.null_count:
        draft.observed += f"{'; ' if draft.observed else ''}{column.null_count / n:.1%} missing"
    return draft


def _task(table: pa.Table, target: str, target_entry: dict[str, Any], task: str | None) -> tuple[str, str | None]:
    """The task (given, or inferred from the target) and a note when it was inferred; a classification
    target's classes become its allowed values (up to 100)."""
    task_note = None
    if task is None:
        if target_entry["dtype"] in ("str", "bool"):
            task = "classification"
        elif target_entry["dtype"] == "int":
            task = "classification" if pc.count_distinct(table.column(target)).as_py() <= 20 else "regression"
        else:
            task = "regression"
        task_note = f"task '{task}' was inferred from the target '{target}' ({target_entry['dtype']}); " \
                    "pass --task to choose"
    if task == "classification" and target_entry["dtype"] in ("str", "int"):
        classes = sorted(pc.unique(table.column(target).drop_null()).to_pylist())
        if len(classes) <= 100:
            target_entry["allowed"] = classes
    return task, task_note


def _notes(schema: dict[str, dict[str, Any]], columns: dict[str, ColumnDraft], n: int,
           task_note: str | None) -> list[str]:
    """What the user should review in the draft: the schema, the columns left out, dates, missing values."""
    left_out = [f"{name} ({draft.reason})" for name, draft in columns.items() if draft.role == "excluded"]
    notes = [
        f"the schema of {len(schema)} columns was inferred from {n} rows: review every entry in [data.schema]",
        "observed ranges and categories are comments, not limits: add min, max or allowed where a value is "
        "impossible, so that such rows are refused",
    ]
    if left_out:
        notes.append(f"left out of the model ([features] columns): {'; '.join(left_out[:6])}"
                     f"{'; ...' if len(left_out) > 6 else ''}")
    dates = [name for name, column in columns.items() if column.role == "date"]
    if dates:
        notes.append(f"date column(s) {', '.join(dates)} become year, month, day and day of week in features()")
    nullable = [name for name, entry in schema.items() if entry["nullable"]]
    if nullable:
        notes.append(f"columns with missing values are nullable: {', '.join(nullable[:8])}"
                     f"{', ...' if len(nullable) > 8 else ''}")
    else:
        notes.append("no column has missing values, so none is nullable: allow them where they can occur")
    if task_note:
        notes.append(task_note)
    return notes


def _id_candidates(table: pa.Table, schema: dict[str, dict[str, Any]], target: str) -> list[str]:
    """Columns that look like an id: unique, never missing, and named like one."""
    candidates = []
    for name in table.column_names:
        if name == target or schema[name]["dtype"] not in ("int", "str"):
            continue
        column = table.column(name)
        if column.null_count == 0 and pc.count_distinct(column).as_py() == table.num_rows and (
                name.lower() in _ID_NAMES or name.lower().endswith("_id")):
            candidates.append(name)
    return candidates
