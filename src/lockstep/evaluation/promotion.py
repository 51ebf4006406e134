"""``lockstep promote``: move the ``champion`` alias to a version, only if the gates pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lockstep.core.errors import LockstepError, NotFoundError
from lockstep.core.lazy import lazy_module
from lockstep.core.sections import task_metrics
from lockstep.evaluation.gates import check_gates
from lockstep.registry.refs import ModelRef as Ref

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pyarrow as pa

    from lockstep.core import prediction
    from lockstep.core.config import Config
    from lockstep.evaluation import metrics
    from lockstep.evaluation import paired as bootstrap
    from lockstep.evaluation.gates import GateReport
    from lockstep.evaluation.paired import PairedComparison
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.refs import ModelRef
    from lockstep.registry.versions import VersionInfo
    from lockstep.store import Store
else:  # the paired comparison's machinery: a promotion that finds the version already champion needs none of it
    np = lazy_module("numpy")
    pa = lazy_module("pyarrow")
    prediction = lazy_module("lockstep.core.prediction")
    metrics = lazy_module("lockstep.evaluation.metrics")
    bootstrap = lazy_module("lockstep.evaluation.paired")

__all__ = ["PromotionResult", "paired_on_test_rows", "promote"]


@dataclass
class PromotionResult:
    """What :func:`promote` decided."""

    version: VersionInfo
    previous: VersionInfo | None
    report: GateReport
    promoted: bool

    @property
    def was_champion(self) -> bool:
        return self.previous is not None and self.previous.version == self.version.version

    def to_dict(self) -> dict:
        return {
            "model": self.version.name,
            "version": self.version.version,
            "promoted": self.promoted,
            "already_champion": self.was_champion,
            "previous_champion": self.previous.version if self.previous else None,
            "gates": self.report.to_dict(),
        }


#: At most this many test rows go into the paired bootstrap (a seeded sample of them beyond it).
PAIRED_ROWS = 20_000


def paired_on_test_rows(config: Config, store: Store, registry: Registry, challenger: VersionInfo,
                        champion: VersionInfo) -> tuple[PairedComparison | None, str | None]:
    """Both versions' outputs on the challenger's test rows, compared by a paired bootstrap of the primary metric.

    Returns the comparison, or None and the reason it could not be made (the
    champion cannot read the challenger's rows, for example after a schema
    change).
    """
    task = config.data.task
    try:
        name = challenger.tags["lockstep.features.name"]
        table = store.features(name)
        feature = table.info(int(challenger.tags["lockstep.features.version"]))
        labels = table.read(feature.version, columns=["split", feature.label_column])
        test = np.flatnonzero(np.asarray(labels.column("split").to_pylist(), dtype=object) == "test")
        if len(test) > PAIRED_ROWS:
            test = np.sort(np.random.default_rng(0).choice(test, PAIRED_ROWS, replace=False))
        if not len(test):
            return None, "the challenger has no test rows"
        rows = pa.array(test, pa.int64())
        raw = store.snapshots.read(feature.raw_version).take(rows)
        y_true = np.asarray(labels.column(feature.label_column).take(rows).to_pylist(),
                            dtype=object if task == "classification" else np.float64)
        outputs = []
        for info in (challenger, champion):
            loaded = registry.load(Ref(info.name, version=info.version))
            predicted, proba = prediction.model_outputs(loaded.model, loaded.schema.frame(raw), task)
            classes = list(loaded.model.classes_) if task == "classification" else None
            outputs.append(metrics.Outputs(y_true=y_true, y_pred=predicted, proba=proba, classes=classes))
    except (LockstepError, KeyError, ValueError, TypeError) as exc:
        message = exc.message if isinstance(exc, LockstepError) else f"{type(exc).__name__}: {exc}"
        return None, f"the champion could not predict the challenger's test rows ({message})"
    if task == "classification" and outputs[0].classes != outputs[1].classes:
        return None, f"the two versions have different classes ({outputs[1].classes} and {outputs[0].classes})"
    comparison = bootstrap.paired_bootstrap(task, config.primary_metric, outputs[0], outputs[1],
                                            positive=config.train.positive_class if config.train else None)
    return comparison, None


def promote(config: Config, store: Store, registry: Registry, ref: ModelRef) -> PromotionResult:
    """Check the gates for ``ref`` against the current champion; move ``champion`` to it if they pass.

    One promotion at a time per store: the champion compared with is the one replaced.
    """
    if not store.exists():
        return _promote(config, store, registry, ref)
    with store.lock("promote", "promotion"):
        return _promote(config, store, registry, ref)


def _promote(config: Config, store: Store, registry: Registry, ref: ModelRef) -> PromotionResult:
    version = registry.version(ref)
    try:
        champion = registry.version(Ref(version.name, alias="champion"))
    except NotFoundError:
        champion = None
    same_model = champion is not None and bool(champion.fingerprint) and champion.fingerprint == version.fingerprint
    paired = problem = None
    if (champion is not None and config.registry.improvement == "bootstrap" and not same_model
            and champion.version != version.version):
        paired, problem = paired_on_test_rows(config, store, registry, version, champion)
    report = check_gates(
        version.metric_summary("test"), dict(config.registry.gates), primary=config.primary_metric,
        higher_is_better=task_metrics(config.data.task)[config.primary_metric],
        improvement=config.registry.improvement,
        champion=champion.metric_summary("test") if champion else None,
        candidate_name=f"{version.name}/{version.version}",
        champion_name=f"{champion.name}/{champion.version}" if champion else None,
        same_model=same_model, paired=paired, paired_problem=problem,
    )
    already = champion is not None and champion.version == version.version
    promoted = report.passed and not already
    if promoted:
        registry.set_alias(version.name, "champion", version.version)
        version = registry.version(Ref(version.name, version=version.version))
    # An existing champion is never demoted here, but its result is the gates' verdict.
    return PromotionResult(version=version, previous=champion, report=report, promoted=report.passed)
