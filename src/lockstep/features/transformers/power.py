"""Log and power transforms with fixed parameters (stateless)."""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd

from lockstep.features.transformers._base import LockstepTransformer, as_list

__all__ = ["LogTransform", "PowerTransform"]


def _numbers(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


class LogTransform(LockstepTransformer):
    """``log(x + offset)`` of numeric columns, with a fixed offset and base.

    Stateless. Values where ``x + offset <= 0`` become missing (NaN), as do
    missing values; results are float64.

    Parameters
    ----------
    columns : list of str, optional
        Every numeric column when ``None``.
    offset : float, default 1.0
        Added before the logarithm (``offset=1`` is ``log1p``).
    base : float, optional
        The logarithm's base; natural logarithm when ``None``.

    Attributes
    ----------
    columns_ : list of str

    Examples
    --------
    >>> import pandas as pd
    >>> from lockstep.features.transformers import LogTransform
    >>> LogTransform(["lot"], offset=0, base=10).fit_transform(pd.DataFrame({"lot": [10, 1000]}))
       lot
    0  1.0
    1  3.0
    """

    _parameter_constraints = {"columns": [list, tuple, str, None], "offset": [Real], "base": [Real, None]}
    _accepts_text = False

    def __init__(self, columns=None, offset=1.0, base=None):
        self.columns = columns
        self.offset = offset
        self.base = base

    def _fit(self, frame: pd.DataFrame) -> None:
        if self.base is not None and (self.base <= 0 or self.base == 1):
            raise ValueError(f"LogTransform: base must be positive and not 1, got {self.base}")
        self.columns_ = self._resolve(frame, as_list(self.columns), kind="numeric")

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        for name in self.columns_:
            shifted = _numbers(frame[name]) + float(self.offset)
            with np.errstate(divide="ignore", invalid="ignore"):
                result = np.where(shifted > 0, np.log(np.where(shifted > 0, shifted, 1.0)), np.nan)
            if self.base is not None:
                result = result / np.log(float(self.base))
            frame[name] = result
        return frame

    def lockstep_onnx(self, graph) -> None:
        for name in self.columns_:
            shifted = graph.add(graph.number(name), graph.const(float(self.offset)))
            positive = graph.compare("Greater", shifted, graph.const(0.0))
            logged = graph.log(graph.where(positive, shifted, graph.const(1.0)))
            result = graph.where(positive, logged, graph.const(float("nan")))
            if self.base is not None:
                result = graph.div(result, graph.const(float(np.log(float(self.base)))))
            graph[name] = result


class PowerTransform(LockstepTransformer):
    """``x ** power`` of numeric columns, with a fixed power (for example 0.5 for a square root).

    Stateless. Results are float64; values without a real result (a
    negative number to a fractional power) become missing.

    Parameters
    ----------
    columns : list of str, optional
        Every numeric column when ``None``.
    power : float, default 0.5

    Attributes
    ----------
    columns_ : list of str

    Examples
    --------
    >>> import pandas as pd
    >>> from lockstep.features.transformers import PowerTransform
    >>> PowerTransform(["frontage"], power=0.5).fit_transform(pd.DataFrame({"frontage": [16, 81]}))
       frontage
    0       4.0
    1       9.0
    """

    _parameter_constraints = {"columns": [list, tuple, str, None], "power": [Real]}
    _accepts_text = False

    def __init__(self, columns=None, power=0.5):
        self.columns = columns
        self.power = power

    def _fit(self, frame: pd.DataFrame) -> None:
        self.columns_ = self._resolve(frame, as_list(self.columns), kind="numeric")

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        for name in self.columns_:
            with np.errstate(invalid="ignore", divide="ignore"):
                result = np.power(_numbers(frame[name]), float(self.power))
            frame[name] = np.where(np.isfinite(result), result, np.nan)
        return frame

    def lockstep_onnx(self, graph) -> None:
        for name in self.columns_:
            result = graph.pow(graph.number(name), graph.const(float(self.power)))
            graph[name] = graph.where(graph.is_finite(result), result, graph.const(float("nan")))
