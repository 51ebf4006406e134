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
        """The parts in ONNX, from the input's microseconds since 1970-01-01 UTC.

        The calendar is Howard Hinnant's ``civil_from_days`` in whole-number
        double arithmetic (exact below 2**53 microseconds, about year 2255);
        a missing datetime gives missing parts, as in pandas.
        """
        for column in self.columns_:
            parts = _onnx_parts(graph, graph.microseconds(column))
            for part in self.parts:
                graph[f"{column}_{part}"] = parts[part]
        if self.drop:
            graph.drop(self.columns_)

    def _names_out(self, names: list[str]) -> list[str]:
        out = [n for n in names if not (self.drop and n in self.columns_)]
        out += [f"{c}_{p}" for c in self.columns_ for p in self.parts]
        return out


def _onnx_parts(g, us) -> dict:
    """Every part of :data:`PARTS` of a column of microseconds, as ONNX columns (see ``lockstep_onnx``)."""
    def c(value: float):
        return g.const(float(value))

    def floor_div(a, b: float):
        return g.floor_div(a, b)

    def mod(a, b: float):  # a - b * floor(a / b), for whole numbers
        return g.sub(a, g.mul(c(b), floor_div(a, b)))

    days = floor_div(us, 86_400_000_000)
    of_day = g.sub(us, g.mul(days, c(86_400_000_000)))
    z = g.add(days, c(719_468))
    era = floor_div(z, 146_097)
    doe = g.sub(z, g.mul(era, c(146_097)))  # day of the 400-year era, 0 .. 146096
    yoe = floor_div(g.add(g.sub(doe, floor_div(doe, 1_460)), g.sub(floor_div(doe, 36_524), floor_div(doe, 146_096))),
                    365)  # year of the era, 0 .. 399
    doy_march = g.sub(doe, g.add(g.mul(c(365), yoe), g.sub(floor_div(yoe, 4), floor_div(yoe, 100))))
    mp = floor_div(g.add(g.mul(c(5), doy_march), c(2)), 153)  # month from March = 0
    day = g.add(g.sub(doy_march, floor_div(g.add(g.mul(c(153), mp), c(2)), 5)), c(1))
    month = g.where(g.compare("Less", mp, c(10)), g.add(mp, c(3)), g.sub(mp, c(9)))
    year = g.add(g.add(yoe, g.mul(era, c(400))), g.to_double(g.compare("LessOrEqual", month, c(2))))
    # the first of January of that year, by days_from_civil(year, 1, 1)
    y = g.sub(year, c(1))
    era_jan = floor_div(y, 400)
    yoe_jan = g.sub(y, g.mul(era_jan, c(400)))
    doe_jan = g.add(g.add(g.mul(yoe_jan, c(365)), g.sub(floor_div(yoe_jan, 4), floor_div(yoe_jan, 100))), c(306))
    january_first = g.sub(g.add(g.mul(era_jan, c(146_097)), doe_jan), c(719_468))
    dayofweek = mod(g.add(days, c(3)), 7)  # 1970-01-01 was a Thursday; Monday is 0
    return {
        "year": year,
        "quarter": g.add(floor_div(g.sub(month, c(1)), 3), c(1)),
        "month": month,
        "day": day,
        "dayofweek": dayofweek,
        "dayofyear": g.add(g.sub(days, january_first), c(1)),
        "hour": floor_div(of_day, 3_600_000_000),
        "minute": mod(floor_div(of_day, 60_000_000), 60),
        "is_weekend": g.where(g.is_nan(dayofweek), c(float("nan")),
                              g.to_double(g.compare("GreaterOrEqual", dayofweek, c(5)))),
    }
