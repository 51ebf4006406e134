"""The one number per prediction whose drift is monitored."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

__all__ = ["scores_of"]


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
        position = {json.dumps(_plain(c)): float(i) for i, c in enumerate(classes)}
        return np.asarray([position.get(json.dumps(_plain(v)), np.nan) for v in values], dtype=np.float64)
    return np.asarray(values, dtype=np.float64)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
