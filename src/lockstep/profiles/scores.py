"""The one number per prediction whose drift is monitored, computed here for every path.

Training (the reference profile), the service (live drift), ``lockstep
monitor`` on a file and on the audit log all take their scores from this
module, so that the reference and the window are the same quantity.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from lockstep.core.prediction import model_outputs
from lockstep.core.values import plain

__all__ = ["answer_scores", "model_scores", "scores_of"]


def scores_of(values: Any, probabilities: Any, classes: list | None = None):
    """The positive class's probability (two classes), the top probability (more), or the predicted value.

    A classifier without probabilities is monitored by its predicted class, as the class's position in
    ``classes``.

    Parameters
    ----------
    values : array-like or None
        Predicted values (regression) or labels; ignored when ``probabilities`` is given.
    probabilities : 2-D array-like or None
        Class probabilities, one column per class in the model's order.
    classes : list, optional
        The model's classes: ``values`` are labels to be turned into their positions.

    Examples
    --------
    >>> scores_of(None, [[0.25, 0.75]]).tolist()
    [0.75]
    >>> scores_of(["no", "yes", "no"], None, ["no", "yes"]).tolist()
    [0.0, 1.0, 0.0]
    """
    if probabilities is not None:
        proba = np.asarray(probabilities, dtype=np.float64)
        return proba[:, -1] if proba.shape[1] == 2 else proba.max(axis=1)
    if classes is not None:
        position = {json.dumps(plain(c)): float(i) for i, c in enumerate(classes)}
        return np.asarray([position.get(json.dumps(plain(v)), np.nan) for v in values], dtype=np.float64)
    return np.asarray(values, dtype=np.float64)


def model_scores(model: Any, X: Any, task: str, classes: list | None) -> np.ndarray:
    """The scores of a fitted model on the DataFrame ``X``, its outputs asked for as on every path."""
    labels, proba = model_outputs(model, X, task)
    return scores_of(labels, proba, classes if task == "classification" else None)


def answer_scores(predictions: list | None, probabilities: list[dict] | None, schema: Any) -> np.ndarray:
    """The scores of a service answer, as the service sends it and the audit log keeps it.

    Parameters
    ----------
    predictions : list
        The predicted labels or values.
    probabilities : list of dict or None
        One mapping per record from each class (as text) to its probability.
    schema : ModelSchema
        The model's task and classes.
    """
    if probabilities and schema.classes:
        names = [str(c) for c in schema.classes]
        return scores_of(None, np.array([[p[c] for c in names] for p in probabilities], dtype=np.float64))
    return scores_of(predictions, None, schema.classes if schema.task == "classification" else None)
