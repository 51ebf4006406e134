"""Every lockstep transformer passes scikit-learn's own estimator checks.

``check_array_api_input`` is left out: it tests support for the Array API
(CuPy, PyTorch arrays...), which these pandas-based transformers do not
claim, and it can only run with ``SCIPY_ARRAY_API=1`` set for the whole
process, which would change SciPy's behaviour for the rest of the suite.

scikit-learn's ``set_output`` checks are not in that generator's list; what
they ask of a transformer is checked here too, since lockstep's transformers
put their output in its container themselves
(``_base.LockstepTransformer._container``). Polars' variants need polars,
which lockstep does not install.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.utils.estimator_checks import estimator_checks_generator

from lockstep.features.transformers import (
    CategoryMissingFiller,
    Clip,
    ColumnArithmetic,
    DateTimeParts,
    DropColumns,
    FixedBins,
    LogTransform,
    MissingIndicatorImputer,
    NormalizeStrings,
    PowerTransform,
    RareCategoryGrouper,
    RenameColumns,
    SelectColumns,
)

ESTIMATORS = [
    SelectColumns(),
    SelectColumns(["x0"]),
    DropColumns(),
    RenameColumns(),
    ColumnArithmetic(),
    ColumnArithmetic([("x0_squared", "x0", "*", "x0"), ("x0_half", "x0", "/", 2.0)]),
    DateTimeParts(),
    Clip(lower=-1.0, upper=1.0),
    LogTransform(offset=10.0),
    PowerTransform(power=2.0),
    NormalizeStrings(),
    FixedBins(),
    FixedBins([-1.0, 0.0, 1.0], output="code"),
    RareCategoryGrouper(),
    MissingIndicatorImputer(),
    CategoryMissingFiller(),
]

NOT_APPLICABLE = {"check_array_api_input"}


def _cases():
    for estimator in ESTIMATORS:
        for est, check in estimator_checks_generator(estimator, legacy=True, mark=None):
            name = getattr(check, "func", check).__name__
            if name in NOT_APPLICABLE:
                continue
            yield pytest.param(est, check, id=f"{est!r}-{name}")


@pytest.mark.parametrize(("estimator", "check"), list(_cases()))
def test_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)



@pytest.mark.parametrize("context", ["local", "global"])
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
def test_set_output_pandas(estimator, context) -> None:
    """``set_output(transform="pandas")``, or the global configuration, gives what the default output holds as a
    frame named by ``get_feature_names_out``, fitted and transformed on frames or on arrays, as scikit-learn's
    ``check_set_output_transform_pandas`` asks (less its cases fitted on an array and given a frame, or the
    reverse: lockstep's transformers find their columns by name)."""
    X = np.random.RandomState(0).uniform(size=(20, 5))
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)], index=[f"index{i}" for i in range(20)])
    for data in (df, X):
        default = clone(estimator).set_output(transform="default")
        expected = [default.fit(data).transform(data), default.fit_transform(data)]
        names = default.get_feature_names_out()
        if context == "local":
            transformer, where = clone(estimator).set_output(transform="pandas"), contextlib.nullcontext()
        else:
            transformer, where = clone(estimator), sklearn.config_context(transform_output="pandas")
        with where:
            outputs = [transformer.fit(data).transform(data), transformer.fit_transform(data)]
        for got, want in zip(outputs, expected):
            assert isinstance(got, pd.DataFrame)
            assert list(got.columns) == list(names)
            assert list(got.index) == (list(df.index) if data is df else list(range(20)))
            assert np.array_equal(np.asarray(got, dtype=object), np.asarray(want, dtype=object))
