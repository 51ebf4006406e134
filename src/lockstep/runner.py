"""``lockstep run``: the whole system in one command, each step skipped when its inputs are unchanged.

The steps, in order: ingest the raw source, compute the feature set, train
the model (and, with ``candidates``, every ``[train.candidates]`` entry),
promote each trained version through the gates, then verify the champion
(rebuild it and compare bit for bit) and compare its prediction paths
(parity). Ingest, features and training skip themselves when their input
fingerprints are unchanged; promotion when the version already is the
champion; verification and parity when they already passed for the same
model, code, environment and lockstep version.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.project import Project

__all__ = ["RunReport", "RunStep", "run_system"]

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
    """Before anything runs: a [train] section, and every ``module:callable`` the run will call imports.

    Raises
    ------
    ConfigError, CodeError
        Naming the key and, for a misspelled callable, the likeliest one.
    """
    from lockstep.errors import ConfigError
    from lockstep.registry.signing import private_key
    from lockstep.usercode import load_object

    if config.train is None:
        raise ConfigError(f"{config.config_path}: there is no [train] section, so `lockstep run` has no model to "
                          "train", hint="add [train] with model = \"pipeline:model\" (see docs/configuration.md)")
    refs = [config.features.pipeline, config.train.model]
    if candidates:
        refs += [c.model for c in config.train.candidates.values()]
    for ref in refs:
        if ref:
            load_object(ref, config.project_dir)
    if config.public_key is not None:  # models are signed: the private key must be there before training
        private_key(config.public_key)


def run_system(project: Project, *, candidates: bool = False, verify: bool = True, parity: bool = True,
               force_checks: bool = False, progress: Progress | None = None) -> RunReport:
    """Run ingest, features, train, promote, verify and parity for a project.

    Parameters
    ----------
    project : Project
    candidates : bool, default False
        Train and promote every ``[train.candidates]`` entry after the default model.
    verify, parity : bool, default True
        Verify the champion, and compare its prediction paths.
    force_checks : bool, default False
        Verify and compare even when they passed before for the same inputs.
    progress : callable, optional

    Returns
    -------
    RunReport
        Errors in a step (bad data, a failing pipeline) are raised as they
        are by the step's own command.
    """
    from lockstep.errors import NotFoundError
    from lockstep.registry.refs import ModelRef
    from lockstep.reproducibility.lineage import load_lineage
    from lockstep.reproducibility.parity import parity_key
    from lockstep.reproducibility.verify import verification_key

    check_code_references(project.config, candidates)
    report = RunReport()
    notify = progress or (lambda _name, _phase, _step: None)
    started = time.perf_counter()

    def ingest() -> RunStep:
        result = project.ingest()
        snap = result.snapshot
        detail = (f"{snap.rows:,} rows" + (f", {result.quarantined:,} quarantined" if result.quarantined else "")
                  if result.changed else "the source is unchanged")
        return RunStep("ingest", "done" if result.changed else "skipped", detail, snap.version, snap.fingerprint)

    def features() -> RunStep:
        result = project.build_features()
        info = result.info
        detail = ("up to date" if result.skipped else
                  f"{info.rows:,} rows x {len(info.columns)} features, stateless check on "
                  f"{info.parity.get('rows_checked', 0)} rows")
        return RunStep("features", "skipped" if result.skipped else "done", detail, info.version, info.fingerprint)

    _timed(report, notify, "ingest", ingest)
    _timed(report, notify, "features", features)

    config = project.config
    names: list[str | None] = [None] + (sorted(config.train.candidates) if candidates and config.train else [])
    primary = config.primary_metric
    for candidate in names:
        label = f"train {candidate}" if candidate else "train"
        holder: dict[str, Any] = {}

        def train(candidate: str | None = candidate, label: str = label, holder: dict = holder) -> RunStep:
            result = project.train(candidate=candidate)
            info = result.version
            holder["version"] = info
            stat = info.metric_summary("test").get(primary, {})
            detail = (f"test {primary} {stat.get('mean', float('nan')):.4g} ± {stat.get('std', float('nan')):.2g}"
                      + (" (up to date)" if result.skipped else ""))
            return RunStep(label, "skipped" if result.skipped else "done", detail, info.version, info.fingerprint)

        _timed(report, notify, label, train)
        version = holder["version"]

        name = "promote" if candidate is None else f"promote {candidate}"

        def promote(version: Any = version, name: str = name) -> RunStep:
            result = project.promote(f"{version.name}/{version.version}")
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

        _timed(report, notify, name, promote)

    registry = project.registry
    try:
        champion = registry.version(ModelRef(config.model_name, alias="champion"))
    except NotFoundError:
        champion = None
    if champion is None:
        report.steps.append(RunStep("verify", "skipped", "no champion: no version passed the gates"))
        report.seconds = time.perf_counter() - started
        return report
    stat = champion.metric_summary("test").get(primary, {})
    report.champion = {"name": champion.name, "version": champion.version, "fingerprint": champion.fingerprint,
                       "metric": primary, "mean": stat.get("mean"), "std": stat.get("std")}
    ref = f"{champion.name}/{champion.version}"

    if verify:
        def run_verify() -> RunStep:
            # The champion is verified against the code it was trained with (stored with it); when the
            # project's code has moved on since, that is reported, not taken for a failure to reproduce.
            lineage = load_lineage(registry, champion, project.path)
            options = {"recorded_code": True, "full": False, "threads": lineage.threads, "strict_env": False}
            previous = registry.check_result(champion, "verify")
            if (not force_checks and previous and previous.get("reproduced")
                    and previous.get("key") == verification_key(project.config, lineage, options,
                                                                registry.model_file_digest(champion))):
                report.reproduced = True
                return RunStep("verify", "skipped", f"reproduced before ({previous.get('time')}) with the same "
                               "code and environment", champion.version, champion.fingerprint)
            result = project.verify(ref, recorded_code=True)
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

        _timed(report, notify, "verify", run_verify)

    if parity:
        def run_parity() -> RunStep:
            previous = registry.check_result(champion, "parity")
            if (not force_checks and previous and previous.get("identical")
                    and previous.get("key") == parity_key(champion, None, True, True)):
                report.identical = True
                return RunStep("parity", "skipped", f"identical before ({previous.get('time')})", champion.version,
                               champion.fingerprint)
            result = project.parity(ref)
            report.identical = result.identical
            ran = [p for p in result.paths if p.status != "SKIPPED"]
            if result.identical:
                worst = max((p.max_abs_diff for p in ran), default=0.0)
                return RunStep("parity", "done", f"{len(ran) - 1} paths agree with the in-process path on "
                               f"{result.rows:,} test rows (largest difference {worst:.3g})", champion.version,
                               champion.fingerprint)
            failed = ", ".join(p.name for p in result.paths if p.status == "FAIL")
            return RunStep("parity", "failed", f"paths differ: {failed}", champion.version, champion.fingerprint)

        _timed(report, notify, "parity", run_parity)
    report.seconds = time.perf_counter() - started
    return report
