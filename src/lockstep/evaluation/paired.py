"""A paired bootstrap of two models on the same rows: is the challenger worse than the champion?

Both models' outputs on the same test rows are resampled together: each of
``resamples`` bootstrap samples draws ``n`` rows with replacement (seeded,
so the result is the same on every run), and the primary metric of each
model is computed on it. The distribution of the difference (challenger
minus champion, signed so that positive is better) estimates the sampling
noise of the comparison; unlike the seed-to-seed spread of deterministic
models it does not collapse to 0, and it is exactly 0 only when the two
models give the same outputs.

A resample is a vector of counts (how often each row was drawn), and every
metric below is computed as a count-weighted metric, which equals the
metric of the resampled rows. The weighted forms are vectorized over
resamples; :func:`weighted_metric` with all counts 1 equals
:func:`lockstep.evaluation.metrics.compute_metrics`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lockstep.evaluation.metrics import Outputs, higher_is_better, positive_index

__all__ = ["PairedComparison", "paired_bootstrap", "weighted_metric"]

#: Resamples of the promotion rule, and its seed.
RESAMPLES = 1000
SEED = 0
#: Resamples computed at once (bounded memory: a block is ``_BLOCK x rows`` counts).
_BLOCK = 50


@dataclass(frozen=True)
class PairedComparison:
    """The primary metric of two models on the same rows, and the bootstrap of their difference.

    ``difference`` and the interval are signed so that positive means the
    challenger is better.
    """

    metric: str
    rows: int
    challenger: float
    champion: float
    difference: float
    low: float
    high: float
    std: float
    resamples: int

    @property
    def worse(self) -> bool:
        """The challenger is worse beyond the noise: the whole 95% interval of the difference is below 0."""
        return self.high < 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "worse": self.worse}


def _weighted_mean(values: np.ndarray, W: np.ndarray) -> np.ndarray:
    return (W @ values) / W.sum(axis=1)


def _auc(positive: np.ndarray, scores: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC of ``scores`` for the boolean labels ``positive``, one per row of ``W`` (ties count 1/2)."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores, pos = scores[order], positive[order]
    Wo = W[:, order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    negatives = np.add.reduceat(Wo * ~pos, starts, axis=1)
    positives = np.add.reduceat(Wo * pos, starts, axis=1)
    below = np.cumsum(negatives, axis=1) - negatives
    with np.errstate(invalid="ignore", divide="ignore"):
        return (positives * (below + 0.5 * negatives)).sum(axis=1) / (positives.sum(axis=1) * negatives.sum(axis=1))


def _prf(name: str, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        if name == "precision":
            return precision
        if name == "recall":
            return recall
        return np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)


def _weighted_regression(name: str, out: Outputs, W: np.ndarray) -> np.ndarray:
    """A regression metric for each row of count weights ``W``."""
    y, p = np.asarray(out.y_true, dtype=np.float64), np.asarray(out.y_pred, dtype=np.float64)
    error = y - p
    if name == "rmse":
        return np.sqrt(_weighted_mean(error**2, W))
    if name == "mae":
        return _weighted_mean(np.abs(error), W)
    if name == "mape":
        return _weighted_mean(np.abs(error) / np.maximum(np.abs(y), np.finfo(np.float64).eps), W)
    if name == "r2":
        total = W.sum(axis=1)
        mean = (W @ y) / total
        ss_tot = W @ (y**2) - total * mean**2
        return 1.0 - (W @ error**2) / ss_tot
    raise KeyError(name)


def weighted_metric(task: str, name: str, out: Outputs, W: np.ndarray, positive: Any | None = None) -> np.ndarray:
    """Metric ``name`` of ``out`` for each row of count weights ``W`` (shape ``(resamples, rows)``).

    The metrics and their conventions are those of
    :mod:`lockstep.evaluation.metrics` (binary metrics of the positive
    class, macro averages for more classes); a metric that needs
    probabilities is NaN without them.
    """
    W = np.asarray(W, dtype=np.float64)
    if task == "regression":
        return _weighted_regression(name, out, W)
    classes = list(out.classes or [])
    y_true = np.asarray(out.y_true, dtype=object)
    y_pred = np.asarray(out.y_pred, dtype=object)
    binary = len(classes) == 2
    if name == "accuracy":
        return _weighted_mean((y_true == y_pred).astype(np.float64), W)
    truth = np.stack([y_true == c for c in classes])  # (classes, rows)
    predicted = np.stack([y_pred == c for c in classes])
    if name == "balanced_accuracy":
        present = np.asarray(truth.any(axis=1))
        recalls = [(W @ (truth[k] & predicted[k])) / (W @ truth[k]) for k in range(len(classes)) if present[k]]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nanmean(np.stack(recalls), axis=0)
    if name in ("precision", "recall", "f1"):
        if binary:
            k = positive_index(classes, positive)
            return _prf(name, W @ (truth[k] & predicted[k]), W @ (~truth[k] & predicted[k]),
                        W @ (truth[k] & ~predicted[k]))
        values = np.stack([_prf(name, W @ (truth[k] & predicted[k]), W @ (~truth[k] & predicted[k]),
                                W @ (truth[k] & ~predicted[k])) for k in range(len(classes))])
        # macro over the classes that occur in the truth or the predictions of each resample, as scikit-learn
        occurs = np.stack([W @ (truth[k] | predicted[k]) > 0 for k in range(len(classes))])
        return (values * occurs).sum(axis=0) / occurs.sum(axis=0)
    if out.proba is None:
        return np.full(W.shape[0], np.nan)
    proba = np.asarray(out.proba, dtype=np.float64)
    if name == "roc_auc":
        if binary:
            k = positive_index(classes, positive)
            return _auc(truth[k], proba[:, k], W)
        return np.mean(np.stack([_auc(truth[k], proba[:, k], W) for k in range(len(classes))]), axis=0)
    if name == "log_loss":
        eps = np.finfo(proba.dtype).eps
        clipped = np.clip(proba, eps, 1 - eps)
        clipped = clipped / clipped.sum(axis=1, keepdims=True)
        return _weighted_mean(-np.log((clipped * truth.T).sum(axis=1)), W)
    if name == "brier_score":
        if binary:
            k = positive_index(classes, positive)
            return _weighted_mean((proba[:, k] - truth[k]) ** 2, W)
        return _weighted_mean(((proba - truth.T) ** 2).sum(axis=1), W)
    raise KeyError(name)


def paired_bootstrap(task: str, metric: str, challenger: Outputs, champion: Outputs, *, positive: Any | None = None,
                     resamples: int = RESAMPLES, seed: int = SEED) -> PairedComparison:
    """The difference of ``metric`` between two models' outputs on the same rows, with its bootstrap interval.

    Parameters
    ----------
    task : {"classification", "regression"}
    metric : str
    challenger, champion : Outputs
        Both models' outputs on the same rows, in the same order (same ``y_true``).
    positive : optional
        The positive class of a binary classification.
    resamples, seed : int

    Returns
    -------
    PairedComparison
    """
    n = len(challenger.y_true)
    sign = 1.0 if higher_is_better(task, metric) else -1.0
    ones = np.ones((1, n))
    new = float(weighted_metric(task, metric, challenger, ones, positive)[0])
    old = float(weighted_metric(task, metric, champion, ones, positive)[0])
    rng = np.random.default_rng(seed)
    differences = []
    for start in range(0, resamples, _BLOCK):
        size = min(_BLOCK, resamples - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)
        a = weighted_metric(task, metric, challenger, counts, positive)
        b = weighted_metric(task, metric, champion, counts, positive)
        differences.append(sign * (a - b))
    d = np.concatenate(differences)
    d = d[np.isfinite(d)]
    low, high = (float(v) for v in np.quantile(d, [0.025, 0.975])) if d.size else (float("nan"), float("nan"))
    return PairedComparison(metric=metric, rows=n, challenger=new, champion=old, difference=sign * (new - old),
                            low=low, high=high, std=float(d.std(ddof=1)) if d.size > 1 else 0.0,
                            resamples=int(d.size))
