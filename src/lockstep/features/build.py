"""``lockstep features``: a raw snapshot in, a versioned feature set out, computed at most once.

The steps:

1. fingerprint the inputs without reading any data: the raw snapshot's
   recorded fingerprint, the feature code (:mod:`lockstep.core.usercode`), the
   configuration that shapes the features, the numerical environment and
   lockstep's version. If a version of the feature set was computed from
   exactly these inputs, it is up to date and nothing runs (step caching);
2. partition by partition (:mod:`lockstep.features.partitioned`: here, or on
   Dask's workers), read the snapshot's rows and build the pipeline's input
   (:func:`~lockstep.core.frames.raw_frame`), run the pipeline and check its
   output (:func:`~lockstep.features.pipeline.run_pipeline`), check on a
   sample that it is stateless, row by row, and write id, features, label
   and split as a data file;
3. fingerprint the files in order and commit them as a new version of the
   feature set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lockstep._version import __version__
from lockstep.compute import Compute, ProjectCode, compute_session, reach
from lockstep.core.environment import capture, core_fingerprint, git_state
from lockstep.core.errors import PipelineError
from lockstep.core.fingerprint import fingerprint_json
from lockstep.core.lazy import lazy_module
from lockstep.core.usercode import code_identity, load_object
from lockstep.store import FeatureInfo, SnapshotInfo

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.features import partitioned
    from lockstep.features.partitioned import PartitionedFeatures
    from lockstep.store import Store

else:  # the pipeline's machinery (scikit-learn, pandas): imported when there is work to do, not to find none
    partitioned = lazy_module("lockstep.features.partitioned")

__all__ = ["FeatureResult", "build_features", "feature_inputs"]

Progress = Callable[[str], None]


@dataclass
class FeatureResult:
    """The outcome of :func:`build_features`.

    Attributes
    ----------
    info : FeatureInfo
        The version written, or the one already up to date.
    skipped : bool
        True when every input fingerprint matched an existing version.
    """

    info: FeatureInfo
    skipped: bool

    def to_dict(self) -> dict:
        out = self.info.to_dict()
        out["skipped"] = self.skipped
        return out


def _config_part(config: Config) -> dict:
    """The configuration that shapes a feature set (not the parity sample size)."""
    normalized = config.normalized()
    features = {k: v for k, v in normalized["features"].items() if k != "parity_rows"}
    data = {k: normalized["data"][k] for k in ("id", "target", "task", "schema")}
    # The schema is a table whose keys are sorted here; the order of the pipeline's input columns is not.
    return {"features": features, "data": data, "split": normalized["split"], "inputs": config.feature_inputs}


def feature_inputs(config: Config, raw_fingerprint: str) -> dict[str, Any]:
    """Every input of a feature computation, fingerprinted; ``inputs`` is the cache key."""
    ref = config.features.pipeline
    if ref is not None:
        code = code_identity(ref, config.project_dir).to_dict()
    else:
        code = {"ref": None, "files": {}, "fingerprint": fingerprint_json({})}
    parts = {
        "raw": raw_fingerprint,
        "code": code["fingerprint"],
        "config": fingerprint_json(_config_part(config)),
        "environment": core_fingerprint(),  # read without importing the numerical stack: a skip imports none of it
        "lockstep": __version__,
    }
    return {"code": code, "parts": parts, "inputs": fingerprint_json(parts)}


def build_features(config: Config, store: Store, *, raw_version: int | None = None, force: bool = False,
                   progress: Progress | None = None, compute: str | None = None) -> FeatureResult:
    """Compute the feature set, one build at a time per store: a second waits, then finds the first's version.

    See :func:`_build_features` for the parameters.
    """
    reach(config.compute, compute)  # a scheduler that does not answer: said now, before any reading
    if not store.exists():  # nothing to build from; the error says so without creating the store
        return _build_features(config, store, raw_version=raw_version, force=force, progress=progress,
                               compute=compute)
    with store.lock("features", "feature build"):
        return _build_features(config, store, raw_version=raw_version, force=force, progress=progress,
                               compute=compute)


def _build_features(config: Config, store: Store, *, raw_version: int | None = None, force: bool = False,
                    progress: Progress | None = None, compute: str | None = None) -> FeatureResult:
    """Compute (or find up to date) the feature set of ``[features]`` from a raw snapshot.

    Parameters
    ----------
    config : Config
    store : Store
    raw_version : int, optional
        The raw snapshot (default: the latest).
    force : bool, default False
        Recompute even when a version with the same inputs exists.
    progress : callable, optional
        Called with the name of each step.
    compute : {"local", "dask"}, optional
        Where the pipeline runs (default: ``[compute] backend``): here on the whole snapshot, or on Dask's
        workers partition by partition (:mod:`lockstep.features.partitioned`). The feature set is the same.

    Returns
    -------
    FeatureResult

    Raises
    ------
    NotFoundError
        If the raw snapshot does not exist.
    CodeError, PipelineError, LeakageError
        If the pipeline cannot be loaded or breaks its contract; nothing is written.
    """
    step = progress or (lambda _name: None)
    snapshot = _snapshot_with_inputs(config, store, raw_version)

    step("fingerprinting the inputs")
    fingerprints = feature_inputs(config, snapshot.fingerprint)
    table = store.features(config.features.name)
    if not force:
        existing = table.find(fingerprints["inputs"])
        if existing is not None:
            return FeatureResult(info=existing, skipped=True)

    if config.features.pipeline:  # code that does not import is said before any reading
        step("importing the feature pipeline")
        load_object(config.features.pipeline, config.project_dir)
    code = ProjectCode.top_level(config.project_dir, fingerprints["code"]["files"])
    with compute_session(config.compute, compute, threads=1, code=code) as session:
        store.ensure()
        built = partitioned.build_partitioned(config, store.snapshots, table, snapshot, session, step)
        step("writing the feature set")
        info = _version_info(config, snapshot, fingerprints, built, session)
        return FeatureResult(info=table.commit_parts(built.parts, built.schema, info), skipped=False)


def _snapshot_with_inputs(config: Config, store: Store, version: int | None) -> SnapshotInfo:
    """The raw snapshot to compute features from, refused when it lacks a column ``[features]`` reads."""
    snapshot = store.snapshots.info(version)
    missing = [c for c in config.feature_inputs if c not in snapshot.column_names]
    if missing:
        raise PipelineError(f"raw snapshot {snapshot.version} has no column(s) {missing} that [features] reads",
                            hint="ingest data with those columns, or change [features] columns")
    return snapshot


def _version_info(config: Config, snapshot: SnapshotInfo, fingerprints: dict[str, Any], built: PartitionedFeatures,
                  compute: Compute) -> FeatureInfo:
    """The description of a new feature set version: its fingerprint, columns, lineage and split counts."""
    return FeatureInfo(
        version=-1,
        name=config.features.name,
        fingerprint=built.fingerprint,
        rows=built.rows,
        columns=list(built.dtypes),
        dtypes=built.dtypes,
        id_column=snapshot.id_column,
        label_column=snapshot.target,
        raw_version=snapshot.version,
        raw_fingerprint=snapshot.fingerprint,
        code=fingerprints["code"],
        config_fingerprint=fingerprints["parts"]["config"],
        environment_fingerprint=fingerprints["parts"]["environment"],
        inputs=fingerprints["inputs"],
        parity=built.parity,
        splits=built.splits,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        lockstep_version=__version__,
        environment=capture(),
        git=git_state(config.project_dir),
        compute=compute.record(),
    )
