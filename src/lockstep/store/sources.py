"""Reading raw data sources: CSV and Parquet files, globs of them, DuckDB queries.

This is the only code that opens the user's raw files. It returns Arrow
tables as the files hold them (types as the reader infers them, except that
columns declared ``str`` are read as text) together with what was read: the
paths, sizes and fingerprints of the files. Converting to the declared types
and validating is the data layer's job (:mod:`lockstep.data.schema`).

Every problem with a file is a :class:`~lockstep.core.errors.SourceError` whose
message names the file, and the line where it is known.
"""

from __future__ import annotations

import codecs
import csv
import glob as globlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lockstep.core.errors import FileSystemError, SourceError
from lockstep.core.fingerprint import fingerprint_file, fingerprint_json
from lockstep.core.lazy import lazy_module

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from lockstep.core.sections import DataConfig
else:  # DuckDB, imported by the first SQL source read
    pa = lazy_module("pyarrow")
    pacsv = lazy_module("pyarrow.csv")
    pq = lazy_module("pyarrow.parquet")
    duckdb = lazy_module("duckdb")

__all__ = ["ReadOptions", "SourceData", "SourceFile", "SourceLocation", "SourcePart", "count_rows", "display_path",
           "hash_source_files", "iter_file_batches", "locate_source", "read_file", "read_source", "sniff_delimiter"]

_CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".csv.bz2", ".tsv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_CANDIDATE_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class ReadOptions:
    """How to read files: the ``[data]`` keys that matter to the readers."""

    format: str | None = None
    delimiter: str | None = ","  # None: guess it from the first lines
    encoding: str = "utf-8"
    null_values: tuple[str, ...] | None = None
    text_columns: tuple[str, ...] = ()
    expected_columns: int | None = None

    @classmethod
    def from_config(cls, data: DataConfig) -> ReadOptions:
        return cls(
            format=data.format,
            delimiter=data.delimiter,
            encoding=data.encoding,
            null_values=tuple(data.null_values) if data.null_values is not None else None,
            text_columns=tuple(c for c, spec in data.columns.items() if spec.dtype == "str"),
            expected_columns=len(data.columns),
        )


@dataclass(frozen=True)
class SourceFile:
    """One file that was read: its path (relative to the project where possible), size and fingerprint."""

    path: str
    bytes: int
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "bytes": self.bytes, "fingerprint": self.fingerprint}


@dataclass
class SourcePart:
    """The rows of one file (or of a query), before type conversion."""

    name: str
    table: pa.Table
    row_offset: int = 0  # rows of the source before this part


@dataclass
class SourceData:
    """What :func:`read_source` read."""

    kind: Literal["file", "glob", "sql"]
    description: str
    parts: list[SourcePart]
    files: list[SourceFile] = field(default_factory=list)
    query: str | None = None

    @property
    def rows(self) -> int:
        return sum(p.table.num_rows for p in self.parts)

    def locate(self, row: int) -> str:
        """Where global row ``row`` (0-based) comes from, for messages: ``"data/raw.csv row 12"``.

        Rows are counted from 1 after the header, within each file.
        """
        for part in reversed(self.parts):
            if row >= part.row_offset:
                return f"{part.name} row {row - part.row_offset + 1}"
        return f"row {row + 1}"

    def part_of(self, row: int) -> tuple[str, int]:
        """``(part name, 1-based row within the part)`` of global row ``row``."""
        for part in reversed(self.parts):
            if row >= part.row_offset:
                return part.name, row - part.row_offset + 1
        return self.description, row + 1

    def metadata(self) -> dict[str, Any]:
        """A JSON-ready description, stored with the snapshot."""
        out: dict[str, Any] = {"kind": self.kind, "description": self.description,
                     "files": [f.to_dict() for f in self.files]}
        if self.query is not None:
            out["query"] = self.query
            out["query_fingerprint"] = fingerprint_json(self.query)
        return out


def display_path(path: Path, project_dir: Path) -> str:
    """``path`` relative to the project folder when it is inside it, else absolute."""
    try:
        return path.resolve().relative_to(project_dir.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


@dataclass(frozen=True)
class SourceLocation:
    """Where the raw data is, before anything is read: the files (or the query) and how to name them."""

    kind: Literal["file", "glob", "sql"]
    description: str
    paths: tuple[Path, ...] = ()
    query: str | None = None


def locate_source(data: DataConfig, project_dir: Path, *, override: Path | None = None) -> SourceLocation:
    """Resolve ``[data] source`` (or ``override``) to the files it names, without reading them.

    Raises
    ------
    SourceError
        If a file is missing, a glob matches nothing, or the source is a folder.
    """
    if override is None and data.sql is not None:
        return SourceLocation(kind="sql", description="[data] sql", query=data.sql)
    pattern = str(override) if override is not None else str(data.source)
    if any(ch in pattern for ch in "*?["):
        full = pattern if os.path.isabs(pattern) else str(project_dir / pattern)
        paths = sorted(Path(p) for p in globlib.glob(full, recursive=True) if Path(p).is_file())
        if not paths:
            raise SourceError(f"no files match the source pattern '{pattern}' (in {project_dir})",
                              hint="check [data] source in lockstep.toml")
        return SourceLocation(kind="glob", description=f"{pattern} ({len(paths)} files)", paths=tuple(paths))
    path = Path(pattern) if os.path.isabs(pattern) else project_dir / pattern
    if not path.exists():
        raise SourceError(f"data file {display_path(path, project_dir)} does not exist",
                          hint="check [data] source in lockstep.toml or the --source option")
    if path.is_dir():
        raise SourceError(f"data source {display_path(path, project_dir)} is a folder, not a file",
                          hint="use a glob such as 'data/*.csv' to read every file in a folder")
    return SourceLocation(kind="file", description=display_path(path, project_dir), paths=(path,))


def _check_readable(path: Path, what: str, name: str) -> None:
    """A file this process may not read is the user's to fix: say so, naming it (not "not a Parquet file")."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        error = FileSystemError.of(exc, f"read the {what}", name)
        raise error if error is not None else SourceError(f"cannot read the {what} {name}: {exc}") from None


def hash_source_files(location: SourceLocation, project_dir: Path) -> list[SourceFile]:
    """Path (as shown), size and fingerprint of every file of ``location``."""
    files = []
    for p in location.paths:
        try:
            files.append(SourceFile(path=display_path(p, project_dir), bytes=p.stat().st_size,
                                    fingerprint=fingerprint_file(p)))
        except OSError as exc:
            error = FileSystemError.of(exc, "read the data file", display_path(p, project_dir))
            if error is None:
                raise SourceError(f"cannot read the data file {display_path(p, project_dir)}: {exc}") from None
            raise error from None
    return files


def read_source(data: DataConfig, project_dir: Path, *, override: Path | None = None,
                location: SourceLocation | None = None, files: list[SourceFile] | None = None) -> SourceData:
    """Read the raw data that ``[data]`` describes.

    Parameters
    ----------
    data : DataConfig
        The ``[data]`` section.
    project_dir : Path
        Relative paths in the configuration are relative to this folder.
    override : Path, optional
        Read this file or glob instead of ``[data] source`` (for example
        ``lockstep ingest --source new_export.csv``).
    location, files : optional
        The result of :func:`locate_source` and :func:`hash_source_files`,
        when the caller already has them.

    Returns
    -------
    SourceData

    Raises
    ------
    SourceError
        If the source is missing, empty, or cannot be parsed.
    """
    location = location or locate_source(data, project_dir, override=override)
    if location.kind == "sql":
        return _read_sql(location.query or "", project_dir)
    files = files if files is not None else hash_source_files(location, project_dir)
    options = ReadOptions.from_config(data)
    parts: list[SourcePart] = []
    offset = 0
    first_columns: list[str] | None = None
    for path in location.paths:
        name = display_path(path, project_dir)
        table = read_file(path, name, options)
        if first_columns is None:
            first_columns = table.column_names
        elif sorted(table.column_names) != sorted(first_columns):
            raise SourceError(
                f"{name} has columns {table.column_names}, but {parts[0].name} has {first_columns}",
                hint="every file matched by the source pattern must have the same columns",
            )
        parts.append(SourcePart(name=name, table=table, row_offset=offset))
        offset += table.num_rows
    return SourceData(kind=location.kind, description=location.description, parts=parts, files=files)


def _file_format(path: Path, options: ReadOptions) -> str:
    if options.format is not None:
        return options.format
    name = path.name.lower()
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    raise SourceError(
        f"cannot tell the format of {path.name} from its extension",
        hint="set [data] format = 'csv' or 'parquet' in lockstep.toml",
    )


def read_file(path: Path, name: str, options: ReadOptions) -> pa.Table:
    """Read one CSV or Parquet file as Arrow, with messages that name ``name`` (the path shown to users)."""
    if not path.is_file():
        raise SourceError(f"data file {name} does not exist")
    if path.stat().st_size == 0:
        raise SourceError(f"data file {name} is empty (0 bytes)")
    _check_readable(path, "data file", name)
    fmt = _file_format(path, options)
    table = _read_parquet(path, name) if fmt == "parquet" else _read_csv(path, name, options)
    if table.num_rows == 0:
        raise SourceError(f"data file {name} has no data rows" + (" (only a header)" if fmt == "csv" else ""))
    return table


def _read_parquet(path: Path, name: str) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{name} is not a readable Parquet file: {exc}",
                          hint="check the file, or set [data] format if it is CSV") from None


def _read_csv(path: Path, name: str, options: ReadOptions) -> pa.Table:
    if options.delimiter is None:
        guess = _sniff_delimiter(_decode_or_explain(path, name, options.encoding, limit=1 << 16))
        options = replace(options, delimiter=guess or ",")
    encoding = codecs.lookup(options.encoding).name
    read_options = pacsv.ReadOptions(encoding="utf8" if encoding == "utf-8" else options.encoding)
    parse_options = pacsv.ParseOptions(delimiter=options.delimiter)
    convert_kwargs: dict[str, Any] = {"column_types": {c: pa.string() for c in options.text_columns},
                            "strings_can_be_null": True}
    if options.null_values is not None:
        convert_kwargs["null_values"] = list(options.null_values)
    try:
        table = pacsv.read_csv(path, read_options=read_options, parse_options=parse_options,
                               convert_options=pacsv.ConvertOptions(**convert_kwargs))
    except pa.ArrowInvalid as exc:
        _explain_csv_failure(path, name, options, str(exc))
        raise SourceError(f"{name} could not be read as CSV: {exc}") from None
    except UnicodeDecodeError:
        _explain_encoding(path, name, options.encoding)
        raise
    binary = [f.name for f in table.schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    if binary:
        _explain_encoding(path, name, options.encoding)
    if table.num_columns == 1 and (options.expected_columns or 2) > 1:
        _explain_delimiter(name, options.delimiter or ",", table.column_names[0])
    return table


def _explain_csv_failure(path: Path, name: str, options: ReadOptions, message: str) -> None:
    """Turn pyarrow's CSV error into a message that names the line; raises SourceError."""
    if "Empty CSV file" in message:
        raise SourceError(f"data file {name} is empty (no header line)")
    if "UTF8" in message or "utf8" in message.lower() or "decode" in message.lower():
        _explain_encoding(path, name, options.encoding)
    if "Expected" in message and "columns, got" in message:
        text = _decode_or_explain(path, name, options.encoding)
        reader = csv.reader(io.StringIO(text), delimiter=options.delimiter or ",")
        header = next(reader, [])
        for fields in reader:
            if fields and len(fields) != len(header):
                hint = "check the quoting on that line"
                guess = _sniff_delimiter(text)
                if guess and guess != options.delimiter:
                    hint = f"the file looks {_delimiter_name(guess)}-delimited: set [data] delimiter = {guess!r}"
                raise SourceError(
                    f"{name} line {reader.line_num} has {len(fields)} fields, but the header has {len(header)}",
                    hint=hint,
                )


def _decode_or_explain(path: Path, name: str, encoding: str, limit: int | None = None) -> str:
    raw = _read_bytes(path, limit)
    if limit is not None:
        return raw.decode(encoding, errors="ignore")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        _explain_encoding(path, name, encoding)
        raise  # pragma: no cover - _explain_encoding always raises here


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The file's bytes (decompressed for .gz and .bz2), or its first ``limit`` bytes."""
    if path.name.lower().endswith((".gz", ".bz2")):
        with pa.input_stream(str(path), compression="detect") as fh:
            data: bytes = fh.read(limit) if limit is not None else fh.read()
            return data
    with open(path, "rb") as fh:
        return fh.read(limit) if limit is not None else fh.read()


def _explain_encoding(path: Path, name: str, encoding: str) -> None:
    raw = _read_bytes(path)
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        bad = raw[exc.start:exc.end]
        raise SourceError(
            f"{name} is not valid {encoding} text: line {line} has the byte(s) {bad!r} "
            f"at offset {exc.start}",
            hint="set [data] encoding in lockstep.toml to the file's encoding "
            "(for example 'latin-1' or 'cp1252'), or convert the file to UTF-8",
        ) from None
    raise SourceError(f"{name} has values that are not text in the {encoding} encoding",
                      hint="set [data] encoding in lockstep.toml to the file's encoding")


def sniff_delimiter(path: Path) -> str | None:
    """Guess the delimiter of a CSV file from its first 64 KiB (``None`` for Parquet or no guess)."""
    if not path.name.lower().endswith(_CSV_SUFFIXES):
        return None
    return _sniff_delimiter(_read_bytes(path, 1 << 16).decode("utf-8", errors="ignore"))


def _sniff_delimiter(text: str) -> str | None:
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(_CANDIDATE_DELIMITERS)).delimiter
    except csv.Error:
        return None


def _delimiter_name(d: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(d, repr(d))


def _explain_delimiter(name: str, delimiter: str, header: str) -> None:
    others = [d for d in _CANDIDATE_DELIMITERS if d != delimiter and d in header]
    if others:
        guess = max(others, key=header.count)
        raise SourceError(
            f"{name} was read as a single column '{header[:60]}': "
            f"it is not {_delimiter_name(delimiter)}-delimited",
            hint=f"the header looks {_delimiter_name(guess)}-delimited: set [data] delimiter = {guess!r}",
        )


def _read_sql(query: str, project_dir: Path) -> SourceData:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET file_search_path = '{_sql_quote(str(project_dir.resolve()))}'")
        table = con.sql(query).to_arrow_table()
    except duckdb.Error as exc:
        raise SourceError(f"[data] sql failed in DuckDB: {exc}",
                          hint="check the query in lockstep.toml; paths are relative to the project folder") from None
    finally:
        con.close()
    if table.num_rows == 0:
        raise SourceError("[data] sql returned no rows")
    return SourceData(kind="sql", description="[data] sql", parts=[SourcePart(name="[data] sql", table=table)],
                      query=query)


def _sql_quote(text: str) -> str:
    return text.replace("'", "''")


def iter_file_batches(path: Path, name: str, options: ReadOptions, rows: int = 100_000,
                      columns: list[str] | None = None, text_as_dictionary: bool = False) -> Iterator[pa.Table]:
    """Read a CSV or Parquet file in pieces of about ``rows`` rows, as Arrow tables (bounded memory).

    With ``columns``, only those columns of a Parquet file are read (a CSV is
    read row by row and the columns selected from each piece). With ``text_as_dictionary``, the
    text columns of ``options`` come from a Parquet file dictionary-encoded,
    as they are stored (faster, and the same values).

    Yields
    ------
    pyarrow.Table

    Raises
    ------
    SourceError
        If the file is missing, empty or unreadable (the message names it).
    """
    if not path.is_file():
        raise SourceError(f"input file {name} does not exist")
    if path.stat().st_size == 0:
        raise SourceError(f"input file {name} is empty (0 bytes)")
    _check_readable(path, "input file", name)
    if _file_format(path, options) == "parquet":
        yield from _parquet_pieces(path, name, options, rows, columns, text_as_dictionary)
    else:
        yield from _csv_pieces(path, name, options, rows, columns)



def _parquet_pieces(path: Path, name: str, options: ReadOptions, rows: int, columns: list[str] | None,
                    text_as_dictionary: bool) -> Iterator[pa.Table]:
    """A Parquet file in tables of ``rows`` rows (see :func:`iter_file_batches`)."""
    try:
        # pre_buffer (the default) keeps what it read ahead: memory grew with the file (pyarrow 25)
        dictionary = list(options.text_columns) if text_as_dictionary else None
        parquet = pq.ParquetFile(path, pre_buffer=False, read_dictionary=dictionary)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{name} is not a readable Parquet file: {exc}") from None
    present = set(parquet.schema_arrow.names)
    wanted = [c for c in columns if c in present] if columns is not None else None
    for batch in parquet.iter_batches(batch_size=rows, columns=wanted):
        yield pa.Table.from_batches([batch])


def _csv_pieces(path: Path, name: str, options: ReadOptions, rows: int, columns: list[str] | None,
                ) -> Iterator[pa.Table]:
    """A CSV file in tables of about ``rows`` rows (see :func:`iter_file_batches`)."""
    encoding = codecs.lookup(options.encoding).name
    # blocks of 1 MiB, gathered into pieces of about ``rows`` rows: with 16 MiB blocks pyarrow's streaming reader
    # held memory in proportion to the file (487 MB of Arrow buffers at 4M rows, 42 MB with 1 MiB blocks)
    read_options = pacsv.ReadOptions(encoding="utf8" if encoding == "utf-8" else options.encoding,
                                     block_size=1 << 20)
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in options.text_columns},
                                   strings_can_be_null=True,
                                   **({"null_values": list(options.null_values)} if options.null_values else {}))
    try:
        reader = pacsv.open_csv(path, read_options=read_options,
                                parse_options=pacsv.ParseOptions(delimiter=options.delimiter or ","),
                                convert_options=convert)
        first = True
        pending: list[Any] = []
        gathered = 0
        for batch in reader:
            if first and batch.num_columns == 1:
                _explain_delimiter(name, options.delimiter or ",", batch.schema.names[0])
            first = False
            pending.append(batch)
            gathered += batch.num_rows
            if gathered >= rows:
                yield _piece(pending, columns)
                pending, gathered = [], 0
        if pending:
            yield _piece(pending, columns)
    except pa.ArrowInvalid as exc:
        _explain_csv_failure(path, name, options, str(exc))
        raise SourceError(f"{name} could not be read as CSV: {exc}") from None

def _piece(batches: list[Any], columns: list[str] | None) -> pa.Table:
    table = pa.Table.from_batches(batches).combine_chunks()
    return table.select([c for c in columns if c in table.column_names]) if columns is not None else table


def count_rows(path: Path, options: ReadOptions) -> int | None:
    """The number of rows of a Parquet file from its metadata (None for CSV: unknown without reading it)."""
    if _file_format(path, options) == "parquet":
        try:
            return int(pq.ParquetFile(path).metadata.num_rows)
        except (OSError, pa.ArrowException):  # not a readable Parquet file: reported when the file is read
            return None
    return None
