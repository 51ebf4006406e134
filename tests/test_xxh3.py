"""The vectorized XXH3-64 gives xxhash's value for every key: a difference would move rows between splits."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest
import xxhash

from lockstep.data.splits import split_unit
from lockstep.data.xxh3 import xxh3_64
from tests.corpus import INIT_CORPUS


def _library(values: list[bytes]) -> np.ndarray:
    return np.array([xxhash.xxh3_64_intdigest(v) for v in values], dtype=np.uint64)


def _random_keys(seed: int, lengths: range, per_length: int) -> list[bytes]:
    rng = random.Random(seed)
    keys = [rng.randbytes(n) for n in lengths for _ in range(per_length)]
    rng.shuffle(keys)  # every class of lengths mixed within each block
    return keys


def test_every_length_up_to_300_bytes_matches_the_library() -> None:
    keys = _random_keys(0, range(301), 12)
    assert np.array_equal(xxh3_64(pa.array(keys, pa.binary())), _library(keys))


@pytest.mark.parametrize("make", [
    lambda keys: pa.array(keys, pa.large_binary()),
    lambda keys: pa.array(keys, pa.binary()).slice(5, 4000),
    lambda keys: pa.chunked_array([keys[:7], keys[7:5000], keys[5000:]], pa.binary()),
    lambda keys: pa.array([k.hex() for k in keys], pa.string()),
    lambda keys: pa.array([k.hex() for k in keys], pa.large_string()),
    lambda keys: pa.array([k.decode("latin-1") for k in keys], pa.string()),  # text beyond ASCII, as UTF-8
], ids=["large_binary", "sliced", "chunked", "string", "large_string", "unicode"])
def test_any_layout_of_the_values_gives_the_same_hashes(make) -> None:
    keys = _random_keys(1, range(0, 160), 40)
    values = make(keys)
    expected = [v.encode() if isinstance(v, str) else v for v in values.to_pylist()]
    assert np.array_equal(xxh3_64(values), _library(expected))


def test_no_values_and_missing_values() -> None:
    assert len(xxh3_64(pa.array([], pa.string()))) == 0
    assert len(xxh3_64(pa.chunked_array([], pa.string()))) == 0
    with pytest.raises(ValueError, match="missing"):
        xxh3_64(pa.array(["a", None]))


@pytest.mark.parametrize("key", sorted(INIT_CORPUS))
def test_split_units_of_real_ids_and_text_are_the_library_hash(key: str) -> None:
    frame = INIT_CORPUS[key].frame()
    for name in frame.columns[:12]:
        texts = [str(v) for v in frame[name].tolist()]
        expected = _library([f"salt\x1f{t}".encode() for t in texts]) / float(2**64)
        assert np.array_equal(split_unit(pa.array(texts, pa.string()), "salt"), expected), name
