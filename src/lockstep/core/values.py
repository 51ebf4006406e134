"""Values as plain Python, for JSON and for messages: one conversion, used everywhere."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["plain"]


def plain(value: Any, *, nan_as_none: bool = True, fallback: Callable[[Any], Any] | None = None) -> Any:
    """``value`` as plain Python: NumPy scalars as Python scalars, dates and times as ISO 8601 text, lists,
    tuples and mappings element by element.

    Parameters
    ----------
    value : object
    nan_as_none : bool, default True
        A float NaN becomes ``None`` (JSON has no NaN).
    fallback : callable, optional
        Applied to any other object (for example ``repr``); by default it is returned as it is.

    Examples
    --------
    >>> import numpy as np, datetime
    >>> plain([np.int64(3), float("nan"), datetime.date(2024, 5, 1), {"a": np.float64(0.5)}])
    [3, None, '2024-05-01', {'a': 0.5}]
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "item") and not hasattr(value, "__len__"):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float):
        return None if nan_as_none and math.isnan(value) else value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(v, nan_as_none=nan_as_none, fallback=fallback) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v, nan_as_none=nan_as_none, fallback=fallback) for k, v in value.items()}
    if fallback is not None and not isinstance(value, bool | int | str | bytes):
        return fallback(value)
    return value
