"""What a project's store holds, read-only: raw snapshots and feature set versions, described and compared.

:class:`Catalog` needs only the configuration and the store, never the
training, serving or MLflow code, so that ``lockstep data list`` and the
other read-only commands start in a fraction of a second;
:class:`lockstep.project.Project` offers the same methods through it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lockstep.core.config import Config, load_config
from lockstep.core.lazy import lazy_module
from lockstep.registry.refs import ModelRef, parse_model_ref
from lockstep.store import FeatureInfo, FeatureTable, SnapshotInfo, Store

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    import lockstep.data.diff as data_diff
    import lockstep.data.report as data_report
    import lockstep.docgen.openlineage as openlineage
    import lockstep.features.report as feature_report
    from lockstep.data.diff import TableDiff
else:  # describing and comparing versions is for the commands that show them, not for a skip decision
    pa = lazy_module("pyarrow")
    data_diff = lazy_module("lockstep.data.diff")
    data_report = lazy_module("lockstep.data.report")
    feature_report = lazy_module("lockstep.features.report")
    openlineage = lazy_module("lockstep.docgen.openlineage")  # with [lineage] on only

__all__ = ["Catalog"]

T = TypeVar("T")


class Catalog:
    """The versions in a project's store.

    Parameters
    ----------
    config : Config
    store : Store
    """

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self._lineage: openlineage.LineageEvents | None = None

    def traced(self, step: str, work: Callable[[], T], **call: Any) -> T:
        """Run one step of the pipelines: ``work()``, and with ``[lineage]`` on, as one OpenLineage run.

        The run's START event is sent before the work, then COMPLETE with the
        datasets read from its result (and ``call``, the arguments that named
        its inputs), or FAIL with the error, which is raised again. A step
        traced while another runs (the steps of ``run``, of the retraining
        loop) names that one as its parent.
        """
        if not self.config.lineage.enabled:
            return work()
        if self._lineage is None:
            self._lineage = openlineage.LineageEvents(self.config, self.store)
        return self._lineage.traced(step, work, call)

    @classmethod
    def open(cls, path: str | Path = ".") -> Catalog:
        """The catalog of the project in ``path`` (the folder holding ``lockstep.toml``)."""
        config = load_config(path)
        return cls(config, Store.of(config))

    def model_ref(self, text: str | None = None, default_alias: str | None = None) -> ModelRef:
        """Parse a model reference (``NAME@ALIAS``, ``NAME/VERSION``); the name defaults to the project's model."""
        return parse_model_ref(text, self.config.model_name, default_alias)

    # ------------------------------------------------------------------ raw snapshots

    def snapshots(self) -> list[SnapshotInfo]:
        """Every raw snapshot, oldest first."""
        return self.store.snapshots.list()

    def snapshot(self, version: int | None = None) -> SnapshotInfo:
        """The metadata of snapshot ``version`` (default: the latest)."""
        return self.store.snapshots.info(version)

    def read_snapshot(self, version: int | None = None) -> pa.Table:
        """The rows of snapshot ``version`` (default: the latest)."""
        return self.store.snapshots.read(version)

    def describe(self, version: int | None = None) -> dict[str, Any]:
        """Metadata, column summaries, splits and target balance of a snapshot."""
        info = self.snapshot(version)
        return data_report.describe_snapshot(info, self.store.snapshots.read(info.version), self.config)

    def diff(self, old: int, new: int) -> TableDiff:
        """What changed from snapshot ``old`` to snapshot ``new``."""
        old_info, new_info = self.snapshot(old), self.snapshot(new)
        snapshots = self.store.snapshots
        return data_diff.diff_snapshots(old_info, snapshots.read(old), new_info, snapshots.read(new))

    # ------------------------------------------------------------------ feature sets

    @property
    def features(self) -> FeatureTable:
        """The project's feature set."""
        return self.store.features(self.config.features.name)

    def feature_versions(self) -> list[FeatureInfo]:
        """Every version of the project's feature set, oldest first."""
        return self.features.list()

    def feature_info(self, version: int | None = None) -> FeatureInfo:
        """The metadata of a feature set version (default: the latest)."""
        return self.features.info(version)

    def read_features(self, version: int | None = None) -> pa.Table:
        """The rows of a feature set version: id, features, label, split."""
        return self.features.read(version)

    def describe_features(self, version: int | None = None) -> dict[str, Any]:
        """Metadata, lineage back to the raw snapshot, and a summary of every feature column."""
        info = self.feature_info(version)
        snapshots = {s.version: s for s in self.snapshots()}
        return feature_report.describe_features(info, self.read_features(info.version), snapshots.get(info.raw_version))

    def diff_features(self, old: int, new: int) -> dict[str, Any]:
        """What changed between two feature set versions: rows, columns, summaries and lineage."""
        table = self.features
        old_info, new_info = table.info(old), table.info(new)
        return feature_report.diff_features(old_info, table.read(old), new_info, table.read(new))
