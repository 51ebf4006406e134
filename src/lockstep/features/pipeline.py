"""Running a feature pipeline and holding it to its contract.

The contract of a feature pipeline:

1. the callable named in ``[features] pipeline`` returns a scikit-learn
   transformer (``fit`` and ``transform``); lockstep asks it for pandas
   output with ``set_output`` when it can;
2. given the raw columns as a DataFrame (:func:`lockstep.core.frames.raw_frame`)
   it returns a DataFrame with the same rows in the same order (same index),
   whose columns are numbers, booleans or text;
3. it is **stateless**: it learns nothing from the data and each output row
   depends only on its input row. :func:`check_stateless` proves it on a
   sample: each sampled row, given alone to a *new* pipeline, must come out
   bit for bit as it does in the whole table (NaN equal to NaN, dtypes
   equal). This is also the training/serving parity test of the feature
   code: at serving time the pipeline sees one row at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import FunctionTransformer

from lockstep.core.errors import PipelineError, shown
from lockstep.core.usercode import user_code_failure

__all__ = ["ParityReport", "check_stateless", "first_difference", "make_transformer", "run_pipeline",
           "sample_rows"]

RESERVED = ("split",)


def make_transformer(factory: Callable[[], Any] | None, ref: str) -> Any:
    """Call the factory and check that it returned a transformer; ask it for pandas output."""
    if factory is None:
        return FunctionTransformer(feature_names_out="one-to-one").set_output(transform="pandas")
    if not callable(factory):
        raise PipelineError(f"{ref!r} is not callable (it is a {type(factory).__name__})",
                            hint="name a function or class that returns a scikit-learn transformer")
    try:
        transformer = factory()
    except Exception as exc:
        raise user_code_failure(PipelineError, f"calling {ref!r} failed", exc) from exc
    if not (hasattr(transformer, "fit") and (hasattr(transformer, "transform")
                                             or hasattr(transformer, "fit_transform"))):
        raise PipelineError(
            f"{ref!r} returned a {type(transformer).__name__}, not a scikit-learn transformer "
            "(an object with fit and transform)",
            hint="return a transformer or a Pipeline of transformers, for example "
            "make_pipeline(ColumnArithmetic(...), FixedBins(...))",
        )
    if hasattr(transformer, "set_output"):
        try:
            transformer.set_output(transform="pandas")
        except (AttributeError, TypeError, ValueError):  # cannot output pandas: its output is checked below
            pass
    return transformer


def run_pipeline(transformer: Any, frame: pd.DataFrame, ref: str) -> pd.DataFrame:
    """``transformer.fit_transform(frame)``, checked against the contract."""
    try:
        out = transformer.fit_transform(frame)
    except PipelineError:
        raise
    except Exception as exc:
        raise user_code_failure(PipelineError, f"the feature pipeline {ref!r} failed on the raw data", exc,
                                hint="run it on the snapshot in a notebook: "
                                "lockstep.Project('.').read_snapshot().to_pandas()") from exc
    return check_output(out, frame, ref)


def check_output(out: Any, frame: pd.DataFrame, ref: str) -> pd.DataFrame:
    """The output must be a DataFrame with the input's rows, in order, and plain column types."""
    _check_rows(out, frame, ref)
    names = [str(c) for c in out.columns]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise PipelineError(f"the feature pipeline {ref!r} returned duplicate column names: {dupes}")
    for name in out.columns:
        dtype = out[name].dtype
        if not _plain_dtype(out[name]):
            raise PipelineError(
                f"the feature pipeline {ref!r} returned column {name!r} of dtype {dtype}; features must be "
                "numbers, booleans or text",
                hint="turn datetimes into numbers (DateTimeParts), categories into text (astype(object))",
            )
    return out


def _check_rows(out: Any, frame: pd.DataFrame, ref: str) -> pd.DataFrame:
    """The output must be a DataFrame with the input's rows, in order."""
    if not isinstance(out, pd.DataFrame):
        raise PipelineError(
            f"the feature pipeline {ref!r} returned a {type(out).__name__}, not a pandas DataFrame",
            hint="make every step support set_output(transform='pandas'), or return a DataFrame",
        )
    if len(out) != len(frame):
        raise PipelineError(
            f"the feature pipeline {ref!r} returned {len(out)} rows for {len(frame)} input rows",
            hint="a feature pipeline must not drop or add rows; filter rows at ingest (schema rules) instead",
        )
    if not out.index.equals(frame.index):
        position = next(i for i, (a, b) in enumerate(zip(out.index, frame.index)) if a != b)
        raise PipelineError(
            f"the feature pipeline {ref!r} reordered or re-indexed rows: output row {position} has index "
            f"{out.index[position]!r} where the input has {frame.index[position]!r}",
            hint="keep the input's index and row order (do not sort, shuffle or reset_index)",
        )
    return out


def _plain_dtype(series: pd.Series) -> bool:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return not pd.api.types.is_complex_dtype(dtype)
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return True
    if pd.api.types.is_object_dtype(dtype):
        kind = pd.api.types.infer_dtype(series, skipna=True)
        return kind in ("string", "empty", "boolean", "integer", "floating", "mixed-integer-float", "decimal")
    return False


def sample_rows(total: int, first_missing: list[int | None], n: int, seed: int = 0) -> list[int]:
    """Row positions for the stateless check: the first row, one row with each column missing, then random rows.

    Parameters
    ----------
    total : int
        The number of rows.
    first_missing : list of int or None
        For each input column in order, the first row where it is missing (None when it never is), as
        :func:`lockstep.features.table.first_missing_rows` finds them.
    n : int
        How many rows to check.
    seed : int, default 0
    """
    if total == 0 or n <= 0:
        return []
    chosen: dict[int, None] = {0: None}
    for row in first_missing:
        if row is not None and len(chosen) < n:
            chosen[row] = None
    rng = np.random.default_rng(seed)
    for i in rng.permutation(total):
        if len(chosen) >= min(n, total):
            break
        chosen[int(i)] = None
    return sorted(chosen)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    a_missing = a is None or (isinstance(a, float) and math.isnan(a))
    b_missing = b is None or (isinstance(b, float) and math.isnan(b))
    if a_missing or b_missing:
        return a_missing and b_missing
    return type(a) is type(b) and a == b


def first_difference(alone: pd.DataFrame, whole_row: pd.DataFrame) -> tuple[str, str, Any, Any] | None:
    """The first column where two one-row frames differ: ``(column, what, alone, whole)``, or None."""
    if list(alone.columns) != list(whole_row.columns):
        return ("(columns)", "columns", list(alone.columns), list(whole_row.columns))
    for name in whole_row.columns:
        if alone[name].dtype != whole_row[name].dtype:
            return (str(name), "dtype", str(alone[name].dtype), str(whole_row[name].dtype))
        a, b = alone[name].iloc[0], whole_row[name].iloc[0]
        a, b = _python(a), _python(b)
        if not _same(a, b):
            return (str(name), "value", a, b)
    return None


def _python(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return value
    return value


@dataclass(frozen=True)
class ParityReport:
    """The stateless check's result: rows checked, all identical."""

    rows_checked: int
    identical: bool = True

    def to_dict(self) -> dict:
        return {"rows_checked": self.rows_checked, "identical": self.identical}


def check_stateless(factory: Callable[[], Any], frame: pd.DataFrame, whole: pd.DataFrame, rows: list[int],
                    ref: str, ids: Any | None = None) -> ParityReport:
    """Give each sampled row alone to a new pipeline; it must equal its row in ``whole`` bit for bit.

    ``whole`` has passed :func:`check_output`. A row's output must have its columns and dtypes and, value by
    value, equal it as :func:`first_difference` compares; the sampled rows of ``whole`` are taken column by
    column once, not as a one-row frame each time (which copies a frame of many blocks into one).

    Raises
    ------
    PipelineError
        Naming the first differing column and row, and where such a step belongs.
    """
    names, dtypes = list(whole.columns), list(whole.dtypes)
    expected = [[_python(v) for v in whole[name].iloc[rows].tolist()] for name in names]
    for i, position in enumerate(rows):
        single = frame.iloc[[position]]
        try:
            alone = _check_rows(factory().fit_transform(single), single, ref)
        except PipelineError:
            raise
        except Exception as exc:
            raise user_code_failure(
                PipelineError, f"the feature pipeline {ref!r} fails on a single row (row {position})", exc,
                hint="a feature pipeline must work on one row at a time, as it will when serving; steps that "
                "need many rows (fitting statistics) belong in the model pipeline",
            ) from exc
        same = list(alone.columns) == names and list(alone.dtypes) == dtypes and all(
            _same(_python(a), b) for a, b in zip(alone.iloc[0].tolist(), (column[i] for column in expected)))
        difference = None if same else first_difference(alone, whole.iloc[[position]])
        if difference is not None:
            column, what, got_alone, got_whole = difference
            who = f"row {position}" + (f" (id {shown(ids[position])})" if ids is not None else "")
            raise PipelineError(
                f"the feature pipeline {ref!r} is not stateless: {who} transformed alone gives "
                f"{column} {what} {shown(got_alone)}, but {shown(got_whole)} in the whole table",
                hint="a step learns from the data (a scaler, imputer, encoder, rare-category grouping, target "
                "encoding) or depends on other rows. Move it into the model pipeline ([train] model), which is "
                "fitted on the training split only and travels with the model; keep the feature pipeline "
                "row-wise with fixed parameters",
            )
    return ParityReport(rows_checked=len(rows))
