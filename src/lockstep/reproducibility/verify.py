"""``lockstep verify``: rebuild a registered model from its lineage and compare, stage by stage.

1. **data**: the raw snapshot still exists (time travel) and its rows still
   have the recorded fingerprint;
2. **environment**: the current environment against the recorded one, each
   difference with a severity (:mod:`lockstep.reproducibility.envdiff`);
3. **code**: the project's code against the recorded file fingerprints,
   naming the changed functions; with ``recorded_code`` the rebuild uses the
   copy of the code stored with the model instead;
4. **features**: recomputed from the snapshot with the recorded
   configuration: the feature table's fingerprint;
5. **model**: refitted with the recorded configuration, best parameters and
   primary seed (the search is repeated only with ``full``): the
   fingerprint of the whole registered pipeline;
6. **predictions**: the rebuilt model's outputs on the test split, bit for
   bit against those stored at training.

A stage that cannot run (its input is missing) is SKIPPED with the reason.
Environment differences that can change numbers make the environment stage
WARN, not FAIL, unless ``strict_env``: what decides is whether the rebuild
gives the same bits. When a stage fails the report names the likeliest
cause: data, code, environment, the thread count, or nondeterminism.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockstep._version import __version__
from lockstep.compute import Compute, ProjectCode, compute_session, reach
from lockstep.registry.refs import ModelRef
from lockstep.reproducibility.keys import verification_key
from lockstep.reproducibility.lineage import load_lineage
from lockstep.reproducibility.stages import (
    Stage,
    Timer,
    artifact_check,
    code_stage,
    data_stage,
    environment_stage,
    features_stage,
    model_stage,
    predictions_stage,
    with_artifact,
)

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.reproducibility.envdiff import EnvDifference
    from lockstep.reproducibility.lineage import Lineage
    from lockstep.store import Store

__all__ = ["STAGES", "VerifyReport", "verify"]

STAGES = ("data", "environment", "code", "features", "model", "predictions")
Progress = Callable[[str], None]


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`."""

    model: str
    version: int
    fingerprint: str
    stages: list[Stage]
    cause: str | None
    options: dict[str, Any]
    environment: list[EnvDifference]
    seconds: float
    key: str
    time: str

    @property
    def reproduced(self) -> bool:
        return all(s.status != "FAIL" for s in self.stages)

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def to_dict(self) -> dict:
        return {
            "model": self.model, "version": self.version, "fingerprint": self.fingerprint,
            "reproduced": self.reproduced, "cause": self.cause,
            "stages": [s.to_dict() for s in self.stages],
            "environment": [d.to_dict() for d in self.environment],
            "options": self.options, "seconds": round(self.seconds, 3), "key": self.key, "time": self.time,
            "lockstep_version": __version__,
        }

    def summary(self) -> dict:
        """What is kept on the model version's tag."""
        return {"reproduced": self.reproduced, "cause": self.cause, "time": self.time, "key": self.key,
                "options": self.options, "stages": {s.name: s.status for s in self.stages},
                "seconds": round(self.seconds, 3), "lockstep_version": __version__}


def _cause(stages: dict[str, Stage], diffs: list[EnvDifference], threads: int, lineage: Lineage) -> str | None:
    failed = [s for s in STAGES if stages[s].status == "FAIL"]
    if not failed:
        return None
    if "data" in failed:
        return "data: the raw snapshot the model was trained on is gone or was modified"
    artifact = stages["model"].data.get("artifact") or {}
    if artifact and not artifact.get("ok"):
        return ("artifact: " + artifact["detail"] + " (the store was modified; restore the model's files or "
                "retrain it)")
    if "code" in failed:
        changes = stages["code"].data.get("changes") or []
        return "code: " + ("; ".join(changes) if changes else stages["code"].detail)
    if failed == ["environment"]:  # only with strict_env
        return "environment: " + stages["environment"].detail
    first = next(s for s in ("features", "model", "predictions") if s in failed)
    if threads != lineage.threads and first in ("model", "predictions"):
        return (f"thread count: the model was trained with {lineage.threads} thread(s) and refitted with {threads}; "
                "this estimator's result depends on the number of threads (see docs/training.md)")
    if first == "model" and stages["model"].data.get("estimator_identical"):
        return ("feature step: the fitted estimator is identical but the fitted feature pipeline differs (the "
                "columns it was fitted on, their order or its parameters)")
    high = [d.describe() for d in diffs if d.severity == "high"]
    if high:
        return "environment: " + "; ".join(high[:5])
    where = "feature pipeline" if first == "features" else "model pipeline"
    return (f"nondeterminism: with the same data, code, configuration, seed and environment the {first} differ; "
            f"something in the {where} is random without a seed (for example np.random.default_rng() or "
            "random.random() without a seed) or depends on time or on the order of a set")


def verify(config: Config, store: Store, registry: Registry, ref: ModelRef, *, recorded_code: bool = False,
           full: bool = False, threads: int | None = None, strict_env: bool = False,
           progress: Progress | None = None, record: bool = True, compute: str | None = None) -> VerifyReport:
    """Rebuild a registered version from its lineage and compare every stage.

    Parameters
    ----------
    config : Config
        The project's current configuration (its folder holds the current code).
    store : Store
    registry : Registry
    ref : ModelRef
    recorded_code : bool, default False
        Rebuild with the copy of the code stored with the model.
    full : bool, default False
        Repeat the hyperparameter search too.
    threads : int, optional
        Refit with this many BLAS/OpenMP threads instead of the recorded number.
    strict_env : bool, default False
        Fail the environment stage on differences that can change numbers.
    progress : callable, optional
    record : bool, default True
        Keep the report with the model version in the registry.
    compute : {"local", "dask"}, optional
        Where the repeated search of ``full`` runs (default: ``[compute] backend``); a model trained on either
        is verified on either. Recorded in the report's options, never part of its key.

    Returns
    -------
    VerifyReport
    """
    step = progress or (lambda _name: None)
    reach(config.compute, compute)
    started = Timer()
    info = registry.version(ref)
    lineage = load_lineage(registry, info, config.project_dir)
    used_threads = threads if threads is not None else lineage.threads
    with compute_session(config.compute, compute if full else "local", threads=used_threads,
                         code=ProjectCode.top_level(config.project_dir, lineage.code_files)) as session:
        stages, diffs = _stages(config, store, registry, lineage, recorded_code=recorded_code, threads=used_threads,
                                full=full, strict_env=strict_env, step=step, compute=session)
    options: dict[str, Any] = {"recorded_code": recorded_code, "full": full, "threads": used_threads,
                               "strict_env": strict_env}
    key = verification_key(config, lineage, options, registry.model_file_digest(info))
    options["compute"] = session.record()
    report = VerifyReport(
        model=info.name, version=info.version, fingerprint=info.fingerprint,
        stages=[stages[name] for name in STAGES], cause=_cause(stages, diffs, used_threads, lineage),
        options=options, environment=diffs, seconds=started(), key=key,
        time=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if record:
        registry.record_check(info, "verify", report.to_dict(), report.summary())
    return report


def _stages(config: Config, store: Store, registry: Registry, lineage: Lineage, *, recorded_code: bool,
            threads: int, full: bool, strict_env: bool, step: Progress,
            compute: Compute) -> tuple[dict[str, Stage], list[Any]]:
    """Every stage of a verification, in order, and the environment's differences."""
    stages: dict[str, Stage] = {}
    step("checking the raw snapshot")
    stages["data"], raw, snapshot = data_stage(store, lineage)
    step("comparing the environment")
    stages["environment"], diffs = environment_stage(lineage, strict_env)
    step("comparing the code")
    stages["code"], code_root = code_stage(config, lineage, recorded_code)
    # with --recorded-code, the rebuild imports the stored modules from their checked bytes, and nothing else
    imports = lineage.code.importable() if recorded_code and code_root is not None else contextlib.nullcontext()
    with imports:
        stages, _built, result = _rebuild(store, lineage, raw, snapshot, code_root, recorded_code, threads, full,
                                          stages, step, compute)
    step("checking the registered model file")
    stages["model"] = with_artifact(stages["model"], *artifact_check(registry, lineage))
    if result is None:
        stages["predictions"] = Stage("predictions", "SKIPPED", "no rebuilt model")
    else:
        step("comparing the test predictions")
        stages["predictions"] = predictions_stage(registry, lineage, result)
    return stages, diffs


def _rebuild(store: Store, lineage: Lineage, raw, snapshot, code_root: Path | None, recorded_code: bool,
             threads: int, full: bool, stages: dict[str, Stage], step: Progress, compute: Compute):
    """The features and model stages: the stages, the rebuilt features and the rebuilt model's outputs."""
    built = result = None
    if raw is None:
        stages["features"] = Stage("features", "SKIPPED", "no raw snapshot to rebuild from")
    elif code_root is None:
        stages["features"] = Stage("features", "SKIPPED", "the feature code cannot be imported"
                                   + ("" if recorded_code else "; --recorded-code uses the code stored with the "
                                      "model"))
    else:
        step("recomputing the features")
        stages["features"], built = features_stage(store, lineage, raw, snapshot, code_root)
    if built is None or code_root is None:
        stages["model"] = Stage("model", "SKIPPED", "no features to fit on")
    else:
        stages["model"], result = model_stage(lineage, built, code_root, threads, full, step, compute)
    return stages, built, result
