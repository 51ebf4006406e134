"""Whether every row of a converted table keeps the declared rules, answered from Arrow alone.

:func:`lockstep.data.schema.validate_table` finds which rows break which rule with pandera, on the
table converted to pandas: a Python object for every text cell, the larger part of validating a
million rows. Most tables break no rule, and :func:`rules_hold` says so from each column's null
count, minimum and maximum, and distinct values, without the conversion; only a table it cannot
vouch for goes through pandera, which names the rows.

It is conservative: True only where pandera finds nothing. Any doubt answers False: a bound on a
date or time (pandas compares those with its own time-zone rules), allowed values of another type
than the column's, a NaN, an Arrow error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.sections import ColumnSchema

__all__ = ["rules_hold"]

#: The Python types of the allowed values that compare with a column's values as pandas' ``isin`` does.
_ALLOWED_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "bool": (bool,)}


def rules_hold(typed: pa.Table, declared: dict[str, ColumnSchema]) -> bool:
    """True when every row of ``typed`` keeps the rules of ``declared``: nullability, ``min``, ``max``, ``allowed``.

    Parameters
    ----------
    typed : pyarrow.Table
        Columns already converted to their declared types (:func:`lockstep.data.schema.convert_table`).
    declared : dict
        Column name to :class:`~lockstep.core.sections.ColumnSchema`, for every column of ``typed``.

    Returns
    -------
    bool
        False also when the answer needs pandera (see the module's notes).
    """
    try:
        return all(_column_holds(typed.column(name), declared[name]) for name in typed.column_names)
    except (pa.ArrowException, TypeError, ValueError, KeyError):
        return False


def _column_holds(column: pa.ChunkedArray, spec: ColumnSchema) -> bool:
    if pa.types.is_floating(column.type) and pc.any(pc.is_nan(column)).as_py():
        return False  # pandas counts NaN as missing, and checks skip it: pandera decides
    if column.null_count and not spec.nullable:
        return False
    if spec.min is not None or spec.max is not None:
        if spec.dtype not in ("int", "float") or not _within(column, spec.min, spec.max):
            return False
    return spec.allowed is None or _allowed(column, spec)


def _within(column: pa.ChunkedArray, low: Any, high: Any) -> bool:
    """Every value of a numeric column between the inclusive bounds (missing values skipped, as pandera does)."""
    for bound in (low, high):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))):
            return False
    extremes = pc.min_max(column)
    smallest, largest = extremes["min"].as_py(), extremes["max"].as_py()
    if smallest is None:  # no value at all
        return True
    return (low is None or smallest >= low) and (high is None or largest <= high)


def _allowed(column: pa.ChunkedArray, spec: ColumnSchema) -> bool:
    """Every value of the column among the allowed ones, when those are all of the column's own Python type."""
    kinds = _ALLOWED_TYPES.get(spec.dtype)
    allowed = spec.allowed or []
    if kinds is None or any(not isinstance(v, kinds) or (bool not in kinds and isinstance(v, bool))
                            for v in allowed):
        return False
    values = set(allowed)
    return all(value is None or value in values for value in pc.unique(column).to_pylist())
