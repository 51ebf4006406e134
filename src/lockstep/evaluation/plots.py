"""What a model's plots show, computed from its outputs: the data that :mod:`lockstep.evaluation.drawing` draws.

Classification: confusion matrix, ROC curve, precision-recall curve,
calibration (reliability) curve. Regression: residuals against predictions,
predicted against actual. The curves and counts come from scikit-learn's
metrics; drawing them needs only matplotlib, so that a helper process can
(:mod:`lockstep.evaluation.render`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_curve, roc_auc_score, roc_curve

from lockstep.core.errors import shown
from lockstep.evaluation.metrics import positive_index

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.evaluation.metrics import Outputs

__all__ = ["confusion_table", "plot_data"]


def confusion_table(plot: dict[str, Any]):
    """The confusion matrix of a ``plot_data`` entry as a DataFrame: rows are true classes, columns predicted ones."""
    classes, matrix = plot["labels"], plot["matrix"]
    return pd.DataFrame(matrix, index=[f"true {c}" for c in classes],
                        columns=[f"predicted {c}" for c in classes]).reset_index(names="")


def plot_data(out: Outputs, positive: Any, task: str, split: str = "test") -> dict[str, dict[str, Any]]:
    """What each plot of ``out`` shows, as plain data: ``{NAME: {"kind": ..., "title": ..., ...}}``.

    Parameters
    ----------
    out : Outputs
    positive : object
        The positive class of a binary classifier (``[train] positive_class``); for more classes the last.
    task : {"classification", "regression"}
    split : str, default "test"
        Named in the titles.
    """
    if task != "classification":
        actual, predicted = np.asarray(out.y_true, dtype=float), np.asarray(out.y_pred, dtype=float)
        return {"residuals": {"kind": "residuals", "title": f"Residuals ({split})", "actual": actual,
                              "predicted": predicted},
                "predicted_vs_actual": {"kind": "predicted_vs_actual", "title": f"Predicted vs actual ({split})",
                                        "actual": actual, "predicted": predicted}}
    classes = list(out.classes or [])
    data: dict[str, dict[str, Any]] = {"confusion_matrix": {
        "kind": "confusion", "title": f"Confusion matrix ({split})", "labels": classes,
        "matrix": confusion_matrix(out.y_true, out.y_pred, labels=classes)}}
    if out.proba is None:
        return data
    pos = positive_index(classes, positive) if len(classes) == 2 else len(classes) - 1
    truth = np.asarray(out.y_true) == classes[pos]
    score = out.proba[:, pos]
    label = shown(classes[pos])
    fpr, tpr, _ = roc_curve(truth, score)
    precision, recall, _ = precision_recall_curve(truth, score)
    observed, predicted = calibration_curve(truth, score, n_bins=10, strategy="quantile")
    data["roc_curve"] = {"kind": "roc", "title": f"ROC curve ({split}), positive class {label}", "fpr": fpr,
                         "tpr": tpr, "auc": float(roc_auc_score(truth, score)), "positive": label}
    data["precision_recall"] = {"kind": "precision_recall", "positive": label,
                                "title": f"Precision-recall ({split}), positive class {label}",
                                "precision": precision, "recall": recall,
                                "ap": float(average_precision_score(truth, score))}
    data["calibration"] = {"kind": "calibration", "title": f"Calibration ({split})", "observed": observed,
                           "predicted": predicted, "positive": label}
    return data

