"""lockstep's column types and their Arrow types, both ways: the one map of them.

``[data.schema]`` declares each column as one of :data:`DTYPES`;
:func:`arrow_type` gives the Arrow type a validated column has, and
:func:`dtype_of` the lockstep type of an Arrow type (what ``lockstep init``
infers, and what the feature table records). The canonical form of the
fingerprints has its own, unit-free names (:func:`lockstep.core.fingerprint.logical_type`).
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["DTYPES", "arrow_type", "dtype_of"]

#: The column types of ``[data.schema]``.
DTYPES = ("int", "float", "bool", "str", "datetime", "date")


def arrow_type(dtype: str, tz: str | None = None) -> pa.DataType:
    """The Arrow type of a validated column of type ``dtype`` (``tz``: a datetime column's time zone)."""
    return {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "str": pa.string(),
        "datetime": pa.timestamp("us", tz=tz),
        "date": pa.date32(),
    }[dtype]


def dtype_of(t: pa.DataType) -> str:
    """The lockstep type of an Arrow type: decimals are floats, and anything else unknown is text.

    Examples
    --------
    >>> dtype_of(pa.int32()), dtype_of(pa.dictionary(pa.int8(), pa.string())), dtype_of(pa.date32())
    ('int', 'str', 'date')
    """
    if pa.types.is_dictionary(t):
        return dtype_of(t.value_type)
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
