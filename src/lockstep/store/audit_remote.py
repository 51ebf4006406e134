"""The audit log of a store in S3: the same records and readers, written by any number of replicas.

Layout under ``s3://BUCKET/PREFIX/audit/``::

    wal/<host>-<pid>-<id>/<seq>.jsonl   one object per batch of records, per writer
    table/                              the Delta table of compacted records
    locks/compact.lock                  held while compacting (see :func:`~lockstep.store.locks.remote_exclusive`)

An object store cannot append, so each batch a replica writes is an object
of its own, and a PUT that returned is durable: a request is answered only
after the PUT of its batch returned, so a replica killed at any moment loses
no answered request. Every object is whole and never written again, so any
replica may compact any of them: the Delta commit lists the objects it
holds (an interrupted compaction is never applied twice), then they are
deleted. Look-ups by request id read the table with a filter and the
objects not yet compacted.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lockstep.core.errors import FileSystemError, ServiceError, UserError
from lockstep.core.lazy import lazy_module
from lockstep.store import _delta, objects
from lockstep.store.audit import AuditLog, audit_schema, encode_record, parse_segment, record_row
from lockstep.store.location import RemotePath
from lockstep.store.locks import remote_exclusive

if TYPE_CHECKING:
    import pyarrow as pa
else:  # Arrow (and NumPy with it): imported by the first call that reads or writes data, not by a skip
    pa = lazy_module("pyarrow")

__all__ = ["ObjectSegmentWriter", "RemoteAuditLog"]


class ObjectSegmentWriter:
    """Writes each batch of records as one object; a batch is durable when :meth:`write` returns.

    Parameters
    ----------
    wal : RemotePath
        The ``wal`` prefix.
    """

    def __init__(self, wal: RemotePath, max_records: int = 50_000) -> None:
        host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40]
        self.folder = wal / f"{host}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.max_records = max_records
        self._seq = 0

    def write(self, records: list[dict[str, Any]]) -> None:
        """Write ``records`` as the writer's next object.

        Raises
        ------
        FileSystemError
            When the object could not be written (the store cannot be reached, refuses the write).
        """
        self.write_lines(b"".join(encode_record(r) for r in records), len(records))

    def write_lines(self, payload: bytes, count: int) -> None:
        """Write ``count`` records already encoded by :func:`~lockstep.store.audit.encode_record` (see
        :meth:`write`)."""
        try:
            objects.put(self.folder / f"{self._seq:08d}.jsonl", payload)
        except ServiceError as exc:
            raise FileSystemError(exc.message, hint=exc.hint) from exc
        self._seq += 1

    def probe(self, size: int = 1 << 16) -> None:
        """Check that an object can be written next to the batches (then removed)."""
        probe = self.folder.parent / f".probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            objects.put(probe, b"\0" * size)
            objects.delete(probe)
        except ServiceError as exc:
            raise FileSystemError(exc.message, hint=exc.hint) from exc

    def close(self) -> None:
        """Nothing is held open between batches."""


class RemoteAuditLog(AuditLog):
    """The audit log of an S3 store (see the module's docstring)."""

    def __init__(self, root: RemotePath) -> None:
        self.root = root  # type: ignore[assignment]  # a RemotePath where the base class has a Path
        self.wal = root / "wal"  # type: ignore[assignment]
        self.table = root / "table"  # type: ignore[assignment]

    def writer(self, max_records: int = 50_000) -> ObjectSegmentWriter:  # type: ignore[override]
        return ObjectSegmentWriter(self.wal, max_records)  # type: ignore[arg-type]

    def _segments(self) -> list[Any]:
        wal: RemotePath = self.wal  # type: ignore[assignment]
        return [wal / key for key in objects.list_keys(wal) if key.endswith(".jsonl") and "/" in key]

    def _finished(self) -> list[Any]:
        return self._segments()  # every object is whole: none is still being written

    def _load(self, path: Any) -> list[dict[str, Any]]:
        found = objects.get(path)
        return parse_segment(found[0], path) if found is not None else []

    @contextlib.contextmanager
    def _lock(self) -> Iterator[bool]:
        root: RemotePath = self.root  # type: ignore[assignment]
        with contextlib.ExitStack() as stack:
            try:  # another replica compacting now: this one skips its turn
                stack.enter_context(remote_exclusive(root / "locks" / "compact.lock", "audit compaction", timeout=0))
            except UserError:
                yield False
                return
            yield True

    def compact(self, include: list[Any] | None = None) -> int:
        """Move every batch object into the Delta table; return the records moved."""
        with self._lock() as locked:
            if not locked:
                return 0
            done = self._compacted()
            todo = sorted({*self._segments(), *(include or [])}, key=str)
            fresh = [p for p in todo if self._name(p) not in done]
            contents = {self._name(p): self._load(p) for p in fresh}
            records = [r for segment in contents.values() for r in segment]
            if records:
                table = pa.Table.from_pylist([record_row(r) for r in records], schema=audit_schema())
                _delta.write_table(self.table, table, {"kind": "audit", "segments": list(contents),
                                                       "rows": table.num_rows}, mode="append")
            for path in todo:
                objects.delete(path)
            return len(records)

    def prediction(self, request_id: str) -> tuple[str, int, int] | None:
        """``(model name, version, rows)`` of the newest successful prediction with this request id, or None."""
        row = self.find(request_id, endpoint="/predict", status=200)
        if row is None:
            return None
        return str(row["model_name"]), int(row["model_version"] or 0), int(row["rows"] or 0)
