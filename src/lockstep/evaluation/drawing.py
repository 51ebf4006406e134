"""The plots of a model's test split drawn from their data, with NumPy and matplotlib alone.

:func:`lockstep.evaluation.plots.plot_data` computes what each plot shows
(curves, counts, points) with scikit-learn; :func:`draw` turns it into PNG
images. The split lets a helper process draw them (:mod:`lockstep.evaluation.render`)
without importing scikit-learn, pandas or lockstep's configuration: NumPy and
matplotlib are all it needs. Figures use the non-interactive Agg backend.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from lockstep.core.lazy import lazy_module

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure as mpl_figure
else:  # matplotlib, imported by the first plot drawn
    mpl_figure = lazy_module("matplotlib.figure")

__all__ = ["draw"]


def draw(data: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    """``{"plots/NAME.png": PNG bytes}`` for each plot of ``data`` (``{NAME: {"kind": ..., "title": ..., ...}}``)."""
    images = {}
    for name, spec in data.items():
        figure = mpl_figure.Figure(figsize=(5.5, 4.5), dpi=100, layout="constrained")
        ax = figure.add_subplot()
        ax.set_title(spec["title"])
        _DRAW[spec["kind"]](ax, spec)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        figure.clear()
        images[f"plots/{name}.png"] = buffer.getvalue()
    return images


def _confusion(ax: Any, spec: dict[str, Any]) -> None:
    matrix = np.asarray(spec["matrix"])
    labels = [str(c) for c in spec["labels"]]
    image = ax.imshow(matrix, interpolation="nearest", cmap="viridis")
    threshold = (matrix.max() + matrix.min()) / 2.0 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        color = image.cmap(1.0) if count < threshold else image.cmap(0.0)
        ax.text(j, i, f"{count:d}", ha="center", va="center", color=color)
    ax.set(xticks=np.arange(len(labels)), yticks=np.arange(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="Predicted label", ylabel="True label")
    ax.set_ylim(len(labels) - 0.5, -0.5)


def _roc(ax: Any, spec: dict[str, Any]) -> None:
    ax.plot(spec["fpr"], spec["tpr"], label=f"AUC = {spec['auc']:0.2f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="k", label="Chance level (AUC = 0.5)")
    _unit_axes(ax, "False Positive Rate", "True Positive Rate", spec["positive"])
    ax.legend(loc="lower right")


def _precision_recall(ax: Any, spec: dict[str, Any]) -> None:
    ax.plot(spec["recall"], spec["precision"], drawstyle="steps-post", label=f"AP = {spec['ap']:0.2f}")
    _unit_axes(ax, "Recall", "Precision", spec["positive"])
    ax.legend(loc="lower left")


def _unit_axes(ax: Any, x: str, y: str, positive: str) -> None:
    ax.set(xlabel=f"{x} (Positive label: {positive})", ylabel=f"{y} (Positive label: {positive})",
           xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal")
    ax.spines[["right", "top"]].set_visible(False)


def _calibration(ax: Any, spec: dict[str, Any]) -> None:
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(spec["predicted"], spec["observed"], marker="o", label="model")
    ax.set_xlabel(f"mean predicted probability of {spec['positive']}")
    ax.set_ylabel("observed frequency")
    ax.legend(loc="upper left")


def _residuals(ax: Any, spec: dict[str, Any]) -> None:
    y, p = np.asarray(spec["actual"], dtype=float), np.asarray(spec["predicted"], dtype=float)
    ax.scatter(p, y - p, s=6, alpha=0.5)
    ax.axhline(0, color="grey", linestyle="--")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual - predicted")


def _predicted_vs_actual(ax: Any, spec: dict[str, Any]) -> None:
    y, p = np.asarray(spec["actual"], dtype=float), np.asarray(spec["predicted"], dtype=float)
    ax.scatter(y, p, s=6, alpha=0.5)
    if y.size:
        low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
        ax.plot([low, high], [low, high], color="grey", linestyle="--")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")


_DRAW: dict[str, Callable[[Any, dict[str, Any]], None]] = {
    "confusion": _confusion, "roc": _roc, "precision_recall": _precision_recall, "calibration": _calibration,
    "residuals": _residuals, "predicted_vs_actual": _predicted_vs_actual,
}
