"""Parts of dates and times as numbers (stateless)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lockstep.features.transformers._base import LockstepTransformer, as_list

__all__ = ["DateTimeParts"]

PARTS = ("year", "quarter", "month", "day", "dayofweek", "dayofyear", "hour", "minute", "is_weekend")
_PANDAS_NAME = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}


class DateTimeParts(LockstepTransformer):
    """Split datetime columns into numeric parts: year, month, day of week, ...

    Stateless. Each part becomes a float64 column named
    ``<column>_<part>`` (missing when the datetime is missing).

    Parameters
    ----------
    columns : list of str, optional
        Datetime columns to split; every datetime64 column when ``None``.
    parts : list of str, default ("year", "month", "day", "dayofweek")
        Any of ``year``, ``quarter``, ``month``, ``day``, ``dayofweek``
        (Monday = 0), ``dayofyear``, ``hour``, ``minute``, ``is_weekend``.
    drop : bool, default True
        Drop the datetime columns after splitting them.

    Attributes
    ----------
    columns_ : list of str

    Examples
    --------
    >>> import pandas as pd
    >>> from lockstep.features.transformers import DateTimeParts
    >>> X = pd.DataFrame({"sold": pd.to_datetime(["2010-03-15", "2009-12-31"])})
    >>> DateTimeParts(parts=["year", "quarter"]).fit_transform(X)
       sold_year  sold_quarter
    0     2010.0           1.0
    1     2009.0           4.0
    """

    _parameter_constraints = {"columns": [list, tuple, str, None], "parts": [list, tuple], "drop": ["boolean"]}

    def __init__(self, columns=None, parts=("year", "month", "day", "dayofweek"), drop=True):
        self.columns = columns
        self.parts = parts
        self.drop = drop

    def _fit(self, frame: pd.DataFrame) -> None:
        unknown = [p for p in self.parts if p not in PARTS]
        if unknown:
            raise ValueError(f"unknown datetime part(s) {unknown}; choose from {list(PARTS)}")
        columns = self._resolve(frame, as_list(self.columns), kind="datetime")
        wrong = [c for c in columns if not pd.api.types.is_datetime64_any_dtype(frame[c].dtype)]
        if wrong:
            raise ValueError(f"DateTimeParts: column(s) {wrong} are not datetime64 columns")
        self.columns_ = columns

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        for column in self.columns_:
            dt = frame[column].dt
            for part in self.parts:
                if part == "is_weekend":
                    values = (dt.day_of_week >= 5).astype(np.float64).where(frame[column].notna())
                else:
                    values = getattr(dt, _PANDAS_NAME.get(part, part))
                frame[f"{column}_{part}"] = values.astype(np.float64)
        if self.drop:
            frame = frame.drop(columns=self.columns_)
        return frame

    def lockstep_onnx(self, graph) -> None:
        if self.columns_:
            from lockstep.inference.onnx.graph import OnnxExportError

            raise OnnxExportError(f"DateTimeParts on {self.columns_}: ONNX has no datetime type, so date and "
                                  "time parts cannot be exported")

    def _names_out(self, names: list[str]) -> list[str]:
        out = [n for n in names if not (self.drop and n in self.columns_)]
        out += [f"{c}_{p}" for c in self.columns_ for p in self.parts]
        return out
