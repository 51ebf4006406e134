"""Reading sources, and a clear message naming the file (and line) for every bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockstep.core.config import load_config
from lockstep.core.errors import SourceError
from lockstep.store import ReadOptions, read_file, read_source, sniff_delimiter


def _read(project: Path, source: str | None = None):
    config = load_config(project)
    return read_source(config.data, project, override=Path(source) if source else None)


def _error(project: Path, source: str) -> SourceError:
    with pytest.raises(SourceError) as info:
        _read(project, source)
    return info.value


def test_reads_csv_with_declared_text_columns(small_project: Path) -> None:
    src = _read(small_project)
    assert src.kind == "file"
    assert src.rows == 6
    table = src.parts[0].table
    assert pa.types.is_string(table.schema.field("city").type)
    assert src.files[0].path == "data/raw.csv"
    assert len(src.files[0].fingerprint) == 64
    assert src.locate(2) == "data/raw.csv row 3"


def test_missing_file(small_project: Path) -> None:
    err = _error(small_project, str(small_project / "data" / "nope.csv"))
    assert "data/nope.csv does not exist" in err.message


def test_empty_file(small_project: Path) -> None:
    (small_project / "data" / "empty.csv").write_text("")
    assert "data/empty.csv is empty" in _error(small_project, str(small_project / "data" / "empty.csv")).message


def test_header_only(small_project: Path) -> None:
    path = small_project / "data" / "header.csv"
    path.write_text("id,label,age,income,city,member,signup\n")
    assert "has no data rows (only a header)" in _error(small_project, str(path)).message


def test_semicolon_delimited_file_gets_a_delimiter_hint(small_project: Path) -> None:
    text = (small_project / "data" / "raw.csv").read_text().replace(",", ";")
    path = small_project / "data" / "semi.csv"
    path.write_text(text)
    err = _error(small_project, str(path))
    assert "read as a single column" in err.message
    assert "delimiter = ';'" in err.hint


def test_ragged_row_names_the_line(small_project: Path) -> None:
    lines = (small_project / "data" / "raw.csv").read_text().splitlines()
    lines[4] += ",surplus"
    path = small_project / "data" / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    err = _error(small_project, str(path))
    assert "data/ragged.csv line 5 has 8 fields, but the header has 7" in err.message


def test_wrong_encoding_names_line_and_byte(small_project: Path) -> None:
    raw = (small_project / "data" / "raw.csv").read_bytes().replace(b"Nice", b"Ni\xe7e")
    path = small_project / "data" / "latin.csv"
    path.write_bytes(raw)
    err = _error(small_project, str(path))
    assert "not valid utf-8 text: line 5" in err.message
    assert "encoding" in err.hint


def test_declared_encoding_reads_latin1(small_project: Path) -> None:
    raw = (small_project / "data" / "raw.csv").read_bytes().replace(b"Nice", b"Ni\xe7e")
    (small_project / "data" / "raw.csv").write_bytes(raw)
    toml = (small_project / "lockstep.toml").read_text()
    toml = toml.replace('source = "data/raw.csv"', 'source = "data/raw.csv"\nencoding = "latin-1"')
    toml = toml.replace('"Nice"]', '"Niçe"]')
    (small_project / "lockstep.toml").write_text(toml)
    table = _read(small_project).parts[0].table
    assert "Niçe" in table.column("city").to_pylist()


def test_binary_garbage_is_refused(small_project: Path) -> None:
    path = small_project / "data" / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 20)
    err = _error(small_project, str(path))
    assert "garbage.csv" in err.message


def test_not_a_parquet_file(small_project: Path) -> None:
    path = small_project / "data" / "fake.parquet"
    path.write_text("id,label\n1,yes\n")
    assert "is not a readable Parquet file" in _error(small_project, str(path)).message


def test_unknown_extension(small_project: Path) -> None:
    path = small_project / "data" / "raw.xlsx"
    path.write_text("x")
    err = _error(small_project, str(path))
    assert "cannot tell the format of raw.xlsx" in err.message
    assert "format" in err.hint


def test_folder_as_source(small_project: Path) -> None:
    err = _error(small_project, str(small_project / "data"))
    assert "is a folder" in err.message and "glob" in err.hint


def test_glob_reads_every_file_in_order(small_project: Path) -> None:
    lines = (small_project / "data" / "raw.csv").read_text().splitlines()
    (small_project / "data" / "parts").mkdir()
    (small_project / "data" / "parts" / "b.csv").write_text("\n".join([lines[0], *lines[4:]]) + "\n")
    (small_project / "data" / "parts" / "a.csv").write_text("\n".join(lines[:4]) + "\n")
    src = _read(small_project, str(small_project / "data" / "parts" / "*.csv"))
    assert src.kind == "glob"
    assert [p.name for p in src.parts] == ["data/parts/a.csv", "data/parts/b.csv"]
    assert src.rows == 6
    assert src.locate(4) == "data/parts/b.csv row 2"


def test_glob_without_matches(small_project: Path) -> None:
    assert "no files match" in _error(small_project, str(small_project / "data" / "*.parquet")).message


def test_glob_with_different_columns(small_project: Path) -> None:
    (small_project / "data" / "parts").mkdir()
    (small_project / "data" / "parts" / "a.csv").write_text("id,label\n1,yes\n")
    (small_project / "data" / "parts" / "b.csv").write_text("id,other\n2,no\n")
    err = _error(small_project, str(small_project / "data" / "parts" / "*.csv"))
    assert "data/parts/b.csv has columns" in err.message


def test_gzip_csv(small_project: Path) -> None:
    path = small_project / "data" / "raw.csv.gz"
    path.write_bytes(gzip.compress((small_project / "data" / "raw.csv").read_bytes()))
    assert _read(small_project, str(path)).rows == 6


def test_sql_source_runs_duckdb_relative_to_the_project(small_project: Path) -> None:
    table = _read(small_project).parts[0].table
    pq.write_table(table, small_project / "data" / "raw.parquet")
    toml = (small_project / "lockstep.toml").read_text().replace(
        'source = "data/raw.csv"', "sql = \"SELECT * FROM 'data/raw.parquet' WHERE age > 30\"")
    (small_project / "lockstep.toml").write_text(toml)
    src = _read(small_project)
    assert src.kind == "sql"
    assert src.rows == 5
    assert src.metadata()["query"].startswith("SELECT")


def test_sql_errors_are_user_errors(small_project: Path) -> None:
    toml = (small_project / "lockstep.toml").read_text().replace(
        'source = "data/raw.csv"', "sql = \"SELECT * FROM 'data/missing.parquet'\"")
    (small_project / "lockstep.toml").write_text(toml)
    with pytest.raises(SourceError, match=r"\[data\] sql failed in DuckDB"):
        _read(small_project)


def test_sniff_and_read_file_without_config(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a;b\n1;2\n3;4\n")
    assert sniff_delimiter(path) == ";"
    table = read_file(path, "x.csv", ReadOptions(delimiter=None))
    assert table.column_names == ["a", "b"]


def _stream(path: Path, rows: int) -> tuple[list[int], int]:
    from lockstep.store import iter_file_batches

    sizes, peak = [], 0
    start = pa.total_allocated_bytes()
    for piece in iter_file_batches(path, path.name, ReadOptions(), rows=rows):
        sizes.append(piece.num_rows)
        peak = max(peak, pa.total_allocated_bytes() - start)
        del piece
    return sizes, peak


def test_streamed_csv_comes_in_pieces_of_the_asked_rows_in_bounded_arrow_memory(tmp_path: Path) -> None:
    """A CSV many times the reader's block size streams in pieces of ``rows`` rows, holding a small part of it.

    The reader reads ahead a bounded number of 1 MiB blocks (how many depends on its threads: 30 to 50 MB
    of Arrow memory here); with 16 MiB blocks it held most of the file (487 MB of a 555 MB CSV).
    """
    line = "1,some text that makes the line long enough to fill blocks,3.5\n"
    path = tmp_path / "large.csv"
    path.write_text("a,b,c\n" + line * 3_200_000)  # 200 MB
    sizes, peak = _stream(path, 50_000)
    assert sum(sizes) == 3_200_000
    assert all(s >= 50_000 for s in sizes[:-1]) and all(s < 50_000 + 20_000 for s in sizes)
    assert peak < 0.4 * path.stat().st_size


def test_streamed_parquet_keeps_the_asked_columns(tmp_path: Path) -> None:
    from lockstep.store import iter_file_batches

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": list(range(1000)), "b": ["x"] * 1000}), path, row_group_size=300)
    pieces = list(iter_file_batches(path, "t.parquet", ReadOptions(), rows=400, columns=["b", "zz"]))
    assert [p.num_rows for p in pieces] == [400, 400, 200]
    assert all(p.column_names == ["b"] for p in pieces)
