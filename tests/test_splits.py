"""Splits never move when rows are appended; fractions hold; rows hash by content."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from lockstep.core.sections import SplitConfig
from lockstep.data.rows import derive_row_ids, row_hashes
from lockstep.data.splits import assign_splits, split_unit

ids_strategy = st.one_of(
    st.lists(st.integers(-10**12, 10**12), min_size=1, max_size=200, unique=True),
    st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=200, unique=True),
)


@settings(max_examples=100, deadline=None)
@given(ids=ids_strategy, data=st.data())
def test_appending_rows_never_moves_an_existing_row(ids: list, data) -> None:
    split = SplitConfig(valid=data.draw(st.floats(0, 0.45)), test=data.draw(st.floats(0, 0.45)),
                        salt=data.draw(st.text(max_size=8)))
    cut = data.draw(st.integers(0, len(ids)))
    before = assign_splits(pa.table({"id": ids[:cut] or [ids[0]]}), "id", split)
    after = assign_splits(pa.table({"id": ids}), "id", split)
    if cut:
        assert list(before) == list(after[:cut])
    shuffled = data.draw(st.permutations(range(len(ids))))
    reordered = assign_splits(pa.table({"id": [ids[i] for i in shuffled]}), "id", split)
    assert [reordered[k] for k in range(len(ids))] == [after[i] for i in shuffled]


def test_fractions_are_close_to_the_configuration() -> None:
    labels = assign_splits(pa.table({"id": list(range(100_000))}), "id", SplitConfig(valid=0.1, test=0.2, salt="s"))
    fractions = {name: float(np.mean(labels == name)) for name in ("train", "valid", "test")}
    assert abs(fractions["valid"] - 0.1) < 0.005
    assert abs(fractions["test"] - 0.2) < 0.005
    assert abs(fractions["train"] - 0.7) < 0.005


def test_salt_reshuffles() -> None:
    table = pa.table({"id": list(range(2_000))})
    a = assign_splits(table, "id", SplitConfig(salt="a"))
    b = assign_splits(table, "id", SplitConfig(salt="b"))
    assert (a != b).mean() > 0.2


def test_split_unit_is_the_documented_hash() -> None:
    expected = xxhash.xxh3_64_intdigest(b"pepper\x1f42") / 2**64
    assert split_unit([42], "pepper")[0] == expected
    assert split_unit(["42"], "pepper")[0] == expected  # an id's text decides, not its type


def test_time_split_boundaries() -> None:
    times = [dt.datetime(2024, 1, d) for d in (1, 9, 10, 19, 20, 31)]
    split = SplitConfig(by="time", time_column="t", valid_from="2024-01-10", test_from="2024-01-20")
    labels = assign_splits(pa.table({"id": list(range(6)), "t": times}), "id", split)
    assert list(labels) == ["train", "train", "valid", "valid", "test", "test"]
    utc = pa.table({"id": [0, 1], "t": pa.array(times[1:3], pa.timestamp("us", tz="UTC"))})
    assert list(assign_splits(utc, "id", split)) == ["train", "valid"]


def test_row_hashes_ignore_column_order_and_chunking() -> None:
    table = pa.table({"a": [1, None, 3], "b": ["x", "y", None], "c": [0.5, float("nan"), -0.0]})
    h = row_hashes(table)
    assert np.array_equal(h, row_hashes(table.select(["c", "a", "b"])))
    assert np.array_equal(h, row_hashes(pa.concat_tables([table.slice(0, 1), table.slice(1)])))
    assert len(set(h.tolist())) == 3


def test_row_hashes_see_every_value() -> None:
    base = pa.table({"a": [1, 1], "b": ["x", "x"], "c": [True, True]})
    h = row_hashes(base)
    assert h[0] == h[1]
    for changed in (base.set_column(0, "a", pa.array([1, 2])),
                    base.set_column(1, "b", pa.array(["x", None])),
                    base.set_column(2, "c", pa.array([True, False]))):
        g = row_hashes(changed)
        assert g[0] == h[0] and g[1] != h[1]
    missing = pa.table({"a": [None]}, pa.schema([("a", pa.int64())]))
    assert not np.array_equal(row_hashes(pa.table({"a": [0]})), row_hashes(missing))


def test_derived_ids_number_repeats_in_order() -> None:
    table = pa.table({"a": [1, 2, 1, 1], "b": ["x", "y", "x", "x"]})
    ids = derive_row_ids(table).to_pylist()
    assert ids[2] == ids[0] + "-1" and ids[3] == ids[0] + "-2"
    assert len(ids[0]) == 16 and ids[1] != ids[0]


def test_a_split_by_content_keeps_rows_with_the_same_inputs_together() -> None:
    import numpy as np

    from lockstep.data.leakage import shared_rows

    rng = np.random.default_rng(0)
    n = 3000
    table = pa.table({
        "id": np.arange(n),
        "sex": rng.choice(["female", "male"], n),
        "klass": rng.choice(["1st", "2nd", "3rd"], n),
        "age": rng.choice([20.0, 30.0, 40.0, None], n),
        "label": rng.choice(["yes", "no"], n),
    })
    inputs = ["sex", "klass", "age"]
    by_id = assign_splits(table, "id", SplitConfig(salt="s"))
    by_content = assign_splits(table, "id", SplitConfig(salt="s", by="content"), inputs)
    # 24 distinct inputs among 3,000 rows: by id, most valid and test rows repeat a training row's inputs
    assert shared_rows(table.drop_columns(["label"]), "id", by_id).test_shared > 100
    shared = shared_rows(table, "id", by_content, inputs)
    assert shared.valid_shared == shared.test_shared == 0
    assert shared.repeated_inputs == n and shared.input_groups == 24
    groups = {}
    for key, split in zip(zip(*(table.column(c).to_pylist() for c in inputs)), by_content):
        groups.setdefault(key, set()).add(split)
    assert all(len(splits) == 1 for splits in groups.values())
    # appending rows never moves a row: its split depends on its own inputs only
    more = assign_splits(table.slice(0, 1000), "id", SplitConfig(salt="s", by="content"), inputs)
    assert list(more) == list(by_content[:1000])
