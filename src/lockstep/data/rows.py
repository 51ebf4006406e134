"""64-bit hashes of rows, computed column by column without a Python loop over rows.

Used to derive stable row ids, to find rows shared between splits and to
tell changed rows apart in diffs. The hash of a row depends only on the
values in the named columns (in the order of their names), not on the file
they came from. The algorithm (version 1, never changed once released,
because derived ids depend on it):

* each value is reduced to 64 bits: integers, timestamps and dates as their
  int64 value, floats as their IEEE-754 bits, booleans as 0 or 1, text as
  XXH3-64 of its UTF-8 bytes; a missing value is ``0x9E3779B97F4A7C15``;
* a column's value hash is ``splitmix64(value ^ seed)`` where ``seed`` is
  XXH3-64 of ``"<column name>\\x1f<logical type>"``;
* a row's hash folds its column hashes in name order:
  ``h = splitmix64(h + column_hash)``, starting from 0.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from lockstep.data.xxh3 import xxh3_64

__all__ = ["derive_row_ids", "row_hashes", "splitmix64"]

_MISSING = 0x9E3779B97F4A7C15


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer on an array of uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _value_bits(column: pa.ChunkedArray) -> tuple[np.ndarray, str]:
    """64 bits per value and the column's logical type name."""
    t = column.type
    if pa.types.is_dictionary(t):
        column = pc.cast(column, t.value_type)
        t = column.type
    missing = np.asarray(pc.is_null(column, nan_is_null=pa.types.is_floating(t)).to_numpy(zero_copy_only=False),
                         dtype=bool)
    if pa.types.is_floating(t):
        filled = pc.fill_null(pc.cast(column, pa.float64()), 0.0).to_numpy()
        bits, kind = filled.view(np.uint64).copy(), "float"
    elif pa.types.is_integer(t) or pa.types.is_boolean(t):
        filled = pc.fill_null(pc.cast(column, pa.int64()), 0).to_numpy()
        bits, kind = filled.view(np.uint64).copy(), "bool" if pa.types.is_boolean(t) else "int"
    elif pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_duration(t):
        as_int = pc.cast(column, pa.int64()) if t.bit_width == 64 else pc.cast(pc.cast(column, pa.int32()),
                                                                             pa.int64())
        bits, kind = pc.fill_null(as_int, 0).to_numpy().view(np.uint64).copy(), str(t)
    else:
        text = pc.cast(column, pa.large_string()) if not pa.types.is_large_string(t) else column
        encoded = pc.dictionary_encode(text).combine_chunks()
        table = xxh3_64(encoded.dictionary) if len(encoded.dictionary) else np.zeros(1, np.uint64)
        indices = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)
        bits, kind = table[indices], "str"
    bits[missing] = np.uint64(_MISSING)
    return bits, kind


def row_hashes(table: pa.Table, columns: list[str] | None = None) -> np.ndarray:
    """A uint64 hash per row over ``columns`` (default: all), independent of column order.

    Parameters
    ----------
    table : pyarrow.Table
    columns : list of str, optional

    Returns
    -------
    numpy.ndarray of uint64, one per row
    """
    names = sorted(columns if columns is not None else table.column_names)
    h = np.zeros(table.num_rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in names:
            bits, kind = _value_bits(table.column(name))
            seed = np.uint64(xxhash.xxh3_64_intdigest(f"{name}\x1f{kind}".encode()))
            h = splitmix64(h + splitmix64(bits ^ seed))
    return h


def derive_row_ids(table: pa.Table) -> pa.Array:
    """Stable ids from row content: 16 hex digits of :func:`row_hashes`, ``-k`` for the k-th repeat.

    Two identical rows get ``<hash>`` and ``<hash>-1``, in order of appearance,
    so ids do not change when rows are appended. A row whose content changes
    gets a new id.
    """
    hashes = row_hashes(table)
    ids = [f"{int(v):016x}" for v in hashes]
    if len(np.unique(hashes)) != len(hashes):
        seen: dict[str, int] = {}
        for i, key in enumerate(ids):
            k = seen.get(key, 0)
            seen[key] = k + 1
            if k:
                ids[i] = f"{key}-{k}"
    return pa.array(ids, pa.string())
