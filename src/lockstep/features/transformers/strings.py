"""Normalizing text: strip, lower-case, map values (stateless)."""

from __future__ import annotations

import pandas as pd

from lockstep.features.transformers._base import LockstepTransformer, as_list, map_distinct

__all__ = ["NormalizeStrings"]


class NormalizeStrings(LockstepTransformer):
    """Strip, lower-case and map the values of text columns.

    Stateless. Missing values stay missing; the result is an object column
    of strings.

    Parameters
    ----------
    columns : list of str, optional
        Every text column when ``None``.
    strip : bool, default True
        Remove leading and trailing white space.
    lower : bool, default True
        Lower-case.
    mapping : dict, optional
        Replace whole values after stripping and lower-casing, for example
        ``{"no internet service": "no"}``. Values not in the mapping are kept.

    Attributes
    ----------
    columns_ : list of str

    Examples
    --------
    >>> import pandas as pd
    >>> from lockstep.features.transformers import NormalizeStrings
    >>> X = pd.DataFrame({"backup": [" Yes", "No internet service", None]})
    >>> NormalizeStrings(mapping={"no internet service": "no"}).fit_transform(X)
      backup
    0    yes
    1     no
    2    NaN
    """

    _parameter_constraints = {"columns": [list, tuple, str, None], "strip": ["boolean"], "lower": ["boolean"],
                              "mapping": [dict, None]}
    _preserves_float64 = False

    def __init__(self, columns=None, strip=True, lower=True, mapping=None):
        self.columns = columns
        self.strip = strip
        self.lower = lower
        self.mapping = mapping

    def _fit(self, frame: pd.DataFrame) -> None:
        self.columns_ = self._resolve(frame, as_list(self.columns), kind="text")

    def _normalize(self, value):
        if not isinstance(value, str):
            return value
        if self.strip:
            value = value.strip()
        if self.lower:
            value = value.lower()
        if self.mapping:
            value = self.mapping.get(value, value)
        return value

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        for name in self.columns_:
            frame[name] = map_distinct(frame[name], self._normalize)
        return frame

    def lockstep_onnx(self, graph) -> None:
        for name in self.columns_:
            graph[name] = graph.map_text(graph[name], self._normalize, f"NormalizeStrings on {name!r}")
