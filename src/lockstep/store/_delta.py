"""Delta Lake helpers shared by the store's tables.

A lockstep table is a Delta table whose commits carry lockstep's metadata as
JSON under the commit-info key ``lockstep``. Writing the data files and the
metadata is one Delta commit: a write that fails or is interrupted before the
commit leaves the table exactly as it was (the orphaned data files are not
part of any version).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from lockstep.core.errors import FileSystemError, ServiceError, StoreError
from lockstep.core.lazy import lazy_module
from lockstep.store.location import RemotePath, StorePath, service_error

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as fs
else:  # Arrow's datasets (and pandas with them): imported by the first read that needs them
    pa = lazy_module("pyarrow")
    fs = lazy_module("pyarrow.fs")
    ds = lazy_module("pyarrow.dataset")

__all__ = ["METADATA_KEY", "TABLE_CONFIGURATION", "commit_metadata", "dataset", "is_table", "open_table",
           "to_table", "write_table"]

METADATA_KEY = "lockstep"

#: Table properties set when lockstep creates a table. Old commit files are
#: never cleaned up, because they hold lockstep's metadata and time travel
#: to every version must keep working.
TABLE_CONFIGURATION = {
    "delta.enableExpiredLogCleanup": "false",
    "delta.logRetentionDuration": "interval 36500 days",
}

#: One data file per version keeps rows in the order they were written.
_ONE_FILE = 1 << 42


def _options(path: StorePath) -> dict[str, str] | None:
    return path.settings.delta_options() if isinstance(path, RemotePath) else None


def _remote_error(exc: BaseException, path: RemotePath, doing: str) -> ServiceError | StoreError:
    """A user's error for an object store that cannot be reached (delta-rs says which only in its text)."""
    text = " ".join(str(exc).split())
    if "error sending request" in text or "timed out" in text or "Connection refused" in text:
        return service_error("endpoint", path, doing)
    if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        return service_error("bucket", path, doing)
    if any(word in text for word in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403")):
        return service_error("credentials", path, doing)
    return StoreError(f"cannot {doing} {path}: {text[:500]}")


def is_table(path: StorePath) -> bool:
    if isinstance(path, RemotePath):
        try:
            return bool(DeltaTable.is_deltatable(str(path), _options(path)))
        except Exception as exc:  # deltalake raises several unrelated types
            raise _remote_error(exc, path, "read") from None
    return (path / "_delta_log").is_dir()


def open_table(path: StorePath, version: int | None = None) -> DeltaTable:
    try:
        return DeltaTable(str(path), version=version, storage_options=_options(path))
    except Exception as exc:  # deltalake raises several unrelated types
        if isinstance(path, RemotePath):
            raise _remote_error(exc, path, "open the Delta table") from None
        raise StoreError(f"cannot open the Delta table {path}: {exc}") from exc


def dataset(path: StorePath, version: int | None = None, *, text_as_dictionary: bool = False) -> pa.dataset.Dataset:
    """The table (at ``version``, default the latest) as a pyarrow dataset over its local files.

    Files are read through pyarrow's own local filesystem rather than
    delta-rs's default handler: with the latter, a process that exits just
    after a read aborts now and then ("terminate called without an active
    exception", exit 134) while the handler's threads are torn down
    (delta-rs 1.6, pyarrow 26; reproduced in 9 of 10 short scripts here, 0 of
    10 this way). Each data file's size is checked against the Delta log, as
    delta-rs's handler did. With ``text_as_dictionary``, text columns are
    read dictionary-encoded.
    """
    table = open_table(path, version=version)
    filesystem = _filesystem(path)
    actions = pa.table(table.get_add_actions(flatten=False))
    names, sizes = actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist()
    for name, size, actual in zip(names, sizes, _sizes(filesystem, names, path)):
        if actual is None:
            raise StoreError(f"cannot read the Delta table {path}: its data file {name} is missing",
                             hint="the store was modified outside lockstep; restore the file from a backup")
        if actual != size:
            raise StoreError(f"cannot read the Delta table {path}: its data file {name} has {actual:,} bytes, the "
                             f"Delta log records {size:,}: it was modified or damaged",
                             hint="the store was modified outside lockstep; restore the file from a backup")
    options: dict[str, Any] = {}
    if text_as_dictionary:
        text = [f.name for f in pa.schema(table.schema().to_arrow()) if pa.types.is_string(f.type)
                or pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type)]
        options["parquet_read_options"] = ds.ParquetReadOptions(dictionary_columns=text)
    return table.to_pyarrow_dataset(filesystem=filesystem, **options)


def _filesystem(path: StorePath) -> fs.FileSystem:
    """The table's folder as a pyarrow filesystem: the local one, or S3 (with lockstep's timeouts)."""
    if isinstance(path, RemotePath):
        s3 = fs.S3FileSystem(**path.settings.pyarrow_arguments())
        return fs.SubTreeFileSystem(f"{path.bucket}/{path.key}", s3)
    return fs.SubTreeFileSystem(str(Path(path).resolve()), fs.LocalFileSystem())


def _sizes(filesystem: fs.FileSystem, names: list[str], path: StorePath) -> list[int | None]:
    """The size of each data file as it is (None: missing)."""
    try:
        infos = filesystem.get_file_info(names) if names else []
    except OSError as exc:
        if isinstance(path, RemotePath):
            raise _remote_error(exc, path, "read") from None
        raise
    return [info.size if info.type == fs.FileType.File else None for info in infos]


def to_table(path: StorePath, version: int | None = None, columns: list[str] | None = None, filter: Any = None, *,
             text_as_dictionary: bool = False) -> pa.Table:
    """The rows of the table (at ``version``), in the order they were written."""
    return dataset(path, version, text_as_dictionary=text_as_dictionary).to_table(columns=columns, filter=filter)


def write_table(path: StorePath, data: pa.Table | pa.RecordBatchReader, metadata: dict[str, Any], *,
                mode: str = "overwrite") -> None:
    """Write ``data`` as one new version of the table at ``path``, with ``metadata`` in the commit.

    The rows are handed to delta-rs as one record batch: given several, it
    writes them in parallel and the file holds them in whatever order the
    threads finished (delta-rs 1.6; see pola-rs/polars#26912), which would
    break "rows in the order they were ingested" and every fingerprint of
    the table. A stream is therefore collected first.
    """
    if isinstance(data, pa.RecordBatchReader):
        data = data.read_all()
    data = data.combine_chunks()
    for attempt in range(_APPEND_ATTEMPTS):
        try:
            _write_once(path, data, metadata, mode)
            return
        except _CommitRace:
            # Appends from several machines (batch run records, the monitoring log) commute: delta-rs rebases
            # them itself, except when two processes create the table at once ("Metadata changed"); the loser
            # appends again to the table the winner created. Overwrites are made under the store's locks and
            # are reported, never retried.
            if mode != "append" or attempt == _APPEND_ATTEMPTS - 1:
                raise


#: How many times an append that lost a commit race is tried.
_APPEND_ATTEMPTS = 5


class _CommitRace(StoreError):
    """Another process committed to the table first (Delta's conflict, on S3 a failed conditional put)."""


def _write_once(path: StorePath, data: pa.Table, metadata: dict[str, Any], mode: str) -> None:
    kwargs: dict[str, Any] = {}
    exists = is_table(path)
    if mode == "overwrite":
        kwargs["schema_mode"] = "overwrite"
    elif exists:
        # logs appended to across lockstep versions (batch runs, monitoring): a field added since the table was
        # made becomes a column (null in the older rows), a field no longer written is null in the new rows
        kwargs["schema_mode"] = "merge"
    if not exists:
        kwargs["configuration"] = TABLE_CONFIGURATION
    if isinstance(path, RemotePath):
        kwargs["storage_options"] = _options(path)
    try:
        if not isinstance(path, RemotePath):
            path.parent.mkdir(parents=True, exist_ok=True)
        with _rust_panics_held() as held:
            try:
                write_deltalake(  # type: ignore[call-overload]  # mode is one of the overloads' literals
                    str(path),
                    data,
                    mode=mode,
                    target_file_size=_ONE_FILE,
                    commit_properties=CommitProperties(
                        custom_metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)}),
                    **kwargs,
                )
            except BaseException as exc:  # delta-rs reports a full disk as DeltaError or as a panic (BaseException)
                held.drop_panics = not isinstance(path, RemotePath) and FileSystemError.of(exc, "write",
                                                                                            path) is not None
                raise
    except CommitFailedError as exc:
        raise _CommitRace(f"another process wrote the Delta table {path} at the same moment; nothing was written "
                         f"({' '.join(str(exc).split())[:200]})", hint="run the command again") from None
    except BaseException as exc:
        if isinstance(path, RemotePath):
            if isinstance(exc, Exception):
                raise _remote_error(exc, path, "write the Delta table") from None
            raise
        error = FileSystemError.of(exc, "write the Delta table", path)
        if error is None:
            raise
        raise error from None


class _Held:
    drop_panics = False


_PANIC_LINE = re.compile(r"^thread '[^']*'( \(\d+\))? panicked at ")
_stderr_lock = threading.Lock()


@contextmanager
def _rust_panics_held() -> Iterator[_Held]:
    """Hold what is written to the process's stderr during the block, and pass it on afterwards.

    On a full disk delta-rs's writer fails twice: it returns the I/O error,
    and one of its threads panics ("Already shut down") and Rust prints the
    panic to stderr. The error becomes a plain FileSystemError; the panic
    text, which says nothing more, is left out when the block sets
    ``drop_panics``. Everything else written meanwhile (by any thread) is
    passed on unchanged. Blocks run one at a time.
    """
    held = _Held()
    with _stderr_lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
            read_end, write_end = os.pipe()
        except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to hold
            yield held
            return
        chunks: list[bytes] = []

        def drain() -> None:
            while data := os.read(read_end, 1 << 16):
                chunks.append(data)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        os.dup2(write_end, 2)
        os.close(write_end)
        try:
            yield held
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)  # the pipe's last write end closes: the reader sees its end
            os.close(saved)
            reader.join(timeout=5)
            os.close(read_end)
            text = b"".join(chunks)
            if held.drop_panics:
                text = _without_panics(text)
            view = memoryview(text)
            with contextlib.suppress(OSError):
                while view:
                    view = view[os.write(2, view):]


def _without_panics(text: bytes) -> bytes:
    """``text`` without Rust panic reports: the ``thread '...' panicked at`` line, its message, any backtrace."""
    kept, lines, i = [], text.decode(errors="replace").splitlines(keepends=True), 0
    while i < len(lines):
        if _PANIC_LINE.match(lines[i]):
            i += 2  # the location line and the panic message
            while i < len(lines) and (lines[i].startswith(("stack backtrace:", "note: ", "  "))):
                i += 1
            continue
        kept.append(lines[i])
        i += 1
    return "".join(kept).encode()


def commit_metadata(path: StorePath) -> dict[int, dict[str, Any]]:
    """lockstep's metadata of every version of the table, by version number.

    Versions written by other tools (no lockstep metadata) are left out.
    """
    if not is_table(path):
        return {}
    out: dict[int, dict[str, Any]] = {}
    for entry in open_table(path).history():
        raw = entry.get(METADATA_KEY)
        if raw is None:
            continue
        try:
            meta = json.loads(raw)
        except (TypeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{path}: version {entry.get('version')} has unreadable metadata") from exc
        out[int(entry["version"])] = meta
    return dict(sorted(out.items()))
