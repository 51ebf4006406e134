"""``lockstep promote``: move the ``champion`` alias to a version, only if the gates pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.config import Config
    from lockstep.evaluation.gates import GateReport
    from lockstep.registry.mlflow_registry import Registry, VersionInfo
    from lockstep.registry.refs import ModelRef

__all__ = ["PromotionResult", "promote"]


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


def promote(config: Config, registry: Registry, ref: ModelRef) -> PromotionResult:
    """Check the gates for ``ref`` against the current champion; move ``champion`` to it if they pass."""
    from lockstep.config import task_metrics
    from lockstep.errors import NotFoundError
    from lockstep.evaluation.gates import check_gates
    from lockstep.registry.refs import ModelRef as Ref

    version = registry.version(ref)
    try:
        champion = registry.version(Ref(version.name, alias="champion"))
    except NotFoundError:
        champion = None
    report = check_gates(
        version.metric_summary("test"), dict(config.registry.gates), primary=config.primary_metric,
        higher_is_better=task_metrics(config.data.task)[config.primary_metric],
        improvement=config.registry.improvement,
        champion=champion.metric_summary("test") if champion else None,
        candidate_name=f"{version.name}/{version.version}",
        champion_name=f"{champion.name}/{champion.version}" if champion else None,
        same_model=champion is not None and bool(champion.fingerprint) and champion.fingerprint == version.fingerprint,
    )
    already = champion is not None and champion.version == version.version
    promoted = report.passed and not already
    if promoted:
        registry.set_alias(version.name, "champion", version.version)
        version = registry.version(Ref(version.name, version=version.version))
    # An existing champion is never demoted here, but its result is the gates' verdict.
    return PromotionResult(version=version, previous=champion, report=report, promoted=report.passed)
