"""Plots of a model's predictions, as matplotlib figures (the registry saves them as PNG).

Classification: confusion matrix, ROC curve, precision-recall curve,
calibration (reliability) curve. Regression: residuals against predictions,
predicted against actual. Figures are drawn with the non-interactive Agg
backend and closed by the caller after saving.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay, confusion_matrix

from lockstep.core.errors import shown
from lockstep.core.lazy import lazy_module
from lockstep.evaluation.metrics import positive_index

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure as mpl_figure
    from matplotlib.figure import Figure

    from lockstep.evaluation.metrics import Outputs

else:  # matplotlib, imported by the first plot drawn
    mpl_figure = lazy_module("matplotlib.figure")

__all__ = ["classification_figures", "confusion_table", "regression_figures"]


def _figure(title: str) -> tuple[Figure, Any]:
    fig = mpl_figure.Figure(figsize=(5.5, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    return fig, ax


def confusion_table(out: Outputs):
    """The confusion matrix as a DataFrame: rows are true classes, columns predicted ones."""
    classes = list(out.classes or [])
    matrix = confusion_matrix(out.y_true, out.y_pred, labels=classes)
    return pd.DataFrame(matrix, index=[f"true {c}" for c in classes],
                        columns=[f"predicted {c}" for c in classes]).reset_index(names="")


def classification_figures(out: Outputs, positive: Any, split: str) -> dict[str, Figure]:
    """Confusion matrix, ROC, precision-recall and calibration figures."""
    figures: dict[str, Figure] = {}
    fig, ax = _figure(f"Confusion matrix ({split})")
    ConfusionMatrixDisplay.from_predictions(out.y_true, out.y_pred, labels=out.classes, ax=ax, colorbar=False)
    figures["confusion_matrix"] = fig
    if out.proba is None:
        return figures
    classes = list(out.classes or [])
    pos = positive_index(classes, positive) if len(classes) == 2 else len(classes) - 1
    truth = np.asarray(out.y_true) == classes[pos]
    score = out.proba[:, pos]
    fig, ax = _figure(f"ROC curve ({split}), positive class {shown(classes[pos])}")
    RocCurveDisplay.from_predictions(truth, score, ax=ax, plot_chance_level=True)
    figures["roc_curve"] = fig
    fig, ax = _figure(f"Precision-recall ({split}), positive class {shown(classes[pos])}")
    PrecisionRecallDisplay.from_predictions(truth, score, ax=ax)
    figures["precision_recall"] = fig
    fig, ax = _figure(f"Calibration ({split})")
    observed, predicted = calibration_curve(truth, score, n_bins=10, strategy="quantile")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", label="model")
    ax.set_xlabel(f"mean predicted probability of {shown(classes[pos])}")
    ax.set_ylabel("observed frequency")
    ax.legend(loc="upper left")
    figures["calibration"] = fig
    return figures


def regression_figures(out: Outputs, split: str) -> dict[str, Figure]:
    """Residuals against predictions, and predicted against actual values."""
    y, p = np.asarray(out.y_true, dtype=float), np.asarray(out.y_pred, dtype=float)
    figures: dict[str, Figure] = {}
    fig, ax = _figure(f"Residuals ({split})")
    ax.scatter(p, y - p, s=6, alpha=0.5)
    ax.axhline(0, color="grey", linestyle="--")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual - predicted")
    figures["residuals"] = fig
    fig, ax = _figure(f"Predicted vs actual ({split})")
    ax.scatter(y, p, s=6, alpha=0.5)
    low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    figures["predicted_vs_actual"] = fig
    return figures
