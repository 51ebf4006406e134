"""The data fingerprint: format-, chunking- and column-order-independent; sensitive to every cell."""

from __future__ import annotations

import datetime as dt
import json
import math
import struct
from fractions import Fraction
from pathlib import Path

import blake3
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockstep.core.config import parse_config
from lockstep.core.fingerprint import (
    TableHasher,
    fingerprint_file,
    fingerprint_json,
    fingerprint_table,
    iter_column_digests,
)
from lockstep.data.schema import INT_LIMIT, validate_table
from lockstep.profiles.summary import NumericSummary, merged
from lockstep.store import parts, read_source

NULL_WORDS = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
              "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null", "None"}

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\n\r\x00"),
    min_size=1, max_size=12,
).filter(lambda s: s.strip() == s and s not in NULL_WORDS)


@st.composite
def tables(draw, min_rows: int = 1, max_rows: int = 40, int_limit: int = 2**62) -> pa.Table:
    n = draw(st.integers(min_rows, max_rows))
    ints = draw(st.lists(st.one_of(st.none(), st.integers(-int_limit, int_limit)), min_size=n, max_size=n))
    floats = draw(st.lists(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64)),
                           min_size=n, max_size=n))
    strs = draw(st.lists(st.one_of(st.none(), texts), min_size=n, max_size=n))
    bools = draw(st.lists(st.one_of(st.none(), st.booleans()), min_size=n, max_size=n))
    return pa.table({
        "id": pa.array(range(n), pa.int64()),
        "i": pa.array(ints, pa.int64()),
        "f": pa.array(floats, pa.float64()),
        "s": pa.array(strs, pa.string()),
        "b": pa.array(bools, pa.bool_()),
    })


CONFIG = {
    "project": {"name": "fp"},
    "data": {
        "source": "data.csv", "id": "id", "target": "b", "task": "classification",
        "schema": {
            "id": {"dtype": "int"},
            "i": {"dtype": "int", "nullable": True},
            "f": {"dtype": "float", "nullable": True},
            "s": {"dtype": "str", "nullable": True},
            "b": {"dtype": "bool", "nullable": True},
        },
    },
}


def _ingested(path: Path) -> pa.Table:
    """Read a file as lockstep ingest does: source reader, then conversion to the declared schema."""
    raw = dict(CONFIG, data=dict(CONFIG["data"], source=path.name))
    config = parse_config(raw)
    src = read_source(config.data, path.parent)
    result = validate_table(src.parts[0].table, config.data)
    assert result.ok, result.failures(str)
    return result.table


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables(int_limit=INT_LIMIT))  # the range a declared int column accepts
def test_same_rows_from_csv_and_parquet_have_the_same_fingerprint(table: pa.Table, tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("fmt")
    pacsv.write_csv(table, folder / "data.csv")
    pq.write_table(table, folder / "data.parquet")
    from_csv = _ingested(folder / "data.csv")
    from_parquet = _ingested(folder / "data.parquet")
    assert fingerprint_table(from_csv) == fingerprint_table(from_parquet) == fingerprint_table(table)


@settings(max_examples=80, deadline=None)
@given(table=tables(min_rows=2), data=st.data())
def test_chunking_does_not_change_the_fingerprint(table: pa.Table, data) -> None:
    n = table.num_rows
    cuts = sorted(data.draw(st.sets(st.integers(1, n - 1), max_size=5)))
    bounds = [0, *cuts, n]
    pieces = [table.slice(a, b - a) for a, b in zip(bounds, bounds[1:])]
    rechunked = pa.concat_tables(pieces)
    assert rechunked.column("i").num_chunks == len(pieces)
    assert fingerprint_table(rechunked) == fingerprint_table(table)
    assert fingerprint_table(table.combine_chunks()) == fingerprint_table(table)


@settings(max_examples=80, deadline=None)
@given(table=tables(), data=st.data())
def test_changing_any_single_cell_changes_the_fingerprint(table: pa.Table, data) -> None:
    column = data.draw(st.sampled_from(["i", "f", "s", "b"]))
    row = data.draw(st.integers(0, table.num_rows - 1))
    values = table.column(column).to_pylist()
    old = values[row]
    candidates = {
        "i": st.one_of(st.none(), st.integers(-2**62, 2**62)),
        "f": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
        "s": st.one_of(st.none(), texts),
        "b": st.one_of(st.none(), st.booleans()),
    }[column]
    new = data.draw(candidates.filter(lambda v: v != old or (v is None) != (old is None)
                                      or (isinstance(v, float) and str(v) != str(old))))
    values[row] = new
    changed = table.set_column(table.schema.get_field_index(column), column,
                               pa.array(values, table.schema.field(column).type))
    assert fingerprint_table(changed) != fingerprint_table(table)


@settings(max_examples=40, deadline=None)
@given(table=tables(), data=st.data())
def test_column_order_does_not_matter(table: pa.Table, data) -> None:
    order = data.draw(st.permutations(table.column_names))
    assert fingerprint_table(table.select(order)) == fingerprint_table(table)


def test_row_order_matters() -> None:
    t = pa.table({"a": [1, 2, 3]})
    assert fingerprint_table(t) != fingerprint_table(t.take([2, 1, 0]))


def test_column_names_matter() -> None:
    assert fingerprint_table(pa.table({"a": [1]})) != fingerprint_table(pa.table({"b": [1]}))


def test_physical_types_do_not_matter() -> None:
    base = pa.table({"i": pa.array([1, None, 3], pa.int64()), "f": pa.array([0.5, None, 2.0], pa.float64()),
                     "s": pa.array(["a", None, "c"], pa.string())})
    narrow = pa.table({"i": pa.array([1, None, 3], pa.int16()), "f": pa.array([0.5, None, 2.0], pa.float32()),
                       "s": pa.array(["a", None, "c"], pa.large_string())})
    dictionary = base.set_column(2, "s", pa.array(["a", None, "c"]).dictionary_encode())
    assert fingerprint_table(base) == fingerprint_table(narrow) == fingerprint_table(dictionary)


def test_logical_types_matter() -> None:
    assert fingerprint_table(pa.table({"a": [1, 2]})) != fingerprint_table(pa.table({"a": [1.0, 2.0]}))
    assert fingerprint_table(pa.table({"a": ["1"]})) != fingerprint_table(pa.table({"a": [1]}))


def test_nan_is_missing_but_negative_zero_is_not_zero() -> None:
    with_nan = pa.table({"f": pa.array([1.0, float("nan")])})
    with_null = pa.table({"f": pa.array([1.0, None], pa.float64())})
    assert fingerprint_table(with_nan) == fingerprint_table(with_null)
    assert fingerprint_table(pa.table({"f": [0.0]})) != fingerprint_table(pa.table({"f": [-0.0]}))


def test_missing_and_empty_string_differ() -> None:
    assert fingerprint_table(pa.table({"s": ["", "x"]})) != fingerprint_table(pa.table({"s": [None, "x"]}))


def test_value_boundaries_in_strings_matter() -> None:
    assert fingerprint_table(pa.table({"s": ["ab", "c"]})) != fingerprint_table(pa.table({"s": ["a", "bc"]}))


def test_timestamps_are_unit_independent_but_keep_sub_microseconds() -> None:
    moment = dt.datetime(2024, 5, 1, 12, 30, 15)
    as_s = pa.table({"t": pa.array([moment, None], pa.timestamp("s"))})
    as_ns = pa.table({"t": pa.array([moment, None], pa.timestamp("ns"))})
    assert fingerprint_table(as_s) == fingerprint_table(as_ns)
    fine = pa.table({"t": pa.array([1_000_000_001], pa.timestamp("ns"))})
    coarse = pa.table({"t": pa.array([1_000_000_000], pa.timestamp("ns"))})
    assert fingerprint_table(fine) != fingerprint_table(coarse)
    utc = pa.table({"t": pa.array([moment], pa.timestamp("us", tz="UTC"))})
    assert fingerprint_table(utc) != fingerprint_table(as_s.slice(0, 1))


def test_dates_are_width_independent() -> None:
    day = dt.date(2023, 12, 31)
    assert fingerprint_table(pa.table({"d": pa.array([day], pa.date32())})) == \
        fingerprint_table(pa.table({"d": pa.array([day], pa.date64())}))


def test_duplicate_column_names_are_refused() -> None:
    t = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(ValueError, match="unique"):
        fingerprint_table(t)


def test_pandas_frames_are_accepted() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
    assert fingerprint_table(frame) == fingerprint_table(pa.table({"a": [1, 2], "b": ["x", None]}))


def _reference(table: pa.Table) -> str:
    """The canonical form of docs/fingerprints.md, written independently, for int64 and string columns."""
    u64, u32 = struct.Struct("<Q"), struct.Struct("<I")
    h = blake3.blake3(b"lockstep.table.v1\n" + u64.pack(table.num_rows) + u64.pack(table.num_columns))
    for name in sorted(table.column_names, key=lambda n: n.encode()):
        values = table.column(name).to_pylist()
        is_text = pa.types.is_string(table.column(name).type)
        missing = b"".join(u64.pack(i) for i, v in enumerate(values) if v is None)
        if is_text:
            encoded = [(v or "").encode() for v in values]
            lengths = b"".join(u64.pack(len(e)) for e in encoded)
            body = b"".join(encoded)
            tag = b"string"
        else:
            lengths = b""
            body = b"".join(struct.pack("<q", v or 0) for v in values)
            tag = b"int64"
        column = blake3.blake3(blake3.blake3(missing).digest() + blake3.blake3(lengths).digest()
                               + blake3.blake3(body).digest()).digest()
        h.update(u32.pack(len(name.encode())) + name.encode() + u32.pack(len(tag)) + tag + column)
    return h.hexdigest()


@settings(max_examples=50, deadline=None)
@given(table=tables())
def test_matches_an_independent_implementation_of_the_documented_form(table: pa.Table) -> None:
    subset = table.select(["id", "i", "s"])
    assert fingerprint_table(subset) == _reference(subset)


def test_column_digests_point_at_the_changed_column() -> None:
    a = pa.table({"x": [1, 2], "y": ["a", "b"]})
    b = pa.table({"x": [1, 2], "y": ["a", "B"]})
    da, db = dict((n, d) for n, _, d in iter_column_digests(a)), dict((n, d) for n, _, d in iter_column_digests(b))
    assert da["x"] == db["x"] and da["y"] != db["y"]


def test_large_table_in_chunks_matches_whole() -> None:
    rng = np.random.default_rng(7)
    n = 200_000
    table = pa.table({"a": rng.normal(size=n), "b": rng.integers(0, 9, n),
                      "c": pa.array(rng.choice(["x", "yy", "zzz"], n))})
    batches = table.to_batches(max_chunksize=7_777)
    assert fingerprint_table(pa.Table.from_batches(batches)) == fingerprint_table(table)


def test_json_and_file_fingerprints(tmp_path: Path) -> None:
    assert fingerprint_json({"b": 1, "a": [1, 2]}) == fingerprint_json({"a": [1, 2], "b": 1})
    assert fingerprint_json({"a": 1}) != fingerprint_json({"a": 2})
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 10_000_000)
    assert fingerprint_file(path, chunk_size=4096) == blake3.blake3(b"x" * 10_000_000).hexdigest()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables(min_rows=1, max_rows=60), data=st.data())
def test_partitions_of_a_stored_table_give_its_rows_and_fingerprint(table: pa.Table, data, tmp_path_factory) -> None:
    """However a table is stored (files, row groups) and however it is cut into partitions, the partitions read
    in order are its rows, their fingerprint fed piece by piece is the table's, and the cuts fall at the same
    rows."""
    folder = tmp_path_factory.mktemp("parts")
    cuts = sorted(data.draw(st.sets(st.integers(1, max(table.num_rows - 1, 1)), max_size=3)))
    bounds = [0, *[c for c in cuts if c < table.num_rows], table.num_rows]
    files = []
    for number, (a, b) in enumerate(zip(bounds, bounds[1:])):
        name = f"part-{number}.parquet"
        pq.write_table(table.slice(a, b - a), folder / name, row_group_size=data.draw(st.integers(1, 25)))
        files.append(name)
    rows = data.draw(st.integers(1, table.num_rows + 3))
    found = parts.file_partitions(folder, files, rows)
    assert [p.offset for p in found] == list(range(0, table.num_rows, rows))  # the same cuts whatever the files
    hasher = TableHasher()
    pieces = [parts.read_partition(folder, p) for p in found]
    for piece in pieces:
        hasher.update(piece)
    assert pa.concat_tables(pieces).equals(table)
    assert hasher.hexdigest() == fingerprint_table(table)


@pytest.mark.parametrize("values", [[0.0, -0.0], [-0.0, 0.0], [-0.0, 0.0, -0.0]])
def test_signed_zeros_give_the_same_summary_whatever_the_cuts(values: list[float]) -> None:
    """0.0 and -0.0 compare equal, so which one a minimum kept depended on the order and the cuts (found by the
    property test below)."""
    x = np.asarray(values)
    whole = NumericSummary(-1.0, 1.0, 8)
    whole.update(x)
    pieces = []
    for value in values:
        piece = NumericSummary(-1.0, 1.0, 8)
        piece.update(np.asarray([value]))
        pieces.append(piece)
    assert json.dumps(merged(pieces).to_dict()) == json.dumps(whole.to_dict())
    assert whole.to_dict()["min"] == 0.0 and math.copysign(1.0, whole.to_dict()["min"]) == 1.0


@settings(max_examples=80, deadline=None)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=50),
       data=st.data())
def test_sums_of_summaries_do_not_depend_on_the_cuts(values: list[float], data) -> None:
    """A numeric summary's sums are exact: built at once, or from consecutive pieces merged, they are the same
    to the last bit (the Wasserstein distance of a window reads them)."""
    x = np.asarray(values)
    whole = NumericSummary(-1.0, 1.0, 8)
    whole.update(x)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(values) - 1, 1)), max_size=4)))
    bounds = [0, *[c for c in cuts if c < len(values)], len(values)]
    pieces = []
    for a, b in zip(bounds, bounds[1:]):
        piece = NumericSummary(-1.0, 1.0, 8)
        piece.update(x[a:b])
        pieces.append(piece)
    together = merged(pieces)
    assert json.dumps(together.to_dict()) == json.dumps(whole.to_dict())  # NaN where inf - inf
    try:
        expected = math.fsum(values)
    except OverflowError:
        expected = math.inf if sum(map(Fraction, values)) > 0 else -math.inf
    assert whole.total == expected  # the exact sum, rounded once
