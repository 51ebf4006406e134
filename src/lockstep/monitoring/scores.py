"""The one number per prediction whose drift is monitored."""

from __future__ import annotations

from typing import Any

__all__ = ["scores_of"]


def scores_of(values: Any, probabilities: Any):
    """The positive class's probability (two classes), the top probability (more), or the predicted value.

    Parameters
    ----------
    values : array-like or None
        Predicted values (regression); ignored when ``probabilities`` is given.
    probabilities : 2-D array-like or None
        Class probabilities, one column per class in the model's order.
    """
    import numpy as np

    if probabilities is not None:
        proba = np.asarray(probabilities, dtype=np.float64)
        return proba[:, -1] if proba.shape[1] == 2 else proba.max(axis=1)
    return np.asarray(values, dtype=np.float64)
