"""Raw rows as the DataFrame a feature pipeline receives, the same way everywhere.

Training, batch prediction and the HTTP service all build the pipeline's
input with :func:`raw_frame`, so a row has the same dtypes whether it comes
alone from a request or with a million others from a snapshot. The dtypes
come from the declared schema, never from the values:

=============  ==========================  =============================
declared       not nullable                nullable
=============  ==========================  =============================
``int``        int64                       float64 (missing is NaN)
``float``      float64                     float64
``bool``       bool                        float64 (1.0, 0.0, NaN)
``str``        object (str)                object (str, NaN; "" is missing)
``datetime``   datetime64[us] (UTC if the data has a time zone)
``date``       datetime64[us] (midnight)
=============  ==========================  =============================

The index is 0..n-1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.sections import ColumnSchema

__all__ = ["feature_frame", "raw_frame"]


def raw_frame(table: pa.Table, schema: dict[str, ColumnSchema], columns: list[str] | None = None) -> pd.DataFrame:
    """The canonical pandas input of a feature pipeline.

    Parameters
    ----------
    table : pyarrow.Table
        Raw rows converted to the declared types (a snapshot, or validated records).
    schema : dict
        ``[data.schema]``.
    columns : list of str, optional
        The columns to include, in this order (default: the table's).

    Returns
    -------
    pandas.DataFrame
    """
    names = columns if columns is not None else table.column_names
    data = {}
    for name in names:
        column = table.column(name)
        spec = schema[name]
        dtype = spec.dtype
        if dtype == "int" and not spec.nullable and column.null_count == 0:
            data[name] = column.to_numpy().astype(np.int64, copy=False)
        elif dtype in ("int", "float") or (dtype == "bool" and spec.nullable):
            data[name] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        elif dtype == "bool":
            if column.null_count:
                data[name] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
            else:
                data[name] = column.to_numpy(zero_copy_only=False).astype(bool)
        elif dtype == "str":
            data[name] = _text_values(column)
        else:  # datetime, date
            if pa.types.is_date(column.type):
                column = pc.cast(column, pa.timestamp("us"))
            data[name] = column.to_pandas().to_numpy() if getattr(column.type, "tz", None) is None \
                else column.to_pandas()
    # copy=False keeps one block per column instead of copying them all into 2-D blocks.
    frame = pd.DataFrame({name: pd.Series(values, dtype=object, copy=False) if schema[name].dtype == "str"
                          else values for name, values in data.items()}, index=pd.RangeIndex(table.num_rows),
                         copy=False)
    for name in names:
        if schema[name].dtype in ("datetime", "date") and not isinstance(frame[name].dtype, pd.DatetimeTZDtype):
            frame[name] = frame[name].astype("datetime64[us]")
    return frame


def _text_values(column: pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """An object array of Python strings (NaN where missing), built from the distinct values.

    Equal values share one string object, which costs one conversion per
    distinct value instead of one per row. An empty string is missing, as it
    is when a CSV file is read, whatever the data came from.
    """
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(pc.cast(column, pa.string()))
    parts = []
    for chunk in column.chunks:
        uniques = np.empty(len(chunk.dictionary) + 1, dtype=object)
        uniques[:-1] = [v if v != "" else np.nan for v in pc.cast(chunk.dictionary, pa.string()).to_pylist()]
        uniques[-1] = np.nan
        codes = pc.fill_null(chunk.indices, len(chunk.dictionary)).to_numpy(zero_copy_only=False)
        parts.append(uniques[codes])
    if not parts:
        return np.empty(0, dtype=object)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def feature_frame(table: pa.Table, columns: list[str] | None = None) -> pd.DataFrame:
    """A feature table (or any Arrow table) as pandas, text as object columns with NaN for missing.

    pandas 3 would give its ``str`` dtype; scikit-learn's encoders and the
    ONNX converters work with object columns, so lockstep uses those
    everywhere a model sees features.
    """
    table = table.select(columns) if columns is not None else table
    data = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            data[name] = pd.Series(_text_values(column), dtype=object)
        else:
            data[name] = column.to_pandas()
    return pd.DataFrame(data, index=pd.RangeIndex(table.num_rows), copy=False)
