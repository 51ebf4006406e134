"""Drift statistics between a reference summary and a window's, computed from the binned counts alone.

Numbers
    ``psi``: population stability index on the reference's ten fixed bins
    (its deciles, snapped to its grid); ``ks``: the two-sample
    Kolmogorov-Smirnov statistic, the largest distance between the two
    cumulative distributions at the grid's edges, with its p-value
    (``scipy.stats.kstwo`` with the effective sample size, as ``ks_2samp``
    computes it asymptotically); ``wasserstein``: the area between the two
    cumulative distributions (on the grid, plus the exact tails beyond it),
    divided by the reference's standard deviation.
Categories
    ``psi`` on the reference's categories plus one bin for all others;
    ``chi2``: the chi-square test of the 2 x k contingency table
    (``scipy.stats.chi2_contingency``), as Cramér's V with its p-value;
    ``jensen_shannon``: the Jensen-Shannon distance (base 2, between 0 and 1);
    ``unseen``: the share of the window's values that the reference never had; when the reference
    kept only its most frequent categories, the excess of the window's share outside them over the
    reference's own share, with a one-sided binomial p-value.
Both
    ``missing``: the change of the missing rate, in absolute terms, with the
    p-value of an exact binomial test of the window's missing count under
    the reference's rate.

Empty bins are smoothed with a share of 1e-4 in the PSI (Evidently's
convention), so a category that vanishes or appears has a finite, large PSI.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.profiles.summary import CategoricalSummary, NumericSummary

__all__ = ["categorical_stats", "numeric_stats", "psi", "psi_bins"]

EPSILON = 1e-4
PSI_BINS = 10


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """The population stability index of two count vectors over the same bins."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.sum() == 0 or cur.sum() == 0:
        return math.nan
    p = np.maximum(ref / ref.sum(), EPSILON)
    q = np.maximum(cur / cur.sum(), EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def psi_bins(reference: NumericSummary) -> list[int]:
    """Cut points, in grid positions, of the reference's ten (or fewer) equal-frequency bins.

    Positions index :meth:`NumericSummary.distribution` (below, the grid's
    bins, above): a PSI bin holds the positions from one cut to the next.
    """
    dist = reference.distribution()
    total = dist.sum()
    if total == 0:
        return [0, dist.size]
    cum = np.cumsum(dist)
    cuts = {0, dist.size}
    for k in range(1, PSI_BINS):
        cut = int(np.searchsorted(cum, k * total / PSI_BINS, side="left")) + 1
        if 0 < cut < dist.size:
            cuts.add(cut)
    return sorted(cuts)


def _grouped(dist: np.ndarray, cuts: list[int]) -> np.ndarray:
    return np.add.reduceat(dist, cuts[:-1]) if len(cuts) > 1 else np.asarray([dist.sum()])


def numeric_stats(reference: NumericSummary, current: NumericSummary) -> dict[str, dict]:
    """PSI, KS, normalized Wasserstein and the missing-rate change of a numeric window."""
    ref_dist, cur_dist = reference.distribution(), current.distribution()
    n, m = int(ref_dist.sum()), int(cur_dist.sum())
    out: dict[str, dict] = {"missing": _missing_change(reference, current)}
    if n == 0 or m == 0:
        return out
    cuts = psi_bins(reference)
    out["psi"] = {"value": psi(_grouped(ref_dist, cuts), _grouped(cur_dist, cuts)), "bins": len(cuts) - 1}

    ref_cdf, cur_cdf = np.cumsum(ref_dist) / n, np.cumsum(cur_dist) / m
    diff = np.abs(ref_cdf - cur_cdf)
    d = float(diff.max())
    en = n * m / (n + m)
    p_value = float(stats.kstwo.sf(d, max(int(round(en)), 1))) if d > 0 else 1.0
    out["ks"] = {"value": d, "p_value": p_value}

    # The area between the CDFs: on the grid (trapezoids between its edges), and beyond it exactly:
    # the integral of F below `low` is E[(low - X)+], and of 1 - F above `high` is E[(X - high)+].
    inner = diff[:-1]  # the CDF differences at the grid's edges: after `below`, after each bin
    width = (reference.high - reference.low) / reference.bins if reference.bins else 0.0
    area = float(np.sum((inner[:-1] + inner[1:]) / 2) * width) if inner.size > 1 else 0.0
    area += abs(reference.below_sum / n - current.below_sum / m)
    area += abs(reference.above_sum / n - current.above_sum / m)
    scale = reference.std() or 0.0
    out["wasserstein"] = {"value": area / scale if scale > 0 else (0.0 if area == 0 else math.inf),
                          "distance": area}
    return out


def _missing_change(reference, current) -> dict:
    """The absolute change of the missing rate, with the p-value of the window's missing count under the
    reference's rate (an exact binomial test)."""
    ref_rate = reference.missing / reference.rows if reference.rows else 0.0
    cur_rate = current.missing / current.rows if current.rows else 0.0
    p_value = float(stats.binomtest(current.missing, current.rows, ref_rate).pvalue) if current.rows else 1.0
    return {"value": abs(cur_rate - ref_rate), "p_value": p_value, "reference_rate": ref_rate,
            "window_rate": cur_rate}


def categorical_stats(reference: CategoricalSummary, current: CategoricalSummary) -> dict[str, dict]:
    """PSI, chi-square (Cramér's V), Jensen-Shannon distance, unseen share and missing-rate change."""
    out: dict[str, dict] = {"missing": _missing_change(reference, current)}
    known = reference.known
    ref_counts = np.array([reference.counts.get(c, 0) for c in known] + [reference.other], dtype=np.float64)
    seen = set(known)
    unseen = {c: v for c, v in current.counts.items() if c not in seen}
    cur_other = current.other + sum(unseen.values())
    cur_counts = np.array([current.counts.get(c, 0) for c in known] + [cur_other], dtype=np.float64)
    n, m = ref_counts.sum(), cur_counts.sum()
    if n == 0 or m == 0:
        return out
    out["psi"] = {"value": psi(ref_counts, cur_counts), "bins": len(known) + 1}
    keep = (ref_counts + cur_counts) > 0
    table = np.vstack([ref_counts[keep], cur_counts[keep]])
    if table.shape[1] > 1:
        chi2, p_value, _, _ = stats.chi2_contingency(table, correction=False)
        out["chi2"] = {"value": float(math.sqrt(chi2 / table.sum())), "p_value": float(p_value),
                       "chi2_statistic": float(chi2)}
    else:
        out["chi2"] = {"value": 0.0, "p_value": 1.0, "chi2_statistic": 0.0}
    out["jensen_shannon"] = {"value": float(jensenshannon(ref_counts / n, cur_counts / m, base=2))}
    top_unseen = sorted(unseen.items(), key=lambda kv: -kv[1])[:10]
    outside = sum(unseen.values()) + current.other
    categories = [c for c, _ in top_unseen]
    if reference.other == 0:  # the reference knows every category it had: outside means never seen
        out["unseen"] = {"value": float(outside / m), "categories": categories, "exact": True}
    else:
        # The reference kept its most frequent categories and counted the rest as "others": a window value
        # outside the kept ones may well have been seen. What counts is a larger share outside than the
        # reference's own, beyond sampling noise (an exact one-sided binomial test).
        reference_share = float(reference.other / n)
        p_value = float(stats.binomtest(int(outside), int(m), reference_share, alternative="greater").pvalue)
        out["unseen"] = {"value": max(0.0, float(outside / m) - reference_share), "p_value": p_value,
                         "reference_share": reference_share, "categories": categories, "exact": False}
    return out
