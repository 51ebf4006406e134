"""A lockstep project: its configuration and its store, and what can be done with them.

This is the Python API behind the CLI.

Examples
--------
>>> import lockstep
>>> project = lockstep.Project("examples/telco-churn")      # doctest: +SKIP
>>> result = project.ingest()                               # doctest: +SKIP
>>> result.snapshot.version, result.changed                 # doctest: +SKIP
(0, True)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lockstep.config import Config, load_config

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from lockstep.data.diff import SnapshotDiff
    from lockstep.data.ingest import IngestResult, Progress
    from lockstep.store import SnapshotInfo, Store

__all__ = ["Project"]


class Project:
    """A project folder holding ``lockstep.toml``.

    Parameters
    ----------
    path : str or Path, default "."
        The project folder.
    config : Config, optional
        An already-loaded configuration (then ``path`` is ignored).

    Attributes
    ----------
    config : Config
    store : Store
    """

    def __init__(self, path: str | Path = ".", config: Config | None = None) -> None:
        from lockstep.store import Store

        self.config = config if config is not None else load_config(path)
        self.store: Store = Store(self.config.store_path)

    def __repr__(self) -> str:
        return f"Project({str(self.config.project_dir)!r})"

    @property
    def path(self) -> Path:
        return self.config.project_dir

    def ingest(self, source: str | Path | None = None, *, quarantine: bool = False, force: bool = False,
               progress: Progress | None = None) -> IngestResult:
        """Validate the raw source and snapshot it if it changed (see :func:`lockstep.data.ingest`)."""
        from lockstep.data.ingest import ingest

        return ingest(self.config, self.store, source=Path(source) if source is not None else None,
                      quarantine=quarantine, force=force, progress=progress)

    def snapshots(self) -> list[SnapshotInfo]:
        """Every raw snapshot, oldest first."""
        return self.store.snapshots.list()

    def snapshot(self, version: int | None = None) -> SnapshotInfo:
        """The metadata of snapshot ``version`` (default: the latest)."""
        return self.store.snapshots.info(version)

    def read_snapshot(self, version: int | None = None) -> pa.Table:
        """The rows of snapshot ``version`` (default: the latest)."""
        return self.store.snapshots.read(version)

    def describe(self, version: int | None = None) -> dict:
        """Metadata, column summaries, splits and target balance of a snapshot."""
        from lockstep.data.report import describe_snapshot

        info = self.snapshot(version)
        return describe_snapshot(info, self.store.snapshots.read(info.version), self.config)

    def diff(self, old: int, new: int) -> SnapshotDiff:
        """What changed from snapshot ``old`` to snapshot ``new``."""
        from lockstep.data.diff import diff_snapshots

        old_info, new_info = self.snapshot(old), self.snapshot(new)
        return diff_snapshots(old_info, self.store.snapshots.read(old), new_info, self.store.snapshots.read(new))
