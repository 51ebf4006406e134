"""The store: the only code that reads or writes lockstep's artifacts.

The embedded store is a folder (``.lockstep/`` in the project by default)
holding Delta Lake tables::

    .lockstep/
      raw/              raw snapshots, one Delta version per changed ingest
      quarantine/       source rows that broke the schema, with the reasons
      features/<name>/  feature sets, one Delta version per computation
      audit/            the audit log of every prediction request (segments, then a Delta table)
      predictions/      batch prediction outputs kept in the store, and the record of every batch run
      monitor/          the log of every monitoring run: window, drift, what was done about it

Every write is a single Delta commit, so a failed or interrupted write leaves
the previous version intact and readable.

A store can also live in S3 or an S3-compatible server (``s3://BUCKET/PREFIX``,
see :mod:`.location`): the same tables, committed with S3's conditional
writes, and locks that hold across machines (:func:`.locks.remote_exclusive`).
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager

from lockstep.core.config import Config
from lockstep.core.errors import FileSystemError
from lockstep.store import objects
from lockstep.store._files import GENERATED_MARKER, atomic_write_text, ensure_line, read_text, write_generated_folder
from lockstep.store.audit import AuditLog
from lockstep.store.audit_remote import RemoteAuditLog
from lockstep.store.features import FeatureInfo, FeatureTable
from lockstep.store.inputs import (
    InputPiece,
    PartitionedInput,
    is_parquet_input,
    parquet_input,
    read_piece,
    table_input,
)
from lockstep.store.location import RemotePath, StorePath, is_remote, store_path
from lockstep.store.locks import exclusive, remote_exclusive
from lockstep.store.monitoring import MonitorLog
from lockstep.store.predictions import FileOutput, FolderOutput, PredictionStore
from lockstep.store.quarantine import QuarantineRecord, QuarantineTable
from lockstep.store.snapshots import SnapshotInfo, SnapshotTable
from lockstep.store.sources import (
    ReadOptions,
    SourceData,
    SourceFile,
    SourceLocation,
    SourcePart,
    count_rows,
    display_path,
    hash_source_files,
    iter_file_batches,
    locate_source,
    read_file,
    read_source,
    sniff_delimiter,
)

__all__ = [
    "GENERATED_MARKER",
    "AuditLog",
    "FeatureInfo",
    "FeatureTable",
    "FileOutput",
    "FolderOutput",
    "InputPiece",
    "PartitionedInput",
    "MonitorLog",
    "PredictionStore",
    "QuarantineRecord",
    "QuarantineTable",
    "ReadOptions",
    "RemotePath",
    "SnapshotInfo",
    "SnapshotTable",
    "SourceData",
    "SourceFile",
    "SourceLocation",
    "SourcePart",
    "Store",
    "StorePath",
    "atomic_write_text",
    "count_rows",
    "display_path",
    "is_remote",
    "is_parquet_input",
    "parquet_input",
    "read_piece",
    "table_input",
    "ensure_line",
    "hash_source_files",
    "iter_file_batches",
    "locate_source",
    "read_file",
    "read_source",
    "read_text",
    "sniff_delimiter",
    "store_path",
    "write_generated_folder",
]

_GITIGNORE = "# lockstep's store: versioned artifacts, not source code\n*\n"


class Store:
    """A lockstep store rooted at a folder, or at a prefix in S3.

    Nothing is created until something is written.

    Parameters
    ----------
    root : str, Path or RemotePath
        The store folder (for example ``my-project/.lockstep``) or ``s3://BUCKET/PREFIX``.
    storage_options : dict, optional
        How to reach an S3 store (see :mod:`lockstep.store.location`).
    """

    def __init__(self, root: str | StorePath, storage_options: dict[str, str] | None = None) -> None:
        self.root: StorePath = root if isinstance(root, RemotePath) else store_path(root, storage_options)
        self.snapshots = SnapshotTable(self.root / "raw")
        self.quarantine = QuarantineTable(self.root / "quarantine")
        self.audit: AuditLog = (RemoteAuditLog(self.root / "audit") if isinstance(self.root, RemotePath)
                                else AuditLog(self.root / "audit"))
        self.predictions = PredictionStore(self.root / "predictions")
        self.monitoring = MonitorLog(self.root / "monitor")

    @classmethod
    def of(cls, config: Config) -> Store:
        """The store of a project: ``[project] store`` (a folder, or S3 with ``[project.storage_options]``)."""
        return cls(config.store_location, config.project.storage_options)

    @property
    def remote(self) -> bool:
        return is_remote(self.root)

    @property
    def storage_options(self) -> dict[str, str]:
        return dict(self.root.options) if isinstance(self.root, RemotePath) else {}

    def features(self, name: str) -> FeatureTable:
        """The feature set ``name``."""
        return FeatureTable(self.root / "features" / name, name)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def exists(self) -> bool:
        if isinstance(self.root, RemotePath):
            return objects.exists(self.root)
        return self.root.is_dir()

    def check(self) -> None:
        """Reach the store: for S3, the endpoint, the credentials and the bucket (a :class:`StoreError` naming
        the one at fault); nothing to do for a folder."""
        if isinstance(self.root, RemotePath):
            objects.check(self.root)

    def lock(self, kind: str, what: str) -> AbstractContextManager[None]:
        """Hold the store's lock of ``kind`` (one writer of that kind at a time; see :mod:`.locks`)."""
        if isinstance(self.root, RemotePath):
            return remote_exclusive(self.root / "locks" / f"{kind}.lock", what)
        return exclusive(self.root / "locks" / f"{kind}.lock", what)

    def ensure(self) -> None:
        """Create the store folder (and its ``.gitignore``) if it does not exist yet; reach an S3 store."""
        if isinstance(self.root, RemotePath):
            objects.check(self.root)
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            ignore = self.root / ".gitignore"
            if not ignore.exists():
                atomic_write_text(ignore, _GITIGNORE)
        except OSError as exc:
            raise FileSystemError.from_os_error(exc, "create the store", self.root) from None

    def check_writable(self, doing: str) -> None:
        """Fail early, before hours of work, if the store cannot be written (read-only, no permission).

        Parameters
        ----------
        doing : str
            What needs the store, for the message (``"record the batch run in"``).

        Raises
        ------
        FileSystemError
            Naming the store folder and the reason.
        StoreError
            For an S3 store that cannot be reached or written.
        """
        self.ensure()
        if isinstance(self.root, RemotePath):
            probe_object = self.root / f".writable-{os.getpid()}"
            objects.put(probe_object, b"")
            objects.delete(probe_object)
            return
        probe = self.root / f".writable-{os.getpid()}"
        try:
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise FileSystemError.from_os_error(exc, doing, self.root) from None
