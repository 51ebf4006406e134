"""What each transformer does on DataFrames, and the properties the feature pipeline relies on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from lockstep.features.transformers import (
    STATELESS,
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


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tenure": np.array([0, 5, 30, 72, 12], dtype=np.int64),
            "total": [0.0, 250.0, np.nan, 5000.0, 600.0],
            "monthly": [20.0, 50.0, 80.0, 70.0, 50.0],
            "contract": np.array([" Month-to-month", "One year", None, "Two year", "one year"], dtype=object),
            "signup": pd.to_datetime(["2020-01-05", "2021-06-30", None, "2019-12-31", "2022-02-19"]),
        },
        index=[10, 11, 12, 13, 14],
    )


STATELESS_CASES = [
    SelectColumns(["monthly", "tenure"]),
    DropColumns(["signup"]),
    RenameColumns({"tenure": "months"}),
    ColumnArithmetic([("per_month", "total", "/", "tenure"), ("gap", "monthly", "-", 10)]),
    DateTimeParts(["signup"], parts=["year", "quarter", "is_weekend"]),
    Clip(lower=0, upper={"total": 1000}),
    LogTransform(["total"]),
    PowerTransform(["monthly"], power=0.5),
    NormalizeStrings(["contract"], mapping={"one year": "1y"}),
    FixedBins({"tenure": [0, 12, 24, float("inf")]}),
]


@pytest.mark.parametrize("transformer", STATELESS_CASES, ids=lambda t: type(t).__name__)
def test_stateless_transformers_give_each_row_alone_what_they_give_it_in_the_table(transformer, frame) -> None:
    whole = clone(transformer).fit_transform(frame)
    assert isinstance(whole, pd.DataFrame)
    assert list(whole.index) == list(frame.index)
    for i in range(len(frame)):
        alone = clone(transformer).fit_transform(frame.iloc[[i]])
        assert list(alone.dtypes) == list(whole.dtypes)
        pd.testing.assert_frame_equal(alone, whole.iloc[[i]], check_exact=True)


@pytest.mark.parametrize("transformer", STATELESS_CASES + [RareCategoryGrouper(min_frequency=2),
                                                           MissingIndicatorImputer(), CategoryMissingFiller()],
                         ids=lambda t: type(t).__name__)
def test_feature_names_match_the_output(transformer, frame) -> None:
    fitted = clone(transformer).fit(frame)
    out = fitted.transform(frame)
    assert list(out.columns) == list(fitted.get_feature_names_out())


def test_the_stateless_list_names_exactly_the_stateless_cases() -> None:
    assert sorted(STATELESS) == sorted({type(t).__name__ for t in STATELESS_CASES})


def test_set_output_and_pipelines(frame) -> None:
    pipe = make_pipeline(ColumnArithmetic([("per_month", "total", "/", "tenure")]), SelectColumns(["per_month"]),
                         Clip(upper=100)).set_output(transform="pandas")
    out = pipe.fit_transform(frame)
    assert list(out.columns) == ["per_month"]
    assert out["per_month"].tolist()[1] == 50.0
    assert np.isnan(out["per_month"].tolist()[0])  # 0 / 0 -> missing, not inf
    assert list(pipe.get_feature_names_out()) == ["per_month"]


def test_arithmetic(frame) -> None:
    out = ColumnArithmetic([("r", "total", "/", "tenure"), ("s", "r", "*", 2)], on_zero_division="inf").fit_transform(
        frame.assign(total=[10.0, 250.0, np.nan, 5000.0, 600.0]))
    assert np.isinf(out["r"].iloc[0])
    assert out["s"].iloc[1] == 100.0
    assert out["r"].dtype == np.float64
    with pytest.raises(ValueError, match="needs column"):
        ColumnArithmetic([("r", "nope", "+", "tenure")]).fit(frame)
    with pytest.raises(ValueError, match="unknown operator"):
        ColumnArithmetic([("r", "total", "%", "tenure")]).fit(frame)


def test_datetime_parts(frame) -> None:
    out = DateTimeParts(parts=["year", "dayofweek", "is_weekend"]).fit_transform(frame)
    assert "signup" not in out.columns
    assert out["signup_year"].tolist()[:2] == [2020.0, 2021.0]
    assert np.isnan(out["signup_year"].iloc[2]) and np.isnan(out["signup_is_weekend"].iloc[2])
    assert out["signup_is_weekend"].iloc[0] == 1.0  # 2020-01-05 was a Sunday
    with pytest.raises(ValueError, match="unknown datetime part"):
        DateTimeParts(parts=["fortnight"]).fit(frame)


def test_clip_log_power(frame) -> None:
    clipped = Clip(lower={"total": 100}, upper={"total": 1000}).fit_transform(frame)
    assert clipped["total"].tolist()[:2] == [100.0, 250.0] and clipped["total"].iloc[3] == 1000.0
    assert clipped["monthly"].equals(frame["monthly"])  # only the named column
    logged = LogTransform(["total"], offset=0).fit_transform(frame)
    assert np.isnan(logged["total"].iloc[0])  # log(0) is missing, not -inf
    assert logged["total"].iloc[1] == pytest.approx(np.log(250.0))
    powered = PowerTransform(["monthly"], power=-1).fit_transform(frame)
    assert powered["monthly"].iloc[0] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="lower bound"):
        Clip(lower=5, upper=1).fit(frame)


def test_normalize_strings(frame) -> None:
    out = NormalizeStrings(mapping={"one year": "1y"}).fit_transform(frame)
    assert out["contract"].tolist()[:2] == ["month-to-month", "1y"]
    assert out["contract"].iloc[4] == "1y"
    assert pd.isna(out["contract"].iloc[2])
    assert out["contract"].dtype == object


def test_fixed_bins(frame) -> None:
    out = FixedBins({"tenure": [0, 12, 24, 72]}).fit_transform(frame)
    labels = out["tenure_bin"].tolist()
    assert labels[:3] + labels[4:] == ["[0, 12)", "[0, 12)", "[24, 72)", "[12, 24)"]
    assert pd.isna(labels[3])  # 72 is outside [24, 72)
    right = FixedBins({"tenure": [0, 12, 72]}, right=True, labels=["new", "old"], suffix=None).fit_transform(frame)
    assert right["tenure"].tolist()[1:4] == ["new", "old", "old"] and pd.isna(right["tenure"].iloc[0])
    codes = FixedBins({"tenure": [0, 12, 24, float("inf")]}, output="code").fit_transform(frame)
    assert codes["tenure_bin"].tolist() == [0.0, 0.0, 2.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="increasing"):
        FixedBins({"tenure": [5, 1]}).fit(frame)


def test_rare_category_grouper_learns_from_training_rows() -> None:
    train = pd.DataFrame({"n": ["A"] * 6 + ["B"] * 3 + ["C"], "x": range(10)})
    grouper = RareCategoryGrouper(min_frequency=0.2).fit(train)
    assert grouper.frequent_ == {"n": ["A", "B"]}
    out = grouper.transform(pd.DataFrame({"n": ["A", "C", "Z", None], "x": range(4)}))
    assert out["n"].tolist()[:3] == ["A", "other", "other"] and pd.isna(out["n"].iloc[3])
    assert out["x"].tolist() == [0, 1, 2, 3]
    assert RareCategoryGrouper(min_frequency=1).fit(train).frequent_ == {"n": ["A", "B", "C"]}


def test_missing_indicator_imputer_is_fitted_on_training_rows_only() -> None:
    train = pd.DataFrame({"a": [1.0, np.nan, 3.0, 5.0], "b": [1.0, 2.0, 3.0, 4.0]})
    imputer = MissingIndicatorImputer().fit(train)
    assert imputer.statistics_ == {"a": 3.0, "b": 2.5}
    assert imputer.indicators_ == ["a"]
    out = imputer.transform(pd.DataFrame({"a": [np.nan], "b": [np.nan]}))
    assert out.to_dict("records") == [{"a": 3.0, "b": 2.5, "a_missing": 1.0}]  # b never missed in training
    assert MissingIndicatorImputer(strategy="constant", fill_value=-1).fit(train).statistics_["a"] == -1.0
    assert MissingIndicatorImputer(strategy="mean").fit(train).statistics_["a"] == 3.0


def test_category_missing_filler_makes_every_value_a_string() -> None:
    out = CategoryMissingFiller(fill_value="none").fit_transform(pd.DataFrame({"v": ["Stone", None, np.nan]}))
    assert out["v"].tolist() == ["Stone", "none", "none"]


def test_stateful_transformers_are_not_stateless() -> None:
    """What the feature pipeline's check relies on: a stateful step fitted on one row differs."""
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 5.0]})
    whole = MissingIndicatorImputer().fit_transform(frame)
    alone = MissingIndicatorImputer().fit_transform(frame.iloc[[1]])
    assert not whole.iloc[[1]].reset_index(drop=True).equals(alone.reset_index(drop=True))


def test_unfitted_transform_raises(frame) -> None:
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        Clip(upper=1).transform(frame)


def test_invalid_parameters_are_refused_at_fit(frame) -> None:
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        ColumnArithmetic(on_zero_division="zero").fit(frame)
    with pytest.raises(InvalidParameterError):
        MissingIndicatorImputer(strategy="mode").fit(frame)


def test_transformers_pickle_round_trip(frame) -> None:
    import pickle

    pipe = make_pipeline(NormalizeStrings(), FixedBins({"tenure": [0, 12, 99]}), MissingIndicatorImputer())
    pipe.fit(frame)
    again = pickle.loads(pickle.dumps(pipe))
    pd.testing.assert_frame_equal(again.transform(frame), pipe.transform(frame))
