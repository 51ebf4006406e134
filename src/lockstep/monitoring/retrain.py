"""The retraining loop: on drift or degradation, rebuild from the current source and let the gates decide.

Ingest the configured source (a new snapshot only if it changed), compute
the features, train (a new challenger only if the inputs changed), and
promote the challenger only if the promotion gates pass. Each step is
cached as usual, and each step and decision is returned as an action for
the report, the monitoring log and the MLflow run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.monitoring.drift import DriftReport
    from lockstep.project import Project

__all__ = ["retrain_loop"]


def _action(step: str, decision: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"step": step, "decision": decision, "detail": detail, **extra}


def retrain_loop(project: Project, report: DriftReport) -> list[dict[str, Any]]:
    """Retrain and gate a challenger if ``report`` found drift or degradation; the steps taken."""
    if not report.drift:
        return [_action("decide", "keep", "no drift and no degradation: nothing to retrain")]
    reasons = [f"{c.group} {c.name}" for c in report.drifted()]
    why = (f"drift in {len(reasons)} column(s): {', '.join(reasons[:8])}" if reasons else "")
    if report.degraded:
        why = (why + "; " if why else "") + (report.quality or {}).get("summary", "live quality degraded")
    actions = [_action("decide", "retrain", why)]

    ingested = project.ingest()
    snap = ingested.snapshot
    actions.append(_action("ingest", "new snapshot" if ingested.changed else "unchanged",
                           f"raw snapshot {snap.version}: {snap.rows:,} rows" if ingested.changed else
                           f"the source is unchanged: raw snapshot {snap.version}", version=snap.version))
    features = project.build_features()
    actions.append(_action("features", "up to date" if features.skipped else "computed",
                           f"feature set version {features.info.version}", version=features.info.version))
    trained = project.train()
    info = trained.version
    if trained.skipped:
        actions.append(_action("train", "up to date", f"version {info.version} was trained on exactly these "
                               "inputs: there is no new data to learn from (add recent labelled rows to the "
                               "source)", version=info.version))
        if info.version == report.version or "champion" in info.aliases:
            actions.append(_action("promote", "keep", f"version {report.version} stays the champion"))
            return actions
    else:
        stat = info.metric_summary("test").get(project.config.primary_metric, {})
        actions.append(_action("train", "registered", f"challenger version {info.version}: test "
                               f"{project.config.primary_metric} {stat.get('mean', float('nan')):.4g}",
                               version=info.version))
    promotion = project.promote(f"{info.name}/{info.version}")
    failures = "; ".join(f"{r.rule}: {r.detail}" for r in promotion.report.failures())
    if promotion.promoted:
        actions.append(_action("promote", "promoted", f"version {info.version} is the champion (was "
                               f"{promotion.previous.version if promotion.previous else 'none'})",
                               version=info.version, gates=promotion.report.to_dict()))
    else:
        actions.append(_action("promote", "refused", f"version {info.version} stays a challenger: {failures}",
                               version=info.version, gates=promotion.report.to_dict()))
    return actions
