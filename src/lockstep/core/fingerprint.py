"""Canonical fingerprints of what lockstep versions.

A fingerprint is a 64-character hexadecimal BLAKE3 digest (256 bits). BLAKE3
is a cryptographic hash that runs at several GB/s on one core, so hashing a
table costs about as much as reading it from memory.

Data fingerprint: the canonical form of a table
-----------------------------------------------
:func:`fingerprint_table` hashes the *logical* table: column names, logical
types, values and row order. It does not depend on the file format the
table came from, on how Arrow chunked it, on the physical width of its types
or on the order of its columns. The canonical form, version 1:

1. Columns are taken in the order of their names' UTF-8 bytes (column order
   in the file does not matter; names must be unique).
2. Each column is reduced to a logical type and three byte streams:

   ``missing``
       the 0-based row positions of missing values, each as an unsigned
       64-bit little-endian integer. Missing means null, and also NaN in
       floating-point columns (CSV readers give null where Parquet writers
       may give NaN).
   ``lengths``
       for variable-width types only, the byte length of every value as a
       64-bit little-endian integer (0 for a missing value).
   ``values``
       fixed-width types: each value's little-endian bytes, a missing value
       as zero bytes; variable-width types: the values' bytes concatenated.

   Logical types and their values:

   ================  ==========================================================
   ``int64``         every signed or unsigned integer type, as int64
                     (``uint64`` keeps its own type if a value exceeds int64)
   ``float64``       every floating-point type, as float64 (``-0.0`` and
                     ``0.0`` differ; every NaN is missing)
   ``bool``          one byte, 0 or 1
   ``string``        UTF-8 bytes (string, large string, string view and
                     dictionary-encoded strings alike)
   ``binary``        raw bytes
   ``timestamp[U]``  int64 counts of unit ``U`` since the epoch, where ``U``
                     is ``us`` when every value is a whole number of
                     microseconds and ``ns`` otherwise; a time zone is
                     appended as ``timestamp[U, tz]``
   ``date``          int64 days since 1970-01-01
   ``time[U]``       int64 counts of ``U`` since midnight (``U`` as above)
   ``duration[U]``   int64 counts of ``U`` (``U`` as above)
   ``decimal``       the values' text, as ``string``
   ``null``          (a column of nulls) every row missing
   ``json``          any other type: each value as compact JSON text
   ================  ==========================================================

3. A column digest is ``BLAKE3(BLAKE3(missing) || BLAKE3(lengths) ||
   BLAKE3(values))``; each stream is hashed incrementally, chunk after chunk,
   which is why chunking does not change the result.
4. The table digest is ``BLAKE3`` of the header ``lockstep.table.v1\\n``, the
   row count and the column count (unsigned 64-bit little-endian), then per
   column: the name's UTF-8 length (unsigned 32-bit little-endian), the name,
   the logical type's length and text, and the 32-byte column digest.

Other fingerprints
------------------
:func:`fingerprint_json` hashes canonical JSON (sorted keys, no whitespace),
:func:`fingerprint_file` the bytes of a file; fitted models have theirs in
:mod:`lockstep.core.model_fingerprint`.

Examples
--------
>>> import pyarrow as pa
>>> a = pa.table({"x": pa.array([1, 2], pa.int32()), "y": ["a", None]})
>>> b = pa.table({"y": ["a", None], "x": pa.array([1, 2], pa.int64())})
>>> fingerprint_table(a) == fingerprint_table(b)
True
>>> fingerprint_table(a) == fingerprint_table(pa.table({"x": [1, 3], "y": ["a", None]}))
False
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blake3

from lockstep.core.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
else:  # a skip decision fingerprints files and JSON only: tables (Arrow, NumPy) are for the commands that do work
    np = lazy_module("numpy")
    pa = lazy_module("pyarrow")
    pc = lazy_module("pyarrow.compute")

__all__ = [
    "CANONICAL_VERSION",
    "fingerprint_bytes",
    "fingerprint_file",
    "fingerprint_json",
    "fingerprint_table",
    "logical_type",
    "short",
    "TableHasher",
]

CANONICAL_VERSION = "lockstep.table.v1"
_HEADER = (CANONICAL_VERSION + "\n").encode()
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def short(fingerprint: str | None, n: int = 12) -> str:
    """The first ``n`` characters of a fingerprint, for display."""
    return fingerprint[:n] if fingerprint else "-"


def fingerprint_bytes(data: bytes | memoryview) -> str:
    """BLAKE3 of raw bytes, as 64 hexadecimal characters."""
    return blake3.blake3(data).hexdigest()


def fingerprint_file(path: str | Path, chunk_size: int = 1 << 22) -> str:
    """BLAKE3 of a file's bytes, read in chunks."""
    hasher = blake3.blake3()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            hasher.update(chunk)
    return hasher.hexdigest()


def fingerprint_json(obj: Any) -> str:
    """BLAKE3 of the canonical JSON of ``obj`` (sorted keys, compact separators)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return fingerprint_bytes(text.encode("utf-8"))


def fingerprint_table(table: pa.Table | Any) -> str:
    """Fingerprint the logical content of a table.

    Parameters
    ----------
    table : pyarrow.Table or pandas.DataFrame
        The table. A DataFrame is converted to Arrow first (its index is
        ignored).

    Returns
    -------
    str
        64 hexadecimal characters; see the module documentation for the
        canonical form.

    Raises
    ------
    ValueError
        If two columns have the same name.
    """
    if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
        raise RuntimeError("the canonical form is defined on little-endian machines only")
    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    names = table.column_names
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"column names must be unique, repeated: {dupes}")
    hasher = blake3.blake3(_HEADER)
    hasher.update(_U64.pack(table.num_rows))
    hasher.update(_U64.pack(table.num_columns))
    for name in sorted(names, key=lambda n: n.encode("utf-8")):
        tag, digest = _column_digest(table.column(name))
        name_b, tag_b = name.encode("utf-8"), tag.encode("utf-8")
        hasher.update(_U32.pack(len(name_b)) + name_b + _U32.pack(len(tag_b)) + tag_b + digest)
    return hasher.hexdigest()


def logical_type(arrow_type: pa.DataType) -> str:
    """The logical type name of an Arrow type, as used in the canonical form (unit-free)."""
    t = arrow_type
    if pa.types.is_dictionary(t):
        return logical_type(t.value_type)
    if pa.types.is_integer(t):
        return "int64"
    if pa.types.is_floating(t):
        return "float64"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or _is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.tz}]" if t.tz else "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_duration(t):
        return "duration"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_null(t):
        return "null"
    return "json"


def _is_string_view(t: Any) -> bool:
    return hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t)


class _Streams:
    """The three incremental hashes of one column."""

    __slots__ = ("missing", "lengths", "values")

    def __init__(self) -> None:
        self.missing = blake3.blake3()
        self.lengths = blake3.blake3()
        self.values = blake3.blake3()

    def digest(self) -> bytes:
        return blake3.blake3(self.missing.digest() + self.lengths.digest() + self.values.digest()).digest()


def _column_digest(column: pa.ChunkedArray) -> tuple[str, bytes]:
    tag, streams = _update_column(column, _Streams(), 0)
    return tag, streams.digest()


def _update_column(column: pa.ChunkedArray, streams: _Streams, start: int) -> tuple[str, _Streams]:
    """Feed ``column`` (rows ``start`` onwards of the whole column) into ``streams``; return its logical type."""
    t = column.type
    if pa.types.is_dictionary(t):
        column = pc.cast(column, t.value_type)
        t = column.type
    chunks = [c for c in column.chunks if len(c)]

    if pa.types.is_integer(t):
        if pa.types.is_uint64(t) and _max_above_int64(column):
            _hash_fixed(chunks, pa.uint64(), streams, start=start)
            return "uint64", streams
        _hash_fixed(chunks, pa.int64(), streams, start=start)
        return "int64", streams
    if pa.types.is_floating(t):
        _hash_fixed(chunks, pa.float64(), streams, nan_is_missing=True, start=start)
        return "float64", streams
    if pa.types.is_boolean(t):
        _hash_fixed(chunks, pa.uint8(), streams, start=start)
        return "bool", streams
    if pa.types.is_string(t) or pa.types.is_large_string(t) or _is_string_view(t):
        _hash_variable(chunks, streams, start=start)
        return "string", streams
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        _hash_variable([c.cast(pa.large_binary()) for c in chunks], streams, start=start)
        return "binary", streams
    if pa.types.is_timestamp(t) or pa.types.is_time(t) or pa.types.is_duration(t):
        return _hash_temporal(column, chunks, streams, start), streams
    if pa.types.is_date(t):
        days = [pc.cast(c, pa.date32()).cast(pa.int32()) for c in chunks]
        _hash_fixed(days, pa.int64(), streams, start=start)
        return "date", streams
    if pa.types.is_decimal(t):
        _hash_variable([pc.cast(c, pa.large_string()) for c in chunks], streams, start=start)
        return "decimal", streams
    if pa.types.is_null(t):
        offset = start
        for chunk in chunks:
            _hash_positions(streams.missing, range(offset, offset + len(chunk)))
            offset += len(chunk)
        return "null", streams
    texts = [
        pa.array([None if v is None else json.dumps(v, sort_keys=True, default=str) for v in c.to_pylist()],
                 pa.large_string())
        for c in chunks
    ]
    _hash_variable(texts, streams, start=start)
    return "json", streams


def _max_above_int64(column: pa.ChunkedArray) -> bool:
    top = pc.max(column).as_py()
    return top is not None and top > 2**63 - 1


def _hash_positions(hasher: Any, positions: Any) -> None:
    arr = np.asarray(positions, dtype="<u8")
    if arr.size:
        hasher.update(arr.data.cast("B"))


#: Values per block: blocks are read from memory once and processed in cache.
_BLOCK = 1 << 16


def _validity(chunk: pa.Array) -> Any:
    """A boolean numpy array, True where the chunk has a value, or None when nothing is null."""
    if not chunk.null_count:
        return None
    bitmap = np.frombuffer(chunk.buffers()[0], dtype=np.uint8)
    bits = np.unpackbits(bitmap, bitorder="little", count=chunk.offset + len(chunk))
    return bits[chunk.offset:].astype(bool)


def _hash_fixed(chunks: list[pa.Array], width_type: pa.DataType, streams: _Streams,
                *, nan_is_missing: bool = False, start: int = 0) -> bytes:
    """Hash fixed-width values block by block: missing positions, then values with zeros where missing."""
    np_type = {8: "<i8", 1: "<u1"}[width_type.byte_width] if not pa.types.is_floating(width_type) else "<f8"
    offset = start
    for chunk in chunks:
        if chunk.type != width_type:
            chunk = pc.cast(chunk, width_type)
        n = len(chunk)
        values = np.frombuffer(chunk.buffers()[1], dtype=np_type, count=chunk.offset + n)[chunk.offset:]
        valid = _validity(chunk)
        for start in range(0, n, _BLOCK):
            block = values[start:start + _BLOCK]
            missing = None if valid is None else ~valid[start:start + _BLOCK]
            if nan_is_missing:
                nan = np.isnan(block)
                missing = nan if missing is None else (missing | nan)
            if missing is not None and missing.any():
                positions = np.flatnonzero(missing).astype("<u8") + np.uint64(offset + start)
                streams.missing.update(positions.data.cast("B"))
                block = block.copy()
                block[missing] = 0
            streams.values.update(np.ascontiguousarray(block).data.cast("B"))
        offset += n
    return streams.digest()


def _hash_variable(chunks: list[pa.Array], streams: _Streams, *, start: int = 0) -> bytes:
    """Hash variable-width values block by block: missing positions, byte lengths, bytes."""
    offset = start
    for chunk in chunks:
        if _is_string_view(chunk.type):
            chunk = chunk.cast(pa.large_string())
        valid = _validity(chunk)
        if valid is not None:
            positions = np.flatnonzero(~valid).astype("<u8") + np.uint64(offset)
            streams.missing.update(positions.data.cast("B"))
            textual = pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)
            chunk = pc.fill_null(chunk, pa.scalar("" if textual else b"", chunk.type))
        bufs = chunk.buffers()
        large = pa.types.is_large_string(chunk.type) or pa.types.is_large_binary(chunk.type)
        n = len(chunk)
        offsets = np.frombuffer(bufs[1], dtype="<i8" if large else "<i4", count=chunk.offset + n + 1)
        offsets = offsets[chunk.offset:]
        data = memoryview(bufs[2]) if bufs[2] is not None else memoryview(b"")
        for start in range(0, n, _BLOCK):
            bounds = offsets[start:start + _BLOCK + 1]
            lengths = np.diff(bounds).astype("<u8")
            streams.lengths.update(lengths.data.cast("B"))
            streams.values.update(data[int(bounds[0]):int(bounds[-1])])
        offset += n
    return streams.digest()


_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _hash_temporal(column: pa.ChunkedArray, chunks: list[pa.Array], streams: _Streams, start: int = 0) -> str:
    t = column.type
    kind = "timestamp" if pa.types.is_timestamp(t) else ("time" if pa.types.is_time(t) else "duration")
    unit = t.unit
    ints = [c.view(pa.int64()) if c.type.bit_width == 64 else c.view(pa.int32()).cast(pa.int64())
            for c in chunks]
    # Whole microseconds are hashed in microseconds whatever the stored unit;
    # anything finer keeps nanoseconds. The choice looks at the whole column.
    if unit == "ns" and not all(_all_multiples(c, 1000) for c in ints):
        target, factor, divisor = "ns", 1, 1
    else:
        target = "us"
        factor = _UNIT_NS[unit] // 1000 if unit in ("s", "ms") else 1
        divisor = 1000 if unit == "ns" else 1
    scaled = [_rescale(c, factor, divisor) for c in ints]
    tz = getattr(t, "tz", None)
    tag = f"{kind}[{target}, {tz}]" if tz else f"{kind}[{target}]"
    _hash_fixed(scaled, pa.int64(), streams, start=start)
    return tag


def _all_multiples(chunk: pa.Array, k: int) -> bool:
    if not len(chunk) or chunk.null_count == len(chunk):
        return True
    rem = pc.subtract(chunk, pc.multiply(pc.divide(chunk, k), k))
    return not (pc.any(pc.not_equal(rem, 0)).as_py() or False)


def _rescale(chunk: pa.Array, factor: int, divisor: int) -> pa.Array:
    if factor != 1:
        chunk = pc.multiply_checked(chunk, factor)
    if divisor != 1:
        chunk = pc.divide(chunk, divisor)
    return chunk


class TableHasher:
    """The fingerprint of a table fed in consecutive pieces, equal to :func:`fingerprint_table` of the whole.

    Every piece must have the same columns and logical types (which holds
    for tables converted to a declared schema).

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"a": [1, 2, 3], "b": ["x", None, "z"]})
    >>> h = TableHasher()
    >>> h.update(t.slice(0, 2)); h.update(t.slice(2))
    >>> h.hexdigest() == fingerprint_table(t)
    True
    """

    def __init__(self) -> None:
        self._columns: dict[str, tuple[str, _Streams]] = {}
        self._names: list[str] | None = None
        self.rows = 0

    def update(self, table: pa.Table) -> None:
        names = sorted(table.column_names, key=lambda n: n.encode("utf-8"))
        if self._names is None:
            if len(set(names)) != len(names):
                raise ValueError("column names must be unique")
            self._names = names
        elif names != self._names:
            raise ValueError(f"every piece must have the same columns: {names} vs {self._names}")
        for name in names:
            previous = self._columns.get(name)
            tag, streams = _update_column(table.column(name), previous[1] if previous else _Streams(), self.rows)
            if previous is not None and previous[0] != tag:
                raise ValueError(f"column {name!r} changed logical type between pieces: {previous[0]} then {tag}")
            self._columns[name] = (tag, streams)
        self.rows += table.num_rows

    def hexdigest(self) -> str:
        hasher = blake3.blake3(_HEADER)
        names = self._names or []
        hasher.update(_U64.pack(self.rows))
        hasher.update(_U64.pack(len(names)))
        for name in names:
            tag, streams = self._columns[name]
            name_b, tag_b = name.encode("utf-8"), tag.encode("utf-8")
            hasher.update(_U32.pack(len(name_b)) + name_b + _U32.pack(len(tag_b)) + tag_b + streams.digest())
        return hasher.hexdigest()


def iter_column_digests(table: pa.Table) -> Iterator[tuple[str, str, str]]:
    """Yield ``(name, logical type, column digest)`` for each column, in canonical order.

    Useful to find which columns differ between two versions of a table.
    """
    for name in sorted(table.column_names, key=lambda n: n.encode("utf-8")):
        tag, digest = _column_digest(table.column(name))
        yield name, tag, digest.hex()
