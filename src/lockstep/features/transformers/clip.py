"""Clipping numbers to fixed bounds (stateless)."""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd

from lockstep.features.transformers._base import LockstepTransformer, as_list

__all__ = ["Clip"]


class Clip(LockstepTransformer):
    """Clip numeric columns to fixed bounds.

    Stateless: the bounds are parameters, never learned from the data (a
    bound learned from the data, such as a percentile, belongs in the model
    pipeline). Clipped columns become float64; missing values stay missing.

    Parameters
    ----------
    lower, upper : float or dict, optional
        One bound for every selected column, or a dict of column to bound.
    columns : list of str, optional
        The columns to clip; every numeric column when ``None`` (or, when a
        bound is a dict, its keys).

    Attributes
    ----------
    columns_ : list of str

    Examples
    --------
    >>> import pandas as pd
    >>> from lockstep.features.transformers import Clip
    >>> Clip(upper={"area": 4000}).fit_transform(pd.DataFrame({"area": [1200, 5642]}))
         area
    0  1200.0
    1  4000.0
    """

    _parameter_constraints = {"lower": [Real, dict, None], "upper": [Real, dict, None],
                              "columns": [list, tuple, str, None]}
    _accepts_text = False

    def __init__(self, lower=None, upper=None, columns=None):
        self.lower = lower
        self.upper = upper
        self.columns = columns

    def _fit(self, frame: pd.DataFrame) -> None:
        columns = as_list(self.columns)
        if columns is None:
            keys = [k for b in (self.lower, self.upper) if isinstance(b, dict) for k in b]
            columns = list(dict.fromkeys(keys)) or None
        self.columns_ = self._resolve(frame, columns, kind="numeric")
        for name in self.columns_:
            lo, hi = self._bound(self.lower, name), self._bound(self.upper, name)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"Clip: lower bound {lo} is above upper bound {hi} for column {name!r}")

    @staticmethod
    def _bound(bound, name: str):
        if isinstance(bound, dict):
            return bound.get(name)
        return bound

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        for name in self.columns_:
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            frame[name] = np.clip(values, self._bound(self.lower, name), self._bound(self.upper, name))
        return frame

    def lockstep_onnx(self, graph) -> None:
        for name in self.columns_:
            x = graph.number(name)
            clipped = x
            lower, upper = self._bound(self.lower, name), self._bound(self.upper, name)
            if lower is not None:
                clipped = graph.where(graph.compare("Less", clipped, graph.const(float(lower))),
                                      graph.const(float(lower)), clipped)
            if upper is not None:
                clipped = graph.where(graph.compare("Greater", clipped, graph.const(float(upper))),
                                      graph.const(float(upper)), clipped)
            graph[name] = clipped
