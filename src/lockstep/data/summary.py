"""Summaries of a snapshot: per column, per split, and of the target."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockstep.data.splits import SPLITS

__all__ = ["column_summary", "split_summary", "summarize_columns"]

_TOP = 5


def _num(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def column_summary(column: pa.ChunkedArray, dtype: str) -> dict:
    """Missing values and, by type, range and moments or the most frequent values."""
    n = len(column)
    missing = column.null_count
    out: dict[str, Any] = {"dtype": dtype, "missing": missing, "missing_rate": round(missing / n, 6) if n else 0.0}
    if dtype in ("int", "float"):
        out.update(
            min=_num(pc.min(column).as_py()),
            max=_num(pc.max(column).as_py()),
            mean=_num(pc.mean(column).as_py()),
            std=_num(pc.stddev(column, ddof=1).as_py()) if n - missing > 1 else None,
        )
    elif dtype in ("datetime", "date"):
        out.update(min=_num(pc.min(column).as_py()), max=_num(pc.max(column).as_py()))
    else:
        counts = pc.value_counts(column.drop_null())
        values, freq = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
        order = sorted(range(len(values)), key=lambda i: (-freq[i], str(values[i])))
        out["distinct"] = len(values)
        out["top"] = [{"value": values[i], "count": freq[i]} for i in order[:_TOP]]
    return out


def summarize_columns(table: pa.Table, schema: dict[str, str]) -> dict[str, dict]:
    """:func:`column_summary` of every column, in table order."""
    return {name: column_summary(table.column(name), schema.get(name, "str")) for name in table.column_names}


def split_summary(table: pa.Table, splits: np.ndarray, target: str, task: str) -> dict[str, dict]:
    """Rows per split, and the target's balance (classification) or distribution (regression)."""
    y = table.column(target)
    out = {}
    for name in SPLITS:
        mask = splits == name
        rows = int(mask.sum())
        part = y.filter(pa.array(mask)) if rows != len(mask) else y
        entry: dict[str, Any] = {"rows": rows, "fraction": round(rows / len(mask), 6) if len(mask) else 0.0}
        if task == "classification":
            counts = pc.value_counts(part.drop_null())
            values, freq = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
            entry["target"] = {
                str(v): {"count": c, "rate": round(c / rows, 6) if rows else 0.0}
                for v, c in sorted(zip(values, freq), key=lambda p: str(p[0]))
            }
        else:
            values = np.asarray(part.drop_null().to_numpy(), dtype=float)
            entry["target"] = {
                "mean": _num(float(values.mean())) if values.size else None,
                "std": _num(float(values.std(ddof=1))) if values.size > 1 else None,
                "min": _num(float(values.min())) if values.size else None,
                "max": _num(float(values.max())) if values.size else None,
            }
        out[name] = entry
    return out
