"""``lockstep train``: a feature version in, a registered model out, computed at most once.

1. fingerprint the inputs (feature version, the code of the model and of the
   feature pipeline, the configuration, the numerical environment,
   lockstep's version); a finished run with the same inputs means the model
   is up to date;
2. check the model callable returns a Pipeline ending in an estimator of the
   task, and that the search space names real parameters;
3. search on cross-validation folds of the training split (seeded), then fit
   the final model once per seed under the determinism guard, and evaluate
   each on valid and test;
4. build the registered model, the feature pipeline and the primary seed's
   model pipeline in one Pipeline from raw columns to prediction, and check
   that it reproduces the evaluated test predictions bit for bit;
5. log everything to MLflow and register the model as ``challenger``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lockstep._version import __version__
from lockstep.compute import Compute, ProjectCode, compute_session, fork, reach
from lockstep.core.environment import capture, core_fingerprint
from lockstep.core.errors import ConfigError, PipelineError
from lockstep.core.fingerprint import fingerprint_json
from lockstep.core.lazy import lazy_module, loaded
from lockstep.core.usercode import code_identity
from lockstep.registry.refs import ModelRef

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core import frames
    from lockstep.core.config import Config
    from lockstep.core.sections import SearchConfig
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.versions import VersionInfo
    from lockstep.store import FeatureInfo, Store
    from lockstep.training import fitting, registration

else:  # the work (scikit-learn, MLflow's model flavour, plots): imported when there is work, not to find none
    frames = lazy_module("lockstep.core.frames")
    fitting = lazy_module("lockstep.training.fitting")
    registration = lazy_module("lockstep.training.registration")

__all__ = ["TrainResult", "train"]

Progress = Callable[[str], None]


@dataclass
class TrainResult:
    """The outcome of :func:`train`.

    Attributes
    ----------
    version : VersionInfo
        The registered version (new, or the one up to date).
    skipped : bool
        True when a finished run had exactly these inputs.
    """

    version: VersionInfo
    skipped: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        info = self.version
        return {
            "run_id": info.run_id,
            "model": info.name,
            "version": info.version,
            "fingerprint": info.fingerprint,
            "aliases": info.aliases,
            "metrics": {k: {"mean": v.get("mean"), "std": v.get("std"), "ci_low": v.get("ci_low"),
                            "ci_high": v.get("ci_high")} for k, v in info.metric_summary("test").items()},
            "valid_metrics": {k: {"mean": v.get("mean"), "std": v.get("std")}
                              for k, v in info.metric_summary("valid").items()},
            "skipped": self.skipped,
            "candidate": info.tags.get("lockstep.candidate"),
            "features_version": _int(info.tags.get("lockstep.features.version")),
            "compute": {k.rsplit(".", 1)[1]: v for k, v in info.tags.items() if k.startswith("lockstep.compute.")},
            "best_params": info.params.get("best_params"),
            "thread_invariant": info.tags.get("lockstep.thread_invariant"),
            **self.details,
        }


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _resolve(config: Config, candidate: str | None) -> tuple[str, SearchConfig | None]:
    train = config.train
    if train is None:
        raise ConfigError(f"{config.config_path}: there is no [train] section",
                          hint="add [train] with model = \"pipeline:model\" (see docs/configuration.md)")
    if candidate is None:
        return train.model, train.search
    if candidate not in train.candidates:
        known = ", ".join(train.candidates) or "none"
        raise ConfigError(f"{config.config_path}: no [train.candidates.{candidate}] (candidates: {known})")
    chosen = train.candidates[candidate]
    return chosen.model, chosen.search


def training_inputs(config: Config, feature: FeatureInfo, model_ref: str, search: SearchConfig | None,
                    candidate: str | None) -> dict[str, Any]:
    """Every input of a training run, fingerprinted; ``inputs`` is the cache key."""
    model_code = code_identity(model_ref, config.project_dir)
    feature_code = (code_identity(config.features.pipeline, config.project_dir)
                    if config.features.pipeline else None)
    files = {**model_code.files, **(feature_code.files if feature_code else {})}
    normalized = config.normalized()
    train = {k: v for k, v in normalized["train"].items() if k not in ("candidates", "model", "search")}
    config_part = {
        "model": model_ref, "search": search.model_dump(mode="json") if search else None, "candidate": candidate,
        "train": train, "metrics": config.metrics, "primary_metric": config.primary_metric,
        "registry": normalized["registry"]["model"] or config.project.name,
        "data": {k: normalized["data"][k] for k in ("id", "target", "task", "schema")},
        "features": {k: v for k, v in normalized["features"].items() if k != "parity_rows"},
        "inputs": config.feature_inputs,
    }
    parts = {
        "features": feature.fingerprint,
        "code": fingerprint_json(files),
        "config": fingerprint_json(config_part),
        "environment": core_fingerprint(),  # read without importing the numerical stack
        "lockstep": __version__,
    }
    return {"files": files, "feature_code": feature_code, "parts": parts, "inputs": fingerprint_json(parts)}


def train(config: Config, store: Store, registry: Registry, *, features_version: int | None = None,
          candidate: str | None = None, force: bool = False, progress: Progress | None = None,
          compute: str | None = None) -> TrainResult:
    """Train, one training at a time per store: a second waits, then finds the first's run up to date.

    See :func:`_train` for the parameters.
    """
    if not store.exists():  # no feature set: the error says so without creating the store
        return _train(config, store, registry, features_version=features_version, candidate=candidate, force=force,
                      progress=progress, compute=compute)
    with store.lock("train", "training"):
        return _train(config, store, registry, features_version=features_version, candidate=candidate, force=force,
                      progress=progress, compute=compute)


def _train(config: Config, store: Store, registry: Registry, *, features_version: int | None = None,
           candidate: str | None = None, force: bool = False, progress: Progress | None = None,
           compute: str | None = None) -> TrainResult:
    """Train, evaluate, track and register a model (or find it up to date).

    Parameters
    ----------
    config : Config
    store : Store
    registry : Registry
    features_version : int, optional
        The feature set version to train on (default: the latest).
    candidate : str, optional
        Train ``[train.candidates.<candidate>]`` instead of ``[train] model``.
    force : bool, default False
        Train even when a finished run had the same inputs.
    progress : callable, optional
    compute : {"local", "dask"}, optional
        Where the search and the fits run (default: ``[compute] backend``).

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError, CodeError, PipelineError, NotFoundError
        Nothing is registered in any of these cases.
    """
    step = progress or (lambda _name: None)
    reach(config.compute, compute)  # a scheduler that does not answer: said now, not after the reading
    model_ref, search = _resolve(config, candidate)
    feature_table = store.features(config.features.name)
    feature = feature_table.info(features_version)

    step("fingerprinting the inputs")
    fingerprints = training_inputs(config, feature, model_ref, search, candidate)
    _check_feature_code(fingerprints["feature_code"], feature)
    if not force:
        hit = registry.find_run(fingerprints["inputs"])
        if hit is not None:
            return TrainResult(version=registry.version(ModelRef(hit["name"], version=hit["version"])), skipped=True)

    with _writer(registry) as writer:
        step("importing the model code")
        factory = fitting.checked_factory(config, model_ref, search, candidate)
        step(f"reading feature set version {feature.version}")
        frame = frames.feature_frame(feature_table.read(feature.version))
        X, y, masks = fitting.split(frame, feature, config.data.task)

        with _session(config, compute, fingerprints["files"]) as session:
            result = fitting.fit_and_evaluate(config, factory, model_ref, search, X, y, masks, step, session)
        recorded = {**fingerprints, "environment": capture()}  # the whole environment, kept with the model
        registered, details = registration.register(config, store, registry, feature, recorded, model_ref,
                                                    candidate, search, frame, masks, result, step, writer)
    return TrainResult(version=registered, skipped=False, details=details)


def _check_feature_code(feature_code: Any, feature: FeatureInfo) -> None:
    """The feature code now (its identity, or None) must be the code that built the feature set ``feature``."""
    if (feature_code.fingerprint if feature_code else None) != (feature.code.get("fingerprint")
                                                                if feature.code.get("ref") else None):
        raise PipelineError(
            f"the feature code changed since feature set version {feature.version} was built",
            hint="run `lockstep features` first, so that the model is trained on features made by the current code")


#: Whether a helper logged a training's run in this process already: the trainings that follow are logged here
#: (MLflow imported once), not by a helper importing it each time (a notebook's loop over candidates).
_helped = False


def _writer(registry: Registry) -> fork.Helper:
    """Who will log the run: a forked helper importing MLflow and its store (a second or more) while the model
    fits here, on the other core; this process itself when it has imported MLflow already (whose connections
    must not be shared with a child), when a helper did it before, or when there is no core to spare. The
    training's own libraries are imported first, for the helper to start with them."""
    global _helped
    if _helped or not registry.forkable():
        return fork.Helper.here()
    loaded(registration)  # pandas, Arrow, scikit-learn and lockstep's evaluation
    helper = fork.helper(registry.warm)
    _helped = helper.forked
    return helper


def _session(config: Config, compute: str | None, files: dict[str, str]) -> AbstractContextManager[Compute]:
    """Where the fits run, with the project's modules for Dask's workers (top-level modules only, for now)."""
    code = ProjectCode.top_level(config.project_dir, files)
    return compute_session(config.compute, compute, threads=config.training.threads, code=code)
