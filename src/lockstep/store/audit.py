"""The audit log: every prediction request, durable before its response is sent.

Layout under ``<store>/audit/``::

    wal/<pid>-<start>-<id>/<seq>.jsonl   write-ahead segments, one folder per writer
    table/                  a Delta table of compacted records
    .compact.lock           taken while compacting

A writer appends a batch of records (one JSON line each) to its current
segment, flushes and ``fsync``s the file (and the folder when it creates a
segment), and only then are the batch's requests answered: a record that was
acknowledged survives the process being killed, even with ``SIGKILL``. A
batch that was being written when the process died can leave a torn last
line; readers skip it (no response was sent for it). A batch that cannot be
written whole (a full disk, a short write, a failed ``fsync``) raises
:class:`~lockstep.core.errors.FileSystemError`, so its requests are not answered;
the writer cuts the segment back to its last whole batch and never appends
to it again. So a torn line can only be a segment's last, and a damaged line
anywhere else is an error readers report, never a record they skip.

Compaction moves segments into the Delta table: the segments of processes
that are gone, and the segments a live writer has finished (all but its
newest). Each Delta commit lists the segments it holds, so a compaction
interrupted between the commit and the removal of the files is not applied
twice. Readers return the table's records and those still in segments.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockstep.core.errors import FileSystemError, StoreError
from lockstep.core.lazy import lazy_module
from lockstep.store import _delta
from lockstep.store.audit_index import AuditIndex, SegmentCache

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
else:  # Arrow's datasets (and pandas with them): imported by the first query of the log
    pa = lazy_module("pyarrow")
    ds = lazy_module("pyarrow.dataset")

__all__ = ["AUDIT_FIELDS", "AuditLog", "SegmentWriter", "audit_schema", "encode_record", "parse_segment", "record_row"]

#: The columns of an audit record, in order.
AUDIT_FIELDS = ("request_id", "time", "endpoint", "status", "client", "model_name", "model_version",
                "model_fingerprint", "runtime", "latency_ms", "rows", "inputs", "outputs", "error")


def audit_schema() -> pa.Schema:
    return pa.schema([
        ("request_id", pa.string()), ("time", pa.timestamp("us", tz="UTC")), ("endpoint", pa.string()),
        ("status", pa.int32()), ("client", pa.string()), ("model_name", pa.string()), ("model_version", pa.int64()),
        ("model_fingerprint", pa.string()), ("runtime", pa.string()), ("latency_ms", pa.float64()),
        ("rows", pa.int64()), ("inputs", pa.string()), ("outputs", pa.string()), ("error", pa.string()),
    ])


def _start_ticks(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), and None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _identity() -> str:
    """This process's segment folder name: pid and start time, so that a reused pid is not mistaken for it."""
    ticks = _start_ticks(os.getpid())
    return f"{os.getpid()}-{ticks}" if ticks else str(os.getpid())


def _owner_alive(folder_name: str) -> bool:
    parts = folder_name.split("-")
    pid_text, ticks = parts[0], (parts[1] if len(parts) > 2 else "")
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if Path("/proc").is_dir():
        current = _start_ticks(pid)
        return current is not None and (not ticks or current == ticks)
    try:  # pragma: no cover - platforms without /proc
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: ``json.dumps(..., separators=(",", ":"), default=str)``, built once: records as segment lines, and their parts
#: as the table's text columns (the service encodes a record a request).
_COMPACT = json.JSONEncoder(separators=(",", ":"), default=str)


def encode_record(record: dict[str, Any]) -> bytes:
    """One audit record as a line of a segment (compact JSON, values JSON cannot hold as text)."""
    return _COMPACT.encode(record).encode() + b"\n"


class SegmentWriter:
    """Appends record batches to this process's segments, durably.

    Parameters
    ----------
    wal : Path
        The ``wal`` folder.
    max_records : int
        Records per segment before a new one is started.
    """

    def __init__(self, wal: Path, max_records: int = 50_000) -> None:
        # a folder per writer, never reused: compaction remembers segments by name
        self.folder = wal / f"{_identity()}-{uuid.uuid4().hex[:12]}"
        self.max_records = max_records
        self._fd: int | None = None
        self._size = 0  # bytes of whole, durable batches in the open segment
        self._count = 0
        self._seq = 0

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = [int(p.stem) for p in self.folder.glob("*.jsonl") if p.stem.isdigit()]
        self._seq = max(existing, default=-1) + 1
        path = self.folder / f"{self._seq:08d}.jsonl"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = 0
        self._count = 0
        _fsync_dir(self.folder)
        _fsync_dir(self.folder.parent)

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append ``records`` and make them durable (every byte written, then fsync) before returning.

        Raises
        ------
        FileSystemError
            When the batch could not be made durable whole (the disk is full,
            the folder is read-only, ...). The segment is cut back to its
            last whole batch and closed; the next batch starts a new one.
        """
        self.write_lines(b"".join(encode_record(r) for r in records), len(records))

    def write_lines(self, payload: bytes, count: int) -> None:
        """Append ``count`` records already encoded by :func:`encode_record` (see :meth:`write`)."""
        try:
            if self._fd is None or self._count >= self.max_records:
                self.close()
                self._open()
            fd = self._fd
            assert fd is not None  # opened just above
            written = 0
            view = memoryview(payload)
            while written < len(payload):
                n = os.write(fd, view[written:])
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += n
            os.fsync(fd)
        except OSError as exc:
            self._abandon()
            raise FileSystemError.from_os_error(exc, "write the audit log in", self.folder) from exc
        self._size += len(payload)
        self._count += count

    def _abandon(self) -> None:
        """After a failed batch: cut the segment back to its last whole batch, close it, never append to it."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._size)
            os.fsync(self._fd)
        self.close()

    def probe(self, size: int = 1 << 16) -> None:
        """Check that ``size`` bytes can be written and made durable next to the segments (then removed).

        Raises
        ------
        FileSystemError
        """
        path = self.folder.parent / f".probe-{os.getpid()}"
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                written = 0
                block = b"\0" * size
                while written < size:
                    n = os.write(fd, block[written:])
                    if n <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    written += n
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise FileSystemError.from_os_error(exc, "write the audit log in", self.folder.parent) from exc
        finally:
            with contextlib.suppress(OSError):
                path.unlink()

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_segment(path: Path) -> list[dict[str, Any]]:
    """The records of a segment file (see :func:`parse_segment`)."""
    return parse_segment(path.read_bytes(), path)


def parse_segment(data: bytes, path: object) -> list[dict[str, Any]]:
    """The records of a segment. Only its last line may be torn (a batch that was never acknowledged); a
    damaged line before it is an error, never skipped: it could hold an acknowledged record."""
    records = []
    lines = data.split(b"\n")
    complete, last = lines[:-1], lines[-1]  # what follows the last newline is an unfinished batch, if anything
    for number, line in enumerate(complete, 1):
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            if number == len(complete) and not last:
                continue  # a torn last line that happens to end with a newline
            raise StoreError(f"audit segment {path} line {number} is damaged: it may hold an acknowledged "
                             "record", hint="restore the store from a backup, or inspect the file") from None
    return records


class AuditLog:
    """The audit log of a store (``<store>/audit``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.wal = self.root / "wal"
        self.table = self.root / "table"
        self.index = AuditIndex(self.root / "index.sqlite")
        self._segment_cache = SegmentCache()

    def writer(self, max_records: int = 50_000) -> SegmentWriter:
        return SegmentWriter(self.wal, max_records)

    # ------------------------------------------------------------------ compaction

    def _compacted(self) -> set[str]:
        names: set[str] = set()
        for meta in _delta.commit_metadata(self.table).values():
            names.update(meta.get("segments", []))
        return names

    def _segments(self) -> list[Path]:
        if not self.wal.is_dir():
            return []
        return sorted(p for folder in self.wal.iterdir() if folder.is_dir() for p in folder.glob("*.jsonl"))

    def _finished(self) -> list[Path]:
        """Segments no process will write to again."""
        out = []
        for folder in sorted(p for p in self.wal.iterdir() if p.is_dir()) if self.wal.is_dir() else []:
            segments = sorted(folder.glob("*.jsonl"))
            out += segments if not _owner_alive(folder.name) else segments[:-1]
        return out

    @contextlib.contextmanager
    def _lock(self) -> Iterator[bool]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".compact.lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def compact(self, include: list[Path] | None = None) -> int:
        """Move finished segments (and ``include``) into the Delta table; return the records moved."""
        with self._lock() as locked:
            if not locked:
                return 0
            done = self._compacted()
            if not self.index.backfilled():  # a log compacted before the index existed: indexed once, whole
                self.index.backfill(self.scan(columns=["request_id", "time", "endpoint", "status", "model_name",
                                                       "model_version", "rows"]) if done else [])
            candidates = {*self._finished(), *(include or [])}
            todo = sorted(p for p in candidates if p.exists())
            fresh = [p for p in todo if self._name(p) not in done]
            contents = {self._name(p): self._load(p) for p in fresh}
            records = [r for segment in contents.values() for r in segment]
            if records:
                table = pa.Table.from_pylist([record_row(r) for r in records], schema=audit_schema())
                _delta.write_table(self.table, table, {"kind": "audit", "segments": [self._name(p) for p in fresh],
                                                       "rows": table.num_rows}, mode="append")
            # a segment leaves the wal only once it is in the table and in the index (an interrupted compaction
            # left some in the table but not the index: they are indexed now, from their files)
            indexed = self.index.indexed()
            late = {self._name(p): self._load(p) for p in todo
                    if self._name(p) not in contents and self._name(p) not in indexed}
            self.index.add({**contents, **late})
            for path in todo:
                path.unlink(missing_ok=True)
            for folder in (p for p in self.wal.iterdir() if p.is_dir()) if self.wal.is_dir() else []:
                if not any(folder.iterdir()) and (not _owner_alive(folder.name)
                                                  or any(p.parent == folder for p in include or [])):
                    folder.rmdir()
            return len(records)

    def pending(self) -> int:
        """How many record files are not compacted yet (a running service's newest, or after a failure)."""
        return len(self._segments())

    def _name(self, path: Any) -> str:
        return f"{path.parent.name}/{path.name}"

    def _load(self, path: Any) -> list[dict[str, Any]]:
        """The records of one segment."""
        return _read_segment(path)

    # ------------------------------------------------------------------ reading

    def prediction(self, request_id: str) -> tuple[str, int, int] | None:
        """``(model name, version, rows)`` of the newest successful prediction with this request id, or None.

        Indexed: the SQLite index for compacted records, an incremental cache
        for the segments (see :mod:`.audit_index`); the log is never scanned.
        """
        found = [e for e in (self.index.get(request_id), self._segment_cache.get(request_id, self._segments()))
                 if e is not None]
        if not found:
            return None
        _time, name, version, rows = max(found, key=lambda e: e[0])
        return name, version, rows

    def find(self, request_id: str, *, endpoint: str | None = None, status: int | None = None) -> dict[str, Any] | None:
        """The newest record of a request id (compacted or still in a segment), or None."""
        done = self._compacted()
        for path in reversed(self._segments()):
            if self._name(path) in done:
                continue
            for record in reversed(self._load(path)):
                if _matches(record, request_id, endpoint, status):
                    return record_row(record)
        if not _delta.is_table(self.table):
            return None
        expression = ds.field("request_id") == request_id
        if endpoint is not None:
            expression &= ds.field("endpoint") == endpoint
        if status is not None:
            expression &= ds.field("status") == status
        found = _delta.to_table(self.table, filter=expression)
        if found.num_rows == 0:
            return None
        found = found.sort_by([("time", "descending")])
        row: dict[str, Any] = found.slice(0, 1).to_pylist()[0]
        return row

    def scan(self, since: datetime | None = None, until: datetime | None = None, model: str | None = None, *,
             endpoint: str | None = None, status: int | None = None, columns: list[str] | None = None,
             batch_rows: int = 10_000) -> Iterator[pa.RecordBatch]:
        """The records that match, in batches of at most ``batch_rows``, in no particular order.

        Unlike :meth:`read`, the log is never held whole: the filters are
        pushed down to the Delta table's Parquet files (row groups whose
        statistics exclude them are skipped) and only ``columns`` are read,
        then the records still in segments are filtered one segment at a time.
        Memory is bounded by the batch size, however long the log.
        """
        schema = audit_schema()
        names = list(columns) if columns is not None else list(schema.names)
        expression = _filter(schema, since, until, model, endpoint, status)
        done = self._compacted()
        pending = [p for p in self._segments() if self._name(p) not in done]
        if _delta.is_table(self.table):
            dataset = _delta.dataset(self.table)
            # one row group at a time (those whose statistics exclude the filter are skipped): the dataset
            # scanner reads ahead across files and held most of a long window in memory
            target = pa.schema([schema.field(n) for n in names])
            for fragment in dataset.get_fragments(filter=expression):
                for piece in fragment.split_by_row_group(filter=expression):
                    for batch in piece.to_batches(columns=names, filter=expression, batch_size=batch_rows,
                                                  batch_readahead=1):
                        if batch.num_rows:
                            yield batch.cast(target)
        for path in pending:
            rows = [record_row(r) for r in self._load(path)]
            if not rows:
                continue
            part = ds.dataset(pa.Table.from_pylist(rows, schema=schema)).to_table(columns=names, filter=expression)
            for batch in part.to_batches(max_chunksize=batch_rows):
                if batch.num_rows:
                    yield batch

    def read(self, since: datetime | None = None, until: datetime | None = None,
             model: str | None = None) -> pa.Table:
        """Every record (compacted or still in segments), oldest first, optionally filtered."""
        table = pa.Table.from_batches(list(self.scan(since, until, model, batch_rows=100_000)), schema=audit_schema())
        return table.sort_by([("time", "ascending")]) if table.num_rows else table


def _filter(schema: pa.Schema, since: datetime | None, until: datetime | None, model: str | None,
            endpoint: str | None, status: int | None) -> Any:
    """The dataset expression that keeps the records of a time window, a model (``NAME`` or ``NAME/VERSION``),
    an endpoint and a status."""
    expression = ds.scalar(True)
    if since is not None:
        expression &= ds.field("time") >= pa.scalar(_utc(since), schema.field("time").type)
    if until is not None:
        expression &= ds.field("time") < pa.scalar(_utc(until), schema.field("time").type)
    if model is not None:
        name, _, version = model.partition("/")
        expression &= ds.field("model_name") == name
        if version:
            expression &= ds.field("model_version") == int(version)
    if endpoint is not None:
        expression &= ds.field("endpoint") == endpoint
    if status is not None:
        expression &= ds.field("status") == status
    return expression


def _matches(record: dict[str, Any], request_id: str, endpoint: str | None, status: int | None) -> bool:
    return (record.get("request_id") == request_id and (endpoint is None or record.get("endpoint") == endpoint)
            and (status is None or record.get("status") == status))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def record_row(record: dict[str, Any]) -> dict[str, Any]:
    row = {name: record.get(name) for name in AUDIT_FIELDS}
    if isinstance(row["time"], str):
        row["time"] = datetime.fromisoformat(row["time"])
    for name in ("inputs", "outputs", "error"):
        if row[name] is not None and not isinstance(row[name], str):
            row[name] = _COMPACT.encode(row[name])
    return row
