"""Every lockstep transformer passes scikit-learn's own estimator checks.

``check_array_api_input`` is left out: it tests support for the Array API
(CuPy, PyTorch arrays...), which these pandas-based transformers do not
claim, and it can only run with ``SCIPY_ARRAY_API=1`` set for the whole
process, which would change SciPy's behaviour for the rest of the suite.
"""

from __future__ import annotations

import pytest
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
