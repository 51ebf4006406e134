"""``lockstep features``: a raw snapshot in, a versioned feature set out, computed at most once.

The steps:

1. fingerprint the inputs without reading any data: the raw snapshot's
   recorded fingerprint, the feature code (:mod:`lockstep.core.usercode`), the
   configuration that shapes the features, the numerical environment and
   lockstep's version. If a version of the feature set was computed from
   exactly these inputs, it is up to date and nothing runs (step caching);
2. read the snapshot and build the pipeline's input (:func:`~lockstep.core.frames.raw_frame`);
3. run the pipeline and check its output (:func:`~lockstep.features.pipeline.run_pipeline`);
4. check on a sample that the pipeline is stateless, row by row;
5. write id, features, label and split as a new version of the feature set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lockstep._version import __version__
from lockstep.core.dtypes import dtype_of
from lockstep.core.environment import capture, core_fingerprint, git_state
from lockstep.core.errors import LeakageError, PipelineError
from lockstep.core.fingerprint import fingerprint_json, fingerprint_table
from lockstep.core.frames import raw_frame
from lockstep.core.usercode import code_identity, load_object
from lockstep.data.splits import SPLIT_VALUES, SPLITS, UNLABELED, split_codes
from lockstep.features.pipeline import check_stateless, make_transformer, run_pipeline, sample_rows
from lockstep.store import FeatureInfo, SnapshotInfo

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.store import Store

__all__ = ["FeatureResult", "build_features", "feature_inputs", "feature_table", "transform_raw"]

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
    environment = capture()
    parts = {
        "raw": raw_fingerprint,
        "code": code["fingerprint"],
        "config": fingerprint_json(_config_part(config)),
        "environment": core_fingerprint(environment),
        "lockstep": __version__,
    }
    return {"code": code, "environment": environment, "parts": parts, "inputs": fingerprint_json(parts)}


def build_features(config: Config, store: Store, *, raw_version: int | None = None, force: bool = False,
                   progress: Progress | None = None) -> FeatureResult:
    """Compute the feature set, one build at a time per store: a second waits, then finds the first's version.

    See :func:`_build_features` for the parameters.
    """
    if not store.exists():  # nothing to build from; the error says so without creating the store
        return _build_features(config, store, raw_version=raw_version, force=force, progress=progress)
    with store.lock("features", "feature build"):
        return _build_features(config, store, raw_version=raw_version, force=force, progress=progress)


def _build_features(config: Config, store: Store, *, raw_version: int | None = None, force: bool = False,
                    progress: Progress | None = None) -> FeatureResult:
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

    ref = config.features.pipeline or "(identity: the raw columns)"
    step("importing the feature pipeline")
    factory = load_object(config.features.pipeline, config.project_dir) if config.features.pipeline else None

    step(f"reading raw snapshot {snapshot.version}")
    raw = store.snapshots.read(snapshot.version, text_as_dictionary=True)

    step("running the feature pipeline")
    frame, features = transform_raw(config, raw, factory, ref)

    rows = sample_rows(frame, config.features.parity_rows)
    step(f"checking that the pipeline is stateless on {len(rows)} rows")
    ids = raw.column(snapshot.id_column).to_numpy(zero_copy_only=False)
    parity = check_stateless(lambda: make_transformer(factory, ref), frame, features, rows, ref, ids)

    step("assembling the feature table")
    output, dtypes, codes = feature_table(config, raw, features, snapshot.id_column, snapshot.target, ref)

    step("writing the feature set")
    store.ensure()
    info = _version_info(config, snapshot, fingerprints, output, features, dtypes, codes, parity.to_dict())
    return FeatureResult(info=table.write(output, info), skipped=False)


def _snapshot_with_inputs(config: Config, store: Store, version: int | None) -> SnapshotInfo:
    """The raw snapshot to compute features from, refused when it lacks a column ``[features]`` reads."""
    snapshot = store.snapshots.info(version)
    missing = [c for c in config.feature_inputs if c not in snapshot.column_names]
    if missing:
        raise PipelineError(f"raw snapshot {snapshot.version} has no column(s) {missing} that [features] reads",
                            hint="ingest data with those columns, or change [features] columns")
    return snapshot


def _version_info(config: Config, snapshot: SnapshotInfo, fingerprints: dict[str, Any], output: pa.Table,
                  features: pd.DataFrame, dtypes: dict[str, str], codes: np.ndarray, parity: dict[str, Any],
                  ) -> FeatureInfo:
    """The description of a new feature set version: its fingerprint, columns, lineage and split counts."""
    return FeatureInfo(
        version=-1,
        name=config.features.name,
        fingerprint=fingerprint_table(output),
        rows=output.num_rows,
        columns=[str(c) for c in features.columns],
        dtypes=dtypes,
        id_column=snapshot.id_column,
        label_column=snapshot.target,
        raw_version=snapshot.version,
        raw_fingerprint=snapshot.fingerprint,
        code=fingerprints["code"],
        config_fingerprint=fingerprints["parts"]["config"],
        environment_fingerprint=fingerprints["parts"]["environment"],
        inputs=fingerprints["inputs"],
        parity=parity,
        splits={name: int((codes == i).sum()) for i, name in enumerate(SPLIT_VALUES) if name in SPLITS
                or (codes == i).any()},
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        lockstep_version=__version__,
        environment=fingerprints["environment"],
        git=git_state(config.project_dir),
    )


def transform_raw(config: Config, raw: pa.Table, factory: Callable[[], Any] | None,
                  ref: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pipeline's input frame from raw rows, and the features it computes (output contract checked)."""
    frame = raw_frame(raw, config.data.columns, config.feature_inputs)
    features = run_pipeline(make_transformer(factory, ref), frame, ref)
    _check_names(features, config, ref)
    return frame, features


def feature_table(config: Config, raw: pa.Table, features: pd.DataFrame, id_column: str, target: str, ref: str):
    """The stored feature table (id, features, label, split), its feature dtypes, and the split codes.

    A row whose target is missing is in the split ``unlabeled``: it cannot be learned from or scored, so
    training, evaluation, parity and monitoring's reference leave it out (``lockstep predict`` is for it).
    """
    codes = split_codes(raw, id_column, config.split, config.feature_inputs)
    label = raw.column(target)
    if label.null_count or pa.types.is_floating(label.type):
        missing = np.asarray(pc.is_null(label, nan_is_null=True).to_numpy(zero_copy_only=False), dtype=bool)
        codes = np.where(missing, SPLIT_VALUES.index(UNLABELED), codes).astype(np.int8)
    output, dtypes = _assemble(raw, features, id_column, target, codes, ref)
    return output, dtypes, codes


def _check_names(features: pd.DataFrame, config: Config, ref: str) -> None:
    names = [str(c) for c in features.columns]
    target = config.data.target
    if target in names:
        raise LeakageError(f"the feature pipeline {ref!r} outputs a column named like the target '{target}'",
                           hint="features must not contain the answer; drop or rename that column")
    for reserved in (config.data.id_column, "split"):
        if reserved in names:
            raise PipelineError(f"the feature pipeline {ref!r} outputs a column named '{reserved}', which the "
                                "feature table uses for the id or the split", hint="rename that feature")
    if not names:
        raise PipelineError(f"the feature pipeline {ref!r} outputs no columns")




def _text_array(series: pd.Series) -> pa.Array:
    """Text to Arrow through its distinct values (one conversion per distinct value, not per row)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    dictionary = pa.array(np.asarray(uniques, dtype=object), pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32(), mask=codes < 0), dictionary).cast(pa.string())


def _assemble(raw: pa.Table, features: pd.DataFrame, id_column: str, label: str, codes, ref: str):
    """id, features, label, split as one Arrow table; feature dtypes as logical types."""
    def decoded(column):
        return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column

    arrays, names, dtypes = [decoded(raw.column(id_column))], [id_column], {}
    for name in features.columns:
        series = features[name]
        textual = pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)
        textual = textual and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")
        try:
            array = _text_array(series) if textual else pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise PipelineError(f"feature {name!r} of {ref!r} mixes types that cannot be stored: {exc}",
                                hint="give every feature one type: numbers, booleans or text") from None
        if pa.types.is_null(array.type):
            array = array.cast(pa.float64())
        arrays.append(array)
        names.append(str(name))
        dtypes[str(name)] = dtype_of(array.type)
    split = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), pa.array(SPLIT_VALUES, pa.string()))
    arrays += [decoded(raw.column(label)), split.cast(pa.string())]
    names += [label, "split"]
    return pa.table(arrays, names=names), dtypes
