"""The ONNX graph's inputs: the raw columns as the tensors the exported graph takes.

Light on purpose (NumPy and pandas only): the ONNX runtime of ``lockstep
serve`` and ``lockstep predict`` feeds the graph with these, and must not
import the exporter (skl2onnx, and scikit-learn's estimators with it).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from lockstep.core.schema import ModelSchema

__all__ = ["input_kind", "microseconds", "onnx_inputs"]


def input_kind(spec: Any) -> str:
    """The ONNX input kind of a raw column of the schema: dates and times are ``datetime`` inputs, double
    tensors of microseconds since 1970-01-01 UTC (NaN where missing)."""
    if spec.dtype == "int" and not spec.nullable:
        return "int64"
    if spec.dtype in ("int", "float", "bool"):
        return "double"
    if spec.dtype == "str":
        return "string"
    return "datetime"


def microseconds(values: Any) -> Any:
    """Datetimes (a pandas Series, or Python datetimes, dates and None) as float64 microseconds since the epoch,
    NaN where missing; time-zone-aware values are taken in UTC, naive ones as UTC."""
    if isinstance(values, pd.Series):
        series = values.dt.tz_convert("UTC").dt.tz_localize(None) if isinstance(
            values.dtype, pd.DatetimeTZDtype) else values
        ticks = series.to_numpy(dtype="datetime64[us]").astype(np.int64).astype(np.float64)
        ticks[series.isna().to_numpy()] = np.nan
        return ticks
    epoch, tick = dt.datetime(1970, 1, 1), dt.timedelta(microseconds=1)
    out = []
    for value in values:
        if value is None:
            out.append(np.nan)
            continue
        if not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        out.append(float((value - epoch) // tick))
    return np.asarray(out, dtype=np.float64)


def onnx_inputs(schema: ModelSchema, table: pa.Table) -> dict[str, np.ndarray]:
    """The graph's input tensors for validated raw rows (``table``), built like the pipeline's input."""
    frame = schema.frame(table)
    feeds = {}
    for name in schema.inputs:
        kind = input_kind(schema.columns[name])
        values = frame[name]
        if kind == "int64":
            feeds[f"in_{name}"] = values.to_numpy(dtype=np.int64).reshape(-1, 1)
        elif kind == "double":
            feeds[f"in_{name}"] = values.to_numpy(dtype=np.float64, na_value=np.nan).reshape(-1, 1)
        elif kind == "datetime":
            feeds[f"in_{name}"] = microseconds(values).reshape(-1, 1)
        else:
            array = values.to_numpy(dtype=object, copy=True).reshape(-1, 1)
            array[values.isna().to_numpy().reshape(-1, 1)] = ""
            feeds[f"in_{name}"] = array
    return feeds
