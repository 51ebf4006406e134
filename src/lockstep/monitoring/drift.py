"""Drift decisions: each statistic against its threshold, per column, and the report that holds them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lockstep._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.sections import MonitorConfig
    from lockstep.profiles.summary import CategoricalSummary, NumericSummary

__all__ = ["ColumnDrift", "DriftReport", "Statistic", "judge_column"]


@dataclass
class Statistic:
    """One statistic of one column, and whether it says the column drifted."""

    name: str
    value: float
    threshold: float
    drift: bool
    warning: bool = False
    p_value: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"statistic": self.name, "value": _finite(self.value), "threshold": self.threshold,
               "drift": self.drift, "warning": self.warning}
        if self.p_value is not None:
            out["p_value"] = self.p_value
        if self.detail:
            out.update(self.detail)
        return out


def _finite(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


@dataclass
class ColumnDrift:
    """The statistics of one column (a raw input, a feature, or the predicted score)."""

    group: str  # raw, features, prediction
    name: str
    kind: str
    statistics: list[Statistic]
    reference: NumericSummary | CategoricalSummary
    current: NumericSummary | CategoricalSummary

    @property
    def drift(self) -> bool:
        return any(s.drift for s in self.statistics)

    @property
    def warning(self) -> bool:
        return any(s.warning for s in self.statistics)

    def statistic(self, name: str) -> Statistic | None:
        return next((s for s in self.statistics if s.name == name), None)


def judge_column(kind: str, stats: dict[str, dict], cfg: MonitorConfig, present: int,
                 tests: int = 1) -> list[Statistic]:
    """Each statistic against its threshold from ``[monitor]``.

    The statistics of a distribution are judged only on at least
    ``[monitor] min_rows`` present values: on fewer (a mostly missing column)
    PSI and the distances are noise, and are reported without a verdict. The
    missing-rate change is always judged. ``tests`` is the number of columns
    judged together: with ``pvalue_correction = "bonferroni"`` every p-value
    threshold is divided by it, so that the chance of a false alarm in a
    window stays near the threshold however many columns there are.
    """
    scale = tests if cfg.pvalue_correction == "bonferroni" else 1
    ks_level, chi2_level, missing_level = cfg.ks_pvalue / scale, cfg.chi2_pvalue / scale, cfg.missing_pvalue / scale
    # The distances (PSI, Wasserstein, Jensen-Shannon) grow with sampling noise on small windows; they count
    # only when the two-sample test of the same column (KS for numbers, chi-square for categories) finds the
    # distributions different, so that a drift is both large and significant.
    test = stats.get("ks" if kind == "numeric" else "chi2", {})
    significant = test.get("p_value", 1.0) < (ks_level if kind == "numeric" else chi2_level)
    out = []
    for name, raw in stats.items():
        value = float(raw["value"])
        p_value = raw.get("p_value")
        threshold = float(getattr(cfg, name))
        drift = value > threshold
        if name == "ks":
            drift = drift and p_value is not None and p_value < ks_level
        elif name == "chi2":
            drift = drift and p_value is not None and p_value < chi2_level
        elif name == "missing":
            drift = drift and p_value is not None and p_value < missing_level
        elif name in ("psi", "wasserstein", "jensen_shannon"):
            drift = drift and significant
        elif name == "unseen" and p_value is not None:  # an inexact reference: the excess must be significant
            drift = drift and p_value < chi2_level
        detail = {k: v for k, v in raw.items() if k not in ("value", "p_value")}
        if name != "missing" and present < cfg.min_rows:
            drift = False
            detail["too_few_values"] = present
        warning = name == "psi" and not drift and value > cfg.psi_warning and present >= cfg.min_rows
        out.append(Statistic(name, value, threshold, bool(drift), warning, p_value, detail))
    order = ("psi", "ks", "wasserstein", "chi2", "jensen_shannon", "unseen", "missing")
    return sorted(out, key=lambda s: order.index(s.name) if s.name in order else len(order))


@dataclass
class DriftReport:
    """The outcome of ``lockstep monitor``."""

    model: str
    version: int
    fingerprint: str
    window: str
    rows: int
    invalid: int
    columns: list[ColumnDrift]
    thresholds: dict[str, Any]
    time: str
    seconds: float = 0.0
    min_rows: int = 100
    quality: dict[str, Any] | None = None
    compute: dict[str, str] = field(default_factory=dict)  # where the window was summarized: backend, workers
    actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def data_drift(self) -> bool:
        return any(c.drift for c in self.columns)

    @property
    def degraded(self) -> bool:
        return bool(self.quality and self.quality.get("degraded"))

    @property
    def drift(self) -> bool:
        return self.data_drift or self.degraded

    @property
    def small(self) -> bool:
        return self.rows < self.min_rows

    def drifted(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.drift]

    def to_dict(self) -> dict[str, Any]:
        features = []
        for column in self.columns:
            for stat in column.statistics:
                features.append({"name": column.name, "group": column.group, "kind": column.kind,
                                 **stat.to_dict()})
        return {
            "drift": self.drift, "data_drift": self.data_drift, "degraded": self.degraded,
            "rows": self.rows, "invalid": self.invalid, "small_window": self.small,
            "model": self.model, "version": self.version, "fingerprint": self.fingerprint,
            "window": self.window, "time": self.time, "seconds": round(self.seconds, 3), "compute": self.compute,
            "drifted": [{"name": c.name, "group": c.group} for c in self.drifted()],
            "features": features, "quality": self.quality, "actions": self.actions,
            "thresholds": self.thresholds, "lockstep_version": __version__,
        }
