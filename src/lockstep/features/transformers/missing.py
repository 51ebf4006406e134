"""Imputing numbers and flagging that they were missing (stateful: for model pipelines)."""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import StrOptions

from lockstep.features.transformers._base import LockstepTransformer, as_list

__all__ = ["MissingIndicatorImputer"]


class MissingIndicatorImputer(LockstepTransformer):
    """Fill missing numbers and add a 0/1 column saying where they were missing.

    Stateful: the fill values (mean or median) are learned at ``fit``, so
    this belongs in the model pipeline, fitted on the training split only.
    An indicator ``<column><suffix>`` is added for every column that had a
    missing value in the training rows (the set is fixed at ``fit``, so the
    output columns never depend on the rows transformed).

    Parameters
    ----------
    strategy : {"median", "mean", "constant"}, default "median"
    fill_value : float, optional
        The value for ``strategy="constant"`` (default 0).
    columns : list of str, optional
        Every numeric column when ``None``.
    suffix : str, default "_missing"

    Attributes
    ----------
    columns_ : list of str
    statistics_ : dict
        Column to fill value.
    indicators_ : list of str
        Columns that get an indicator.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from lockstep.features.transformers import MissingIndicatorImputer
    >>> X = pd.DataFrame({"charges": [10.0, np.nan, 30.0]})
    >>> MissingIndicatorImputer().fit_transform(X)
       charges  charges_missing
    0     10.0              0.0
    1     20.0              1.0
    2     30.0              0.0
    """

    _parameter_constraints = {"strategy": [StrOptions({"median", "mean", "constant"})], "fill_value": [Real, None],
                              "columns": [list, tuple, str, None], "suffix": [str]}
    _accepts_text = False

    def __init__(self, strategy="median", fill_value=None, columns=None, suffix="_missing"):
        self.strategy = strategy
        self.fill_value = fill_value
        self.columns = columns
        self.suffix = suffix

    def _fit(self, frame: pd.DataFrame) -> None:
        self.columns_ = self._resolve(frame, as_list(self.columns), kind="numeric")
        self.statistics_ = {}
        self.indicators_ = []
        for name in self.columns_:
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            observed = values[~np.isnan(values)]
            if self.strategy == "constant":
                fill = 0.0 if self.fill_value is None else float(self.fill_value)
            elif observed.size == 0:
                fill = 0.0 if self.fill_value is None else float(self.fill_value)
            else:
                fill = float(np.median(observed) if self.strategy == "median" else np.mean(observed))
            self.statistics_[name] = fill
            if observed.size < values.size:
                self.indicators_.append(name)

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        masks = {}
        for name in self.columns_:
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            missing = np.isnan(values)
            masks[name] = missing
            frame[name] = np.where(missing, self.statistics_[name], values)
        for name in self.indicators_:
            frame[name + self.suffix] = masks[name].astype(np.float64)
        return frame

    def _names_out(self, names: list[str]) -> list[str]:
        return list(names) + [n + self.suffix for n in self.indicators_]
