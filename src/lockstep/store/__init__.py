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
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path

from lockstep.core.errors import FileSystemError
from lockstep.store._files import GENERATED_MARKER, atomic_write_text, ensure_line, write_generated_folder
from lockstep.store.audit import AuditLog
from lockstep.store.features import FeatureInfo, FeatureTable
from lockstep.store.locks import exclusive
from lockstep.store.monitoring import MonitorLog
from lockstep.store.predictions import FileOutput, PredictionStore
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
    "MonitorLog",
    "PredictionStore",
    "QuarantineRecord",
    "QuarantineTable",
    "ReadOptions",
    "SnapshotInfo",
    "SnapshotTable",
    "SourceData",
    "SourceFile",
    "SourceLocation",
    "SourcePart",
    "Store",
    "atomic_write_text",
    "count_rows",
    "display_path",
    "ensure_line",
    "hash_source_files",
    "iter_file_batches",
    "locate_source",
    "read_file",
    "read_source",
    "sniff_delimiter",
    "write_generated_folder",
]

_GITIGNORE = "# lockstep's store: versioned artifacts, not source code\n*\n"


class Store:
    """A lockstep store rooted at a folder.

    Nothing is created on disk until something is written.

    Parameters
    ----------
    root : str or Path
        The store folder, for example ``my-project/.lockstep``.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.snapshots = SnapshotTable(self.root / "raw")
        self.quarantine = QuarantineTable(self.root / "quarantine")
        self.audit = AuditLog(self.root / "audit")
        self.predictions = PredictionStore(self.root / "predictions")
        self.monitoring = MonitorLog(self.root / "monitor")

    def features(self, name: str) -> FeatureTable:
        """The feature set ``name``."""
        return FeatureTable(self.root / "features" / name, name)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def exists(self) -> bool:
        return self.root.is_dir()

    def lock(self, kind: str, what: str) -> AbstractContextManager[None]:
        """Hold the store's lock of ``kind`` (one writer of that kind at a time; see :mod:`.locks`)."""
        return exclusive(self.root / "locks" / f"{kind}.lock", what)

    def ensure(self) -> None:
        """Create the store folder (and its ``.gitignore``) if it does not exist yet."""
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
        """
        self.ensure()
        probe = self.root / f".writable-{os.getpid()}"
        try:
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise FileSystemError.from_os_error(exc, doing, self.root) from None
