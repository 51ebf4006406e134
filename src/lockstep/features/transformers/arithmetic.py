"""Arithmetic between columns: ratios, differences, sums, products (stateless)."""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import StrOptions

from lockstep.features.transformers._base import LockstepTransformer

__all__ = ["ColumnArithmetic"]

_OPS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


class ColumnArithmetic(LockstepTransformer):
    """Add columns computed from two others (or from a column and a number), row by row.

    Stateless: each output value depends only on the same row's inputs.

    Parameters
    ----------
    formulas : list of tuple, optional
        Each ``(new_column, left, op, right)``: ``left`` is a column name,
        ``op`` one of ``"+"``, ``"-"``, ``"*"``, ``"/"``, and ``right`` a
        column name or a number. Formulas are applied in order, so a later
        one may use an earlier one's result. The new columns are float64 and
        are appended after the existing ones (or replace a column of the same
        name in place).
    on_zero_division : {"nan", "inf"}, default "nan"
        What a division by zero gives: a missing value, or IEEE infinity.

    Attributes
    ----------
    formulas_ : list of tuple
        The validated formulas.

    Examples
    --------
    >>> import pandas as pd
    >>> from lockstep.features.transformers import ColumnArithmetic
    >>> X = pd.DataFrame({"total": [100.0, 50.0], "months": [4, 0]})
    >>> ColumnArithmetic([("per_month", "total", "/", "months")]).fit_transform(X)
       total  months  per_month
    0  100.0       4       25.0
    1   50.0       0        NaN
    """

    _parameter_constraints = {"formulas": [list, None], "on_zero_division": [StrOptions({"nan", "inf"})]}

    def __init__(self, formulas=None, on_zero_division="nan"):
        self.formulas = formulas
        self.on_zero_division = on_zero_division

    def _fit(self, frame: pd.DataFrame) -> None:
        formulas = []
        available = list(frame.columns)
        for formula in self.formulas or []:
            if not isinstance(formula, (tuple, list)) or len(formula) != 4:
                raise ValueError(f"each formula must be (new_column, left, op, right), got {formula!r}")
            name, left, op, right = formula
            if op not in _OPS:
                raise ValueError(f"unknown operator {op!r} in {formula!r}; use one of {sorted(_OPS)}")
            needed = [left] + ([] if isinstance(right, Real) and not isinstance(right, bool) else [right])
            missing = [c for c in needed if c not in available]
            if missing:
                raise ValueError(f"ColumnArithmetic: {formula!r} needs column(s) {missing}, but X has "
                                 f"{frame.shape[1]} feature(s): {available[:20]}")
            formulas.append((str(name), left, op, right))
            if name not in available:
                available.append(str(name))
        self.formulas_ = formulas

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        for name, left, op, right in self.formulas_:
            a = pd.to_numeric(frame[left], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            if isinstance(right, Real) and not isinstance(right, bool):
                b = np.full(len(frame), float(right))
            else:
                b = pd.to_numeric(frame[right], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            with np.errstate(divide="ignore", invalid="ignore"):
                result = _OPS[op](a, b)
            if op == "/" and self.on_zero_division == "nan":
                result = np.where(b == 0, np.nan, result)
            frame[name] = result
        return frame

    def lockstep_onnx(self, graph) -> None:
        ops = {"+": graph.add, "-": graph.sub, "*": graph.mul, "/": graph.div}
        for name, left, op, right in self.formulas_:
            a = graph.number(left)
            b = graph.const(float(right)) if isinstance(right, Real) and not isinstance(right, bool) \
                else graph.number(right)
            result = ops[op](a, b)
            if op == "/" and self.on_zero_division == "nan":
                result = graph.where(graph.compare("Equal", b, graph.const(0.0)), graph.const(float("nan")), result)
            graph[name] = result

    def _names_out(self, names: list[str]) -> list[str]:
        out = list(names)
        for name, *_ in self.formulas_:
            if name not in out:
                out.append(name)
        return out
