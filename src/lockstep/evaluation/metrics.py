"""Metrics, all from :mod:`sklearn.metrics`, and their spread across seeds.

Classification: accuracy, balanced accuracy, precision, recall, F1, ROC AUC,
log loss, Brier score. For two classes, precision, recall and F1 are those
of the positive class (the second class in sorted order unless ``[train]
positive_class`` says otherwise) and ROC AUC, log loss and the Brier score
use its probability. For more classes, precision, recall and F1 are
macro-averaged, ROC AUC is one-vs-rest macro and the Brier score is the
multiclass one.

Regression: RMSE, MAE, R², MAPE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lockstep.core.errors import shown
from lockstep.core.lazy import lazy_module
from lockstep.core.prediction import serial_prediction
from lockstep.core.sections import task_metrics

if TYPE_CHECKING:
    from scipy import stats
    from sklearn import metrics as m
else:  # the gates read recorded metrics: deciding that a champion stays one computes none
    stats = lazy_module("scipy.stats")
    m = lazy_module("sklearn.metrics")

__all__ = ["Outputs", "compute_metrics", "higher_is_better", "make_scorer", "summarize_seeds"]


@dataclass
class Outputs:
    """What a model said about some rows.

    Attributes
    ----------
    y_true : ndarray
    y_pred : ndarray
        Predicted labels (classification) or values (regression).
    proba : ndarray or None
        Class probabilities, columns in the order of ``classes``.
    classes : list or None
    """

    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None = None
    classes: list | None = None


def higher_is_better(task: str, name: str) -> bool:
    return task_metrics(task)[name]


def positive_index(classes: list, positive: Any | None) -> int:
    """The column of the positive class among ``classes`` (binary classification)."""
    if positive is None:
        return len(classes) - 1
    for i, c in enumerate(classes):
        if c == positive or str(c) == str(positive):
            return i
    raise ValueError(f"positive_class {shown(positive)} is not one of the classes "
                     f"{', '.join(shown(c) for c in classes)}")


def _metric(task: str, name: str, out: Outputs, positive: Any | None) -> float:
    if task == "regression":
        y, p = np.asarray(out.y_true, dtype=float), np.asarray(out.y_pred, dtype=float)
        return float({
            "rmse": lambda: m.root_mean_squared_error(y, p),
            "mae": lambda: m.mean_absolute_error(y, p),
            "r2": lambda: m.r2_score(y, p),
            "mape": lambda: m.mean_absolute_percentage_error(y, p),
        }[name]())
    classes = list(out.classes or [])
    binary = len(classes) == 2
    pos = positive_index(classes, positive) if binary else -1
    labels = dict(pos_label=classes[pos], average="binary") if binary else dict(average="macro")
    if name == "accuracy":
        return float(m.accuracy_score(out.y_true, out.y_pred))
    if name == "balanced_accuracy":
        return float(m.balanced_accuracy_score(out.y_true, out.y_pred))
    if name in ("precision", "recall", "f1"):
        fn = {"precision": m.precision_score, "recall": m.recall_score, "f1": m.f1_score}[name]
        return float(fn(out.y_true, out.y_pred, zero_division=0, **labels))
    if out.proba is None:
        return math.nan
    if name == "roc_auc":
        if binary:
            return float(m.roc_auc_score(np.asarray(out.y_true) == classes[pos], out.proba[:, pos]))
        return float(m.roc_auc_score(out.y_true, out.proba, multi_class="ovr", average="macro", labels=classes))
    if name == "log_loss":
        return float(m.log_loss(out.y_true, out.proba, labels=classes))
    if name == "brier_score":
        if binary:
            return float(m.brier_score_loss(np.asarray(out.y_true) == classes[pos], out.proba[:, pos]))
        return float(m.brier_score_loss(out.y_true, out.proba, labels=classes))
    raise KeyError(name)


def compute_metrics(task: str, names: list[str], out: Outputs, positive: Any | None = None) -> dict[str, float]:
    """Each named metric on ``out``."""
    return {name: _metric(task, name, out, positive) for name in names}


def summarize_seeds(per_seed: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Mean, standard deviation (ddof=1) and a 95% Student-t interval of each metric across seeds.

    With one seed the standard deviation is 0 and the interval is the value itself.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in per_seed[0]:
        values = np.asarray([s[name] for s in per_seed], dtype=float)
        n = values.size
        if np.isnan(values).any():  # not defined for this model (a probability metric without probabilities)
            out[name] = {"mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                         "values": [float(v) for v in values], "seeds": n}
            continue
        mean = float(values.mean())
        # identical values have no spread (np.std would give a rounding residue such as 1e-16)
        std = float(values.std(ddof=1)) if n > 1 and not np.all(values == values[0]) else 0.0
        half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 and std > 0 else 0.0
        out[name] = {"mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half,
                     "values": [float(v) for v in values], "seeds": n}
    return out


def make_scorer(task: str, name: str, positive: Any | None = None):
    """A scikit-learn scorer computing metric ``name`` the way :func:`compute_metrics` does."""
    sign = 1.0 if higher_is_better(task, name) else -1.0
    needs_proba = name in ("roc_auc", "log_loss", "brier_score")

    def scorer(estimator, X, y) -> float:
        classes = list(getattr(estimator, "classes_", [])) or None
        with serial_prediction():  # the bits of every prediction path (see lockstep.core.prediction)
            proba = estimator.predict_proba(X) if needs_proba else None
            pred = estimator.predict(X) if proba is None else (
                np.asarray(classes, dtype=object)[proba.argmax(axis=1)] if classes else None)
        return sign * _metric(task, name, Outputs(np.asarray(y), np.asarray(pred), proba, classes), positive)

    return scorer
