"""The base class of lockstep's transformers: pandas in, pandas out; arrays in, arrays out.

Every transformer follows scikit-learn's estimator contract: ``__init__``
stores its parameters and does nothing else; parameters are declared in
``_parameter_constraints`` and checked when ``fit`` is called; ``fit``
learns attributes ending in ``_`` and returns ``self``; ``transform``
refuses to run before ``fit``.

A DataFrame is transformed as a DataFrame (its dtypes and index are kept);
any other array-like is validated by :func:`sklearn.utils.validation.validate_data`,
its columns are named ``x0, x1, ...`` as scikit-learn names them, and the
result is returned as a NumPy array. ``set_output(transform="pandas")``
works as for any scikit-learn transformer.

Output dtypes never depend on the values in the data (a column that can
hold missing values is float64 whether or not this batch has one), so one
row transformed alone has the same dtypes as the whole table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._set_output import _get_output_config, _wrap_data_with_container
from sklearn.utils.validation import check_is_fitted, validate_data

from lockstep.core.factorize import factorize_objects

__all__ = ["LockstepTransformer", "is_numeric", "is_text", "map_distinct"]


def is_numeric(series: pd.Series) -> bool:
    """Numbers, not booleans."""
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def is_text(series: pd.Series) -> bool:
    """Text columns: object (strings and missing values), pandas string or categorical dtypes."""
    dtype = series.dtype
    return (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype))


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def map_distinct(series: pd.Series, func) -> pd.Series:
    """``func`` applied to each distinct non-missing value, spread back to every row (object dtype).

    Missing values stay NaN. One call per distinct value, not per row; the rows are factorized by their objects'
    identity first (:func:`~lockstep.core.factorize.factorize_objects`).
    """
    if len(series) <= 16:  # a few rows (a request): a plain loop beats factorizing
        values = [np.nan if _missing(v) else func(v) for v in series.tolist()]
        return pd.Series(values, index=series.index, dtype=object)
    codes, uniques = factorize_objects(series.astype(object).to_numpy())
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [func(u) for u in uniques]
    mapped[-1] = np.nan
    return pd.Series(mapped[codes], index=series.index, dtype=object)


class LockstepTransformer(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):  # type: ignore[call-arg]
    """Shared machinery; subclasses implement ``_fit``, ``_transform`` and ``_names_out``.

    ``set_output`` works as scikit-learn's own transformers' does, but the output is put in its container here,
    once (:meth:`_container`), not by scikit-learn's wrappers around ``transform`` and ``fit_transform``, which
    rename the columns of a frame that already has them, twice per step: on one row (serving, the stateless
    check) that was a fifth of a lockstep pipeline's time. The subclasses, which define neither method, get
    ``set_output`` from scikit-learn's mixin as usual.
    """

    _parameter_constraints: dict = {}
    _preserves_float64: bool = True
    _accepts_text: bool = True
    #: Whether ``_transform`` assigns columns of the frame it is given (else it returns a new frame, and the frame
    #: need not be copied first).
    _assigns_columns: bool = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = self._accepts_text
        tags.transformer_tags.preserves_dtype = ["float64"] if self._preserves_float64 else []
        return tags

    # ------------------------------------------------------------------ input and output

    def _frame(self, X, *, reset: bool) -> tuple[pd.DataFrame, bool]:
        """Validate ``X`` and return it as a DataFrame, and whether it was one."""
        if isinstance(X, pd.DataFrame):
            if not self._same_names(X, reset=reset):  # else what validate_data would find, without its cost
                validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] == 0:
                raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")
            return X, True
        array = validate_data(self, X, reset=reset, dtype=None if self._accepts_text else "numeric",
                              ensure_all_finite="allow-nan")
        return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])]), False

    def _same_names(self, X: pd.DataFrame, *, reset: bool) -> bool:
        """For a frame whose column names are all text: record them (``reset``), or say they are the fitted ones.

        This is what :func:`~sklearn.utils.validation.validate_data` records and checks for such a frame, at a
        fraction of its cost on a row (a lockstep pipeline serving one row calls it for every step). Anything else
        (names that are not all text, or not the fitted ones) is left to ``validate_data``, with its messages.
        """
        names = list(X.columns)
        if not names or not all(isinstance(n, str) for n in names):
            return False
        if reset:
            self.feature_names_in_ = np.asarray(names, dtype=object)
            self.n_features_in_ = len(names)
            return True
        fitted = getattr(self, "feature_names_in_", None)
        return fitted is not None and len(fitted) == len(names) and all(a == b for a, b in zip(fitted, names))

    @staticmethod
    def _output(frame: pd.DataFrame, was_frame: bool):
        if was_frame:
            return frame
        if all(pd.api.types.is_float_dtype(t) for t in frame.dtypes):
            return frame.to_numpy(dtype=np.float64)
        return frame.to_numpy()

    def _input_names(self) -> list[str]:
        if hasattr(self, "feature_names_in_"):
            return [str(n) for n in self.feature_names_in_]
        return [f"x{i}" for i in range(self.n_features_in_)]

    def _check_input_features(self, input_features) -> list[str]:
        expected = self._input_names()
        if input_features is None:
            return expected
        given = [str(n) for n in input_features]
        if len(given) != self.n_features_in_:
            raise ValueError(f"input_features should have length equal to number of features "
                             f"({self.n_features_in_}), got {len(given)}")
        if hasattr(self, "feature_names_in_") and given != expected:
            raise ValueError("input_features is not equal to feature_names_in_")
        return given

    def _resolve(self, frame: pd.DataFrame, columns: Sequence[str] | None, *, kind: str = "any") -> list[str]:
        """The columns to work on: those named (which must exist), or all of ``kind``."""
        if columns is not None:
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise ValueError(f"{type(self).__name__}: column(s) {missing} are not in X, which has "
                                 f"{frame.shape[1]} feature(s): {list(frame.columns)[:20]}")
            return list(columns)
        if kind == "numeric":
            return [c for c in frame.columns if is_numeric(frame[c])]
        if kind == "text":
            return [c for c in frame.columns if is_text(frame[c])]
        if kind == "datetime":
            return [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c].dtype)]
        return list(frame.columns)

    # ------------------------------------------------------------------ the estimator API

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the parameters and ``X``, and learn what the transformer needs.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        frame, _ = self._frame(X, reset=True)
        self._fit(frame)
        return self

    def transform(self, X):
        """Transform ``X``: a DataFrame gives a DataFrame, an array an array.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        DataFrame or ndarray of shape (n_samples, n_features_out)
        """
        check_is_fitted(self)
        frame, was_frame = self._frame(X, reset=False)
        # A shallow copy: transformers assign whole columns, and with pandas'
        # copy-on-write that never touches the caller's frame.
        out = self._transform(frame.copy(deep=False) if self._assigns_columns else frame)
        return self._container(self._output(out, was_frame), X)

    def fit_transform(self, X, y=None):
        """Fit to ``X``, then transform it.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        DataFrame or ndarray of shape (n_samples, n_features_out)
        """
        return self.fit(X, y).transform(X)

    def _container(self, out, X):
        """``out`` in the container ``set_output`` (or the global configuration) asks for: as it is when it is one
        already (the default, or a frame with the output's names), else through scikit-learn's own wrapping."""
        dense = _get_output_config("transform", self)["dense"]
        if dense == "default":
            return out
        if dense == "pandas" and isinstance(out, pd.DataFrame) \
                and list(out.columns) == self._names_out(self._input_names()):
            return out
        return _wrap_data_with_container("transform", out, X, self)

    def get_feature_names_out(self, input_features=None):
        """The names of the output columns.

        Parameters
        ----------
        input_features : array-like of str, optional
            Must match ``feature_names_in_`` when given.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self, "n_features_in_")
        names = self._check_input_features(input_features)
        return np.asarray(self._names_out(names), dtype=object)

    # ------------------------------------------------------------------ for subclasses

    def _fit(self, frame: pd.DataFrame) -> None:
        """Learn from the training frame (nothing, for stateless transformers)."""

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def _names_out(self, names: list[str]) -> list[str]:
        return list(names)


def as_list(value: str | Iterable[str] | None) -> list[str] | None:
    """``None``, or a list of column names (a single name becomes a one-item list)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return list(value)
