"""``factorize_objects`` gives ``pd.factorize``'s codes and uniques, whatever the objects and their layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lockstep.core.factorize import MAX_DISTINCT_OBJECTS, factorize_objects
from lockstep.features.transformers._base import map_distinct
from tests.corpus import INIT_CORPUS


def _assert_as_pandas(values: np.ndarray) -> None:
    codes, uniques = factorize_objects(values)
    want_codes, want_uniques = pd.factorize(values, use_na_sentinel=True)
    assert codes.dtype == want_codes.dtype
    assert np.array_equal(codes, want_codes)
    assert [type(u) for u in uniques] == [type(u) for u in want_uniques]
    assert list(uniques) == list(want_uniques)


def _objects(items: list) -> np.ndarray:
    values = np.empty(len(items), dtype=object)
    values[:] = items
    return values


def _shared(n: int, seed: int = 0) -> np.ndarray:
    labels = _objects(["no", "yes", "no internet service", "Fiber optic", "", "ja"])
    return labels[np.random.default_rng(seed).integers(0, len(labels), n)]


CASES = {
    "shared strings": lambda: _shared(10_000),
    # equal strings that are different objects: one code, as by value
    "equal values, other objects": lambda: _objects(["".join(["y", "es"]) for _ in range(50)] + ["yes"] * 50),
    "missing: None, NaN objects, pd.NA": lambda: _objects(
        ["a", None, float("nan"), np.nan, "b", pd.NA, "a", float("nan"), None]),
    "mixed kinds": lambda: _objects([1, "1", 1.0, True, 2.5, "x", 1, b"x", (1, 2), "x"]),
    "all missing": lambda: _objects([None, np.nan, None]),
    "one row": lambda: _objects(["only"]),
    "no rows": lambda: _objects([]),
    "a strided view": lambda: _shared(10_001)[::3],
    "a reversed view": lambda: _shared(1_000)[::-1],
    "non-ASCII": lambda: _objects(["é", "e\u0301", "日本", "é", "🙂", "日本"] * 10),
    # more distinct objects than the identity pass is worth: the plain path
    "mostly distinct": lambda: _objects([f"id-{i % (2 * MAX_DISTINCT_OBJECTS)}"
                                         for i in range(3 * MAX_DISTINCT_OBJECTS)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_codes_and_uniques_are_pandas(case: str) -> None:
    _assert_as_pandas(CASES[case]())


def test_other_dtypes_go_to_pandas() -> None:
    for values in (np.array([3, 1, 3]), np.array([0.5, np.nan, 0.5]), np.array(["b", "a"], dtype="U1")):
        codes, uniques = factorize_objects(values)
        want_codes, want_uniques = pd.factorize(values, use_na_sentinel=True)
        assert np.array_equal(codes, want_codes) and list(uniques) == list(want_uniques)


@pytest.mark.parametrize("key", sorted(INIT_CORPUS))
def test_text_columns_of_real_data(key: str) -> None:
    """Every text column of the corpus as a CSV reader gives it (a new object per row) and as lockstep's raw
    frame does (a few objects, each shared by many rows)."""
    frame = INIT_CORPUS[key].frame()
    texts = [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c].dtype)
             or pd.api.types.is_string_dtype(frame[c].dtype)]
    for name in texts:
        values = frame[name].to_numpy(dtype=object)
        _assert_as_pandas(values)
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        shared = np.where(codes < 0, None, np.asarray(uniques, dtype=object)[np.maximum(codes, 0)])
        _assert_as_pandas(shared)


@pytest.mark.parametrize("key", sorted(INIT_CORPUS))
def test_map_distinct_is_the_function_row_by_row(key: str) -> None:
    """``map_distinct`` (NormalizeStrings, RareCategoryGrouper, CategoryMissingFiller) gives, row for row, what
    the function gives each value, on the corpus's text columns as read and as shared objects."""
    frame = INIT_CORPUS[key].frame()
    for name in frame.columns:
        if not (pd.api.types.is_object_dtype(frame[name].dtype) or pd.api.types.is_string_dtype(frame[name].dtype)):
            continue
        for series in (frame[name], frame[name].astype("category"), frame[name].astype(object).iloc[::-1]):
            got = map_distinct(series, lambda v: v.strip().lower() if isinstance(v, str) else repr(v))
            want = [np.nan if v is None or v is pd.NA or (isinstance(v, float) and v != v)
                    else (v.strip().lower() if isinstance(v, str) else repr(v)) for v in series.tolist()]
            assert got.dtype == object and list(got.index) == list(series.index)
            assert [None if isinstance(v, float) and v != v else v for v in got.tolist()] == \
                [None if isinstance(v, float) and v != v else v for v in want]
