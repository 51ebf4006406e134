"""The workflows that chain the pipelines: ``lockstep run``, and the retraining loop of ``lockstep monitor``.

``lockstep run``: the whole system in one command, each step skipped when its inputs are unchanged.

The steps, in order: ingest the raw source, compute the feature set, train
the model (and, with ``candidates``, every ``[train.candidates]`` entry),
promote each trained version through the gates, then verify the champion
(rebuild it and compare bit for bit) and compare its prediction paths
(parity). Ingest, features and training skip themselves when their input
fingerprints are unchanged; promotion when the version already is the
champion; verification and parity when they already passed for the same
model, code, environment and lockstep version.

The retraining loop (:func:`retrain_loop`), on drift or degradation: ingest
the configured source (a new snapshot only if it changed), compute the
features, train (a new challenger only if the inputs changed), and promote
the challenger only if the promotion gates pass. Each step is cached as
usual, and each step and decision is returned as an action for the report,
the monitoring log and the MLflow run.

Both call the steps through :class:`Steps`, which
:class:`lockstep.project.Project` satisfies, so that they sit below it and
never import it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from lockstep.core.config import Config
from lockstep.core.errors import ConfigError, NotFoundError
from lockstep.core.usercode import defines, load_object
from lockstep.registry.refs import ModelRef
from lockstep.registry.signing import private_key
from lockstep.reproducibility.keys import parity_key, verification_key
from lockstep.reproducibility.lineage import load_lineage

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.data.ingest import IngestResult
    from lockstep.evaluation.promotion import PromotionResult
    from lockstep.features.build import FeatureResult
    from lockstep.monitoring.drift import DriftReport
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.versions import VersionInfo
    from lockstep.reproducibility.parity import ParityReport
    from lockstep.reproducibility.verify import VerifyReport
    from lockstep.training.train import TrainResult

__all__ = ["RunReport", "RunStep", "Steps", "check_code_references", "retrain_loop", "run_system"]


class Steps(Protocol):
    """What the workflows call: the pipeline steps of a project, with their defaults.

    :class:`lockstep.project.Project` satisfies it; the workflows sit below
    it and never import it.
    """

    @property
    def config(self) -> Config: ...

    @property
    def registry(self) -> Registry: ...

    def ingest(self) -> IngestResult: ...

    def build_features(self, *, compute: str | None = None) -> FeatureResult: ...

    def train(self, *, candidate: str | None = None, compute: str | None = None) -> TrainResult: ...

    def promote(self, ref: str | None = None) -> PromotionResult: ...

    def verify(self, ref: str | None = None, *, recorded_code: bool = False) -> VerifyReport: ...

    def parity(self, ref: str | None = None) -> ParityReport: ...


#: Called with (step name, "start" | "done", the step when done).
Progress = Callable[[str, str, "RunStep | None"], None]


@dataclass
class RunStep:
    """One step of a run."""

    name: str
    status: str  # done, skipped, refused, failed
    detail: str
    version: int | None = None
    fingerprint: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail, "version": self.version,
                "fingerprint": self.fingerprint, "seconds": round(self.seconds, 3)}


@dataclass
class RunReport:
    """The outcome of :func:`run_system`."""

    steps: list[RunStep] = field(default_factory=list)
    champion: dict[str, Any] | None = None
    reproduced: bool | None = None
    identical: bool | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.reproduced is not False and self.identical is not False

    def to_dict(self) -> dict:
        return {"ok": self.ok, "reproduced": self.reproduced, "identical": self.identical,
                "champion": self.champion, "steps": [s.to_dict() for s in self.steps],
                "seconds": round(self.seconds, 3)}


def _timed(report: RunReport, progress: Progress, name: str, func: Callable[[], RunStep]) -> RunStep:
    progress(name, "start", None)
    started = time.perf_counter()
    step = func()
    step.seconds = time.perf_counter() - started
    report.steps.append(step)
    progress(name, "done", step)
    return step


def check_code_references(config: Any, candidates: bool) -> None:
    """Before anything runs: a [train] section, and every ``module:callable`` the run will call is there.

    A reference that the module's source visibly defines (:func:`~lockstep.core.usercode.defines`) is taken
    as it is, and imported by the first step that calls it: a run whose steps are all up to date imports
    none of the project's code (nor scikit-learn with it). Any other reference is imported now, so that a
    misspelled or missing one fails, with the likeliest name, before anything is ingested.

    Raises
    ------
    ConfigError, CodeError
        Naming the key and, for a misspelled callable, the likeliest one.
    """
    if config.train is None:
        raise ConfigError(f"{config.config_path}: there is no [train] section, so `lockstep run` has no model to "
                          "train", hint="add [train] with model = \"pipeline:model\" (see docs/configuration.md)")
    refs = [config.features.pipeline, config.train.model]
    if candidates:
        refs += [c.model for c in config.train.candidates.values()]
    for ref in refs:
        if ref and not defines(ref, config.project_dir):
            load_object(ref, config.project_dir)
    if config.public_key is not None:  # models are signed: the private key must be there before training
        private_key(config.public_key)


def run_system(work: Steps, *, candidates: bool = False, verify: bool = True, parity: bool = True,
               force_checks: bool = False, progress: Progress | None = None, compute: str | None = None) -> RunReport:
    """Run ingest, features, train, promote, verify and parity for a project.

    Parameters
    ----------
    work : Steps
    candidates : bool, default False
        Train and promote every ``[train.candidates]`` entry after the default model.
    verify, parity : bool, default True
        Verify the champion, and compare its prediction paths.
    force_checks : bool, default False
        Verify and compare even when they passed before for the same inputs.
    progress : callable, optional
    compute : {"local", "dask"}, optional
        Where the feature pipeline and training run (default: ``[compute] backend``).

    Returns
    -------
    RunReport
        Errors in a step (bad data, a failing pipeline) are raised as they
        are by the step's own command.
    """
    check_code_references(work.config, candidates)
    report = RunReport()
    notify = progress or (lambda _name, _phase, _step: None)
    started = time.perf_counter()
    _timed(report, notify, "ingest", partial(_ingest_step, work))
    _timed(report, notify, "features", partial(_features_step, work, compute))
    config = work.config
    names: list[str | None] = [None] + (sorted(config.train.candidates) if candidates and config.train else [])
    for candidate in names:
        trained: list[VersionInfo] = []
        _timed(report, notify, f"train {candidate}" if candidate else "train",
               partial(_train_step, work, candidate, trained, compute))
        name = "promote" if candidate is None else f"promote {candidate}"
        _timed(report, notify, name, partial(_promote_step, work, name, trained[0]))
    champion = _champion(work)
    if champion is None:
        report.steps.append(RunStep("verify", "skipped", "no champion: no version passed the gates"))
    else:
        stat = champion.metric_summary("test").get(config.primary_metric, {})
        report.champion = {"name": champion.name, "version": champion.version, "fingerprint": champion.fingerprint,
                           "metric": config.primary_metric, "mean": stat.get("mean"), "std": stat.get("std")}
        if verify:
            _timed(report, notify, "verify", partial(_verify_step, work, champion, force_checks, report))
        if parity:
            _timed(report, notify, "parity", partial(_parity_step, work, champion, force_checks, report))
    report.seconds = time.perf_counter() - started
    return report


def _ingest_step(work: Steps) -> RunStep:
    result = work.ingest()
    snap = result.snapshot
    detail = (f"{snap.rows:,} rows" + (f", {result.quarantined:,} quarantined" if result.quarantined else "")
              if result.changed else "the source is unchanged")
    return RunStep("ingest", "done" if result.changed else "skipped", detail, snap.version, snap.fingerprint)


def _features_step(work: Steps, compute: str | None = None) -> RunStep:
    result = work.build_features(compute=compute)
    info = result.info
    detail = ("up to date" if result.skipped else
              f"{info.rows:,} rows x {len(info.columns)} features, stateless check on "
              f"{info.parity.get('rows_checked', 0)} rows")
    return RunStep("features", "skipped" if result.skipped else "done", detail, info.version, info.fingerprint)


def _train_step(work: Steps, candidate: str | None, out: list[VersionInfo], compute: str | None = None) -> RunStep:
    """Train (or find up to date) the default model or a candidate; its version is appended to ``out``."""
    result = work.train(candidate=candidate, compute=compute)
    info = result.version
    out.append(info)
    primary = work.config.primary_metric
    stat = info.metric_summary("test").get(primary, {})
    detail = (f"test {primary} {stat.get('mean', float('nan')):.4g} ± {stat.get('std', float('nan')):.2g}"
              + (" (up to date)" if result.skipped else ""))
    return RunStep(f"train {candidate}" if candidate else "train", "skipped" if result.skipped else "done", detail,
                   info.version, info.fingerprint)


def _promote_step(work: Steps, name: str, version: VersionInfo) -> RunStep:
    result = work.promote(f"{version.name}/{version.version}")
    if result.was_champion and result.promoted:
        return RunStep(name, "skipped", f"version {version.version} already is the champion",
                       version.version, version.fingerprint)
    if result.promoted:
        previous = f" (was version {result.previous.version})" if result.previous else ""
        return RunStep(name, "done", f"version {version.version} is the champion{previous}",
                       version.version, version.fingerprint)
    failures = "; ".join(f"{r.rule}: {r.detail}" for r in result.report.failures())
    return RunStep(name, "refused", f"version {version.version} stays a challenger: {failures}",
                   version.version, version.fingerprint)


def _champion(work: Steps) -> VersionInfo | None:
    try:
        return work.registry.version(ModelRef(work.config.model_name, alias="champion"))
    except NotFoundError:
        return None


def _verify_step(work: Steps, champion: VersionInfo, force: bool, report: RunReport) -> RunStep:
    """Verify the champion against the code it was trained with (stored with it), unless it passed before.

    When the project's code has moved on since, that is reported, not taken for a failure to reproduce.
    """
    registry = work.registry
    lineage = load_lineage(registry, champion, work.config.project_dir)
    options = {"recorded_code": True, "full": False, "threads": lineage.threads, "strict_env": False}
    key = verification_key(work.config, lineage, options, registry.model_file_digest(champion))
    previous = registry.check_result(champion, "verify", key)
    if not force and previous and previous.get("reproduced") and previous.get("key") == key:
        report.reproduced = True
        return RunStep("verify", "skipped", f"reproduced before ({previous.get('time')}) with the same "
                       "code and environment", champion.version, champion.fingerprint)
    result = work.verify(f"{champion.name}/{champion.version}", recorded_code=True)
    report.reproduced = result.reproduced
    changes = result.stage("code").data.get("changes") or []
    moved = (f"; the project's code changed since it was trained ({'; '.join(changes)[:300]}): train to "
             "make a version of the current code") if changes else ""
    if result.reproduced:
        return RunStep("verify", "done", "reproduced bit for bit with the code it was trained with: data, "
                       "features, model, test predictions" + moved, champion.version, champion.fingerprint)
    failed = ", ".join(s.name for s in result.stages if s.status == "FAIL")
    return RunStep("verify", "failed", f"not reproduced at {failed}: {result.cause}", champion.version,
                   champion.fingerprint)


def _parity_step(work: Steps, champion: VersionInfo, force: bool, report: RunReport) -> RunStep:
    """Compare the champion's prediction paths, unless they were identical before for the same inputs."""
    key = parity_key(champion, None, True, True)
    previous = work.registry.check_result(champion, "parity", key)
    if not force and previous and previous.get("identical") and previous.get("key") == key:
        report.identical = True
        return RunStep("parity", "skipped", f"identical before ({previous.get('time')})", champion.version,
                       champion.fingerprint)
    result = work.parity(f"{champion.name}/{champion.version}")
    report.identical = result.identical
    ran = [p for p in result.paths if p.status != "SKIPPED"]
    if result.identical:
        worst = max((p.max_abs_diff for p in ran), default=0.0)
        return RunStep("parity", "done", f"{len(ran) - 1} paths agree with the in-process path on "
                       f"{result.rows:,} test rows (largest difference {worst:.3g})", champion.version,
                       champion.fingerprint)
    failed = ", ".join(p.name for p in result.paths if p.status == "FAIL")
    return RunStep("parity", "failed", f"paths differ: {failed}", champion.version, champion.fingerprint)


def _action(step: str, decision: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"step": step, "decision": decision, "detail": detail, **extra}


def retrain_loop(work: Steps, report: DriftReport) -> list[dict[str, Any]]:
    """Retrain and gate a challenger if ``report`` found drift or degradation; the steps taken."""
    if not report.drift:
        return [_action("decide", "keep", "no drift and no degradation: nothing to retrain")]
    reasons = [f"{c.group} {c.name}" for c in report.drifted()]
    why = (f"drift in {len(reasons)} column(s): {', '.join(reasons[:8])}" if reasons else "")
    if report.degraded:
        why = (why + "; " if why else "") + (report.quality or {}).get("summary", "live quality degraded")
    actions = [_action("decide", "retrain", why)]

    ingested = work.ingest()
    snap = ingested.snapshot
    actions.append(_action("ingest", "new snapshot" if ingested.changed else "unchanged",
                           f"raw snapshot {snap.version}: {snap.rows:,} rows" if ingested.changed else
                           f"the source is unchanged: raw snapshot {snap.version}", version=snap.version))
    features = work.build_features()
    actions.append(_action("features", "up to date" if features.skipped else "computed",
                           f"feature set version {features.info.version}", version=features.info.version))
    trained = work.train()
    info = trained.version
    if trained.skipped:
        actions.append(_action("train", "up to date", f"version {info.version} was trained on exactly these "
                               "inputs: there is no new data to learn from (add recent labelled rows to the "
                               "source)", version=info.version))
        if info.version == report.version or "champion" in info.aliases:
            actions.append(_action("promote", "keep", f"version {report.version} stays the champion"))
            return actions
    else:
        stat = info.metric_summary("test").get(work.config.primary_metric, {})
        actions.append(_action("train", "registered", f"challenger version {info.version}: test "
                               f"{work.config.primary_metric} {stat.get('mean', float('nan')):.4g}",
                               version=info.version))
    promotion = work.promote(f"{info.name}/{info.version}")
    failures = "; ".join(f"{r.rule}: {r.detail}" for r in promotion.report.failures())
    if promotion.promoted:
        actions.append(_action("promote", "promoted", f"version {info.version} is the champion (was "
                               f"{promotion.previous.version if promotion.previous else 'none'})",
                               version=info.version, gates=promotion.report.to_dict()))
    else:
        actions.append(_action("promote", "refused", f"version {info.version} stays a challenger: {failures}",
                               version=info.version, gates=promotion.report.to_dict()))
    return actions
