"""XXH3-64 (xxHash 0.8, no seed) of every value of a binary Arrow array at once, in NumPy.

The stable splits hash ``salt + "\\x1f" + id`` for every row with
``xxhash.xxh3_64_intdigest``; calling it a million times from Python costs
more than the hashing (a bytes object per row, then a call per row). This
module computes the same 64-bit values with whole-array operations: the keys
are read where they lie in the array's data buffer, eight or four bytes at a
time, through a view with a stride of one byte, and every key of a length
class goes through the same arithmetic. Keys longer than 240 bytes (XXH3's
long-input loop) are rare for ids and are hashed by the library, one by one.

``tests/test_xxh3.py`` checks every length from 0 to 300 against the
library; a difference would move rows between splits.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import xxhash

__all__ = ["xxh3_64"]

_U64 = np.uint64
_M32 = _U64(0xFFFFFFFF)
_PRIME64_1 = _U64(0x9E3779B185EBCA87)
_PRIME64_2 = _U64(0xC2B2AE3D27D4EB4F)
_PRIME64_3 = _U64(0x165667B19E3779F9)
_PRIME_MX1 = _U64(0x165667919E3779F9)
_PRIME_MX2 = _U64(0x9FB21C651E98DF25)

#: XXH3's default secret (the first 136 bytes are all that inputs of up to 240 bytes read).
_SECRET = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
    "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e"
    "2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e")
_MIDSIZE_MAX = 240
#: Keys hashed together: 256 KiB per temporary array.
_BLOCK = 1 << 12


def _secret64(offset: int) -> np.uint64:
    return _U64(int.from_bytes(_SECRET[offset:offset + 8], "little"))


def _secret32(offset: int) -> np.uint64:
    return _U64(int.from_bytes(_SECRET[offset:offset + 4], "little"))


def xxh3_64(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The XXH3-64 hash of every value of ``values``, as ``uint64``: ``xxhash.xxh3_64_intdigest`` of each.

    Parameters
    ----------
    values : pyarrow.Array or pyarrow.ChunkedArray
        Binary or text values, none missing.

    Returns
    -------
    numpy.ndarray of uint64
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = values.cast(pa.large_binary() if pa.types.is_large_string(values.type) else pa.binary())
    if values.null_count:
        raise ValueError("cannot hash missing values")
    _, offsets_buffer, data_buffer = values.buffers()
    width = np.dtype(np.int64 if pa.types.is_large_binary(values.type) else np.int32)
    offsets = np.frombuffer(offsets_buffer, dtype=width, count=len(values) + 1, offset=values.offset * width.itemsize)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    reader, out = _Reader(data), np.empty(len(values), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for block in range(0, len(values), _BLOCK):  # temporaries that stay in cache, their memory reused
            bounds = offsets[block:block + _BLOCK + 1].astype(np.int64)
            out[block:block + len(bounds) - 1] = _hash_block(reader, bounds[:-1], np.diff(bounds))
    return out


def _hash_block(reader: _Reader, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The hashes of the keys at ``starts``, of ``lengths`` bytes: each class of lengths through its kernel."""
    hashes = np.empty(len(starts), dtype=np.uint64)
    for low, high, kernel in _CLASSES:
        chosen = (lengths >= low) & (lengths <= high)
        count = int(chosen.sum())
        if count == len(starts):
            return kernel(reader, starts, lengths)
        if count:
            hashes[chosen] = kernel(reader, starts[chosen], lengths[chosen])
    for i in np.flatnonzero(lengths > _MIDSIZE_MAX):  # XXH3's long inputs: the library's
        hashes[i] = xxhash.xxh3_64_intdigest(reader.data[starts[i]:starts[i] + lengths[i]].tobytes())
    return hashes


class _Reader:
    """Little-endian words at any byte position of ``data``: views of 8 and 4 bytes with a stride of one byte."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.words64 = _strided(data, np.dtype("<u8"))
        self.words32 = _strided(data, np.dtype("<u4"))

    def read64(self, positions: np.ndarray) -> np.ndarray:
        return self.words64[positions]

    def read32(self, positions: np.ndarray) -> np.ndarray:
        return self.words32[positions].astype(np.uint64)

    def byte(self, positions: np.ndarray) -> np.ndarray:
        return self.data[positions].astype(np.uint64)


def _strided(data: np.ndarray, dtype: np.dtype) -> np.ndarray:
    count = len(data) - dtype.itemsize + 1
    if count <= 0:
        return np.zeros(0, dtype)
    return np.ndarray(shape=(count,), dtype=dtype, buffer=data, offset=0, strides=(1,))


def _mul128_fold64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The low and high halves of the 128-bit product ``a * b``, xored (from four 32-bit products)."""
    a_lo, a_hi, b_lo, b_hi = a & _M32, a >> _U64(32), b & _M32, b >> _U64(32)
    lo_lo, hi_lo, lo_hi, hi_hi = a_lo * b_lo, a_hi * b_lo, a_lo * b_hi, a_hi * b_hi
    cross = (lo_lo >> _U64(32)) + (hi_lo & _M32) + lo_hi
    upper = (hi_lo >> _U64(32)) + (cross >> _U64(32)) + hi_hi
    lower = (cross << _U64(32)) | (lo_lo & _M32)
    return lower ^ upper


def _avalanche(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _U64(37))
    h = h * _PRIME_MX1
    return h ^ (h >> _U64(32))


def _avalanche64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _U64(33))
    h = h * _PRIME64_2
    h = h ^ (h >> _U64(29))
    h = h * _PRIME64_3
    return h ^ (h >> _U64(32))


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << _U64(r)) | (x >> _U64(64 - r))


def _swap64(x: np.ndarray) -> np.ndarray:
    return x.byteswap()


def _empty(reader: _Reader, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return _avalanche64(np.full(len(starts), _secret64(56) ^ _secret64(64), dtype=np.uint64))


def _len_1to3(reader: _Reader, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    c1, c2 = reader.byte(starts), reader.byte(starts + (lengths >> 1))
    c3 = reader.byte(starts + lengths - 1)
    combined = (c1 << _U64(16)) | (c2 << _U64(24)) | c3 | (lengths.astype(np.uint64) << _U64(8))
    return _avalanche64(combined ^ (_secret32(0) ^ _secret32(4)))


def _len_4to8(reader: _Reader, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    first, last = reader.read32(starts), reader.read32(starts + lengths - 4)
    x = (last + (first << _U64(32))) ^ (_secret64(8) ^ _secret64(16))
    x = x ^ _rotl(x, 49) ^ _rotl(x, 24)
    x = x * _PRIME_MX2
    x = x ^ ((x >> _U64(35)) + lengths.astype(np.uint64))
    x = x * _PRIME_MX2
    return x ^ (x >> _U64(28))


def _len_9to16(reader: _Reader, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    lo = reader.read64(starts) ^ (_secret64(24) ^ _secret64(32))
    hi = reader.read64(starts + lengths - 8) ^ (_secret64(40) ^ _secret64(48))
    return _avalanche(lengths.astype(np.uint64) + _swap64(lo) + hi + _mul128_fold64(lo, hi))


def _mix16(reader: _Reader, positions: np.ndarray, secret: int) -> np.ndarray:
    return _mul128_fold64(reader.read64(positions) ^ _secret64(secret), reader.read64(positions + 8)
                          ^ _secret64(secret + 8))


def _len_17to128(reader: _Reader, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    acc = lengths.astype(np.uint64) * _PRIME64_1
    ends = starts + lengths
    for round_, threshold in enumerate((16, 32, 64, 96)):  # the pairs of 16 bytes read by inputs above threshold
        over = np.flatnonzero(lengths > threshold)
        if not len(over):
            break
        head = _mix16(reader, starts[over] + 16 * round_, 32 * round_)
        tail = _mix16(reader, ends[over] - 16 * (round_ + 1), 32 * round_ + 16)
        acc[over] += head + tail
    return _avalanche(acc)


def _len_129to240(reader: _Reader, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    acc = lengths.astype(np.uint64) * _PRIME64_1
    for i in range(8):
        acc += _mix16(reader, starts + 16 * i, 16 * i)
    acc = _avalanche(acc)
    rounds = lengths // 16
    for i in range(8, _MIDSIZE_MAX // 16):
        more = np.flatnonzero(rounds > i)
        if len(more):
            acc[more] += _mix16(reader, starts[more] + 16 * i, 16 * (i - 8) + 3)
    acc += _mix16(reader, starts + lengths - 16, 136 - 17)
    return _avalanche(acc)


_CLASSES = ((0, 0, _empty), (1, 3, _len_1to3), (4, 8, _len_4to8), (9, 16, _len_9to16), (17, 128, _len_17to128),
            (129, _MIDSIZE_MAX, _len_129to240))
