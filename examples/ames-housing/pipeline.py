"""ames-housing: the feature pipeline and the model.

features() is stateless (fixed parameters, row by row); model() holds
everything that learns from data and is fitted on the training split only.
The whole source of this module is fingerprinted.
"""

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor, make_column_selector
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from lockstep.features.transformers import (
    CategoryMissingFiller,
    Clip,
    ColumnArithmetic,
    DateTimeParts,
    DropColumns,
    LogTransform,
    MissingIndicatorImputer,
    PowerTransform,
    RareCategoryGrouper,
)

#: Quality and condition words of the Ames data on one scale; "no basement",
#: "no garage" and "no pool" score 0.
QUALITY = {"Very_Poor": 1, "Poor": 2, "Fair": 3, "Below_Average": 4, "Average": 5, "Typical": 5,
           "Above_Average": 6, "Good": 7, "Very_Good": 8, "Excellent": 9, "Very_Excellent": 10,
           "No_Basement": 0, "No_Garage": 0, "No_Pool": 0}
RATED = ["Overall_Cond", "Exter_Cond", "Bsmt_Cond", "Heating_QC", "Garage_Cond", "Pool_QC"]
NEAR_CONSTANT = ["Utilities", "Street", "Pool_Area", "Misc_Feature", "Misc_Val"]


class QualityScore(TransformerMixin, BaseEstimator):
    """Add ``<column>_score``: the quality word of each column as a number (fixed scale).

    A custom, stateless transformer: the scale is a parameter, not learned.
    Unknown words and missing values score NaN.

    Parameters
    ----------
    columns : list of str
    scale : dict, optional
        Word to score; ``QUALITY`` when ``None``.

    Examples
    --------
    >>> import pandas as pd
    >>> QualityScore(["Heating_QC"]).fit_transform(pd.DataFrame({"Heating_QC": ["Good", "Poor"]}))
      Heating_QC  Heating_QC_score
    0       Good               7.0
    1       Poor               2.0
    """

    def __init__(self, columns=(), scale=None):
        self.columns = columns
        self.scale = scale

    def fit(self, X, y=None):
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"QualityScore: columns {missing} are not in X")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        check_is_fitted(self)
        scale = QUALITY if self.scale is None else self.scale
        out = X.copy()
        for column in self.columns:
            out[f"{column}_score"] = X[column].map(scale).astype(np.float64)
        return out

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return np.asarray([*self.feature_names_in_, *(f"{c}_score" for c in self.columns)], dtype=object)

    def lockstep_onnx(self, graph):
        """The same lookup in ONNX, for `lockstep export onnx`."""
        scale = QUALITY if self.scale is None else self.scale
        for column in self.columns:
            graph[f"{column}_score"] = graph.lookup_number(graph[column], scale)


class SaleDate(TransformerMixin, BaseEstimator):
    """Add ``sale_date``, the first day of the month of sale, from ``Year_Sold`` and ``Mo_Sold``."""

    def fit(self, X, y=None):
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        check_is_fitted(self)
        out = X.copy()
        parts = pd.DataFrame({"year": X["Year_Sold"], "month": X["Mo_Sold"], "day": 1})
        out["sale_date"] = pd.to_datetime(parts).astype("datetime64[us]")
        return out

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return np.asarray([*self.feature_names_in_, "sale_date"], dtype=object)


def features():
    """House and sale attributes to model features, row by row."""
    return make_pipeline(
        QualityScore(RATED),
        ColumnArithmetic([
            ("house_age", "Year_Sold", "-", "Year_Built"),
            ("years_since_remodel", "Year_Sold", "-", "Year_Remod_Add"),
            ("total_area", "Gr_Liv_Area", "+", "Total_Bsmt_SF"),
            ("porch_area", "Open_Porch_SF", "+", "Enclosed_Porch"),
            ("bathrooms", "Full_Bath", "+", "Half_Bath"),
        ]),
        SaleDate(),
        DateTimeParts(["sale_date"], parts=["quarter"]),
        Clip(upper={"Gr_Liv_Area": 4000, "total_area": 7000}),
        LogTransform(["Lot_Area"]),
        PowerTransform(["Lot_Frontage"], power=0.5),
        DropColumns(NEAR_CONSTANT),
    ).set_output(transform="pandas")


def _log_price(regressor):
    """Fit on log prices (errors are proportional to price), predict in dollars."""
    return TransformedTargetRegressor(regressor=regressor, func=np.log, inverse_func=np.exp)


def model():
    """Preprocessing fitted on the training split, then a ridge regression on log prices."""
    preprocess = ColumnTransformer([
        ("numeric", make_pipeline(MissingIndicatorImputer(), StandardScaler()),
         make_column_selector(dtype_include="number")),
        ("categorical", make_pipeline(CategoryMissingFiller(), RareCategoryGrouper(min_frequency=0.01),
                                      OneHotEncoder(handle_unknown="ignore")),
         make_column_selector(dtype_include=object)),
    ])
    return Pipeline([("preprocess", preprocess), ("estimator", _log_price(Ridge(alpha=10.0)))])


def boosted_model():
    """Gradient-boosted trees on log prices; categories as ordinal codes."""
    preprocess = ColumnTransformer([
        ("numeric", "passthrough", make_column_selector(dtype_include="number")),
        ("categorical", make_pipeline(CategoryMissingFiller(), RareCategoryGrouper(min_frequency=0.01),
                                      OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)),
         make_column_selector(dtype_include=object)),
    ], verbose_feature_names_out=False)
    return Pipeline([("preprocess", preprocess),
                     ("estimator", _log_price(HistGradientBoostingRegressor(max_iter=300, early_stopping=False)))])
