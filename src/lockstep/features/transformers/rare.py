"""Grouping rare categories (stateful: for model pipelines)."""

from __future__ import annotations

from numbers import Integral, Real

import pandas as pd
from sklearn.utils._param_validation import Interval

from lockstep.features.transformers._base import LockstepTransformer, as_list, map_distinct

__all__ = ["RareCategoryGrouper"]


class RareCategoryGrouper(LockstepTransformer):
    """Replace categories seen rarely in training by one shared category.

    Stateful: which categories are frequent is learned at ``fit``, so this
    belongs in the model pipeline, fitted on the training split only.
    Categories never seen in training are rare too. Missing values stay
    missing.

    Parameters
    ----------
    min_frequency : float or int, default 0.01
        A category is kept when its share of the training rows is at least
        this (a float in (0, 1]) or when it occurs at least this many times
        (an int).
    replacement : str, default "other"
        The category rare values become.
    columns : list of str, optional
        Every text column when ``None``.

    Attributes
    ----------
    columns_ : list of str
    frequent_ : dict
        Column to the sorted list of categories kept.

    Examples
    --------
    >>> import pandas as pd
    >>> from lockstep.features.transformers import RareCategoryGrouper
    >>> X = pd.DataFrame({"roof": ["Gable"] * 8 + ["Hip", "Shed"]})
    >>> RareCategoryGrouper(min_frequency=2).fit(X).transform(
    ...     pd.DataFrame({"roof": ["Gable", "Shed", "Mansard"]}))
        roof
    0  Gable
    1  other
    2  other
    """

    _parameter_constraints = {
        "min_frequency": [Interval(Real, 0, 1, closed="right"), Interval(Integral, 1, None, closed="left")],
        "replacement": [str],
        "columns": [list, tuple, str, None],
    }
    _preserves_float64 = False

    def __init__(self, min_frequency=0.01, replacement="other", columns=None):
        self.min_frequency = min_frequency
        self.replacement = replacement
        self.columns = columns

    def _fit(self, frame: pd.DataFrame) -> None:
        self.columns_ = self._resolve(frame, as_list(self.columns), kind="text")
        n = len(frame)
        threshold = self.min_frequency if isinstance(self.min_frequency, Integral) else self.min_frequency * n
        self.frequent_ = {}
        for name in self.columns_:
            counts = frame[name].astype(object).dropna().value_counts()
            self.frequent_[name] = sorted(str(v) for v in counts.index[counts >= threshold])

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        for name in self.columns_:
            frequent = set(self.frequent_[name])
            frame[name] = map_distinct(frame[name], lambda v, keep=frequent: str(v) if str(v) in keep
                                       else self.replacement)
        return frame
