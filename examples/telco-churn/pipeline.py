"""telco-churn: the feature pipeline and the model.

lockstep imports the functions below by the names lockstep.toml gives:

features()
    A *stateless* transformer: raw columns in, feature columns out, row by
    row, with fixed parameters. lockstep checks on every run that each row
    transformed alone equals the row transformed with the whole table.

model()
    A scikit-learn Pipeline fitted on the training split only: everything
    that learns from data (imputation, rare-category grouping, encoding,
    scaling) is here, so that it is fitted on training rows and travels with
    the model.

The whole source of this module is fingerprinted: editing any function,
helpers included, makes `lockstep features` recompute.
"""

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from lockstep.features.transformers import (
    CategoryMissingFiller,
    ColumnArithmetic,
    FixedBins,
    MissingIndicatorImputer,
    NormalizeStrings,
    RareCategoryGrouper,
    RenameColumns,
    SelectColumns,
)

TEXT = ["multiple_lines", "internet_service", "online_security", "online_backup", "device_protection",
        "tech_support", "streaming_tv", "streaming_movies", "contract", "payment_method"]
ADD_ONS = ["online_security", "online_backup", "device_protection", "tech_support", "streaming_tv",
           "streaming_movies"]

NUMERIC_FEATURES = ["tenure", "monthly_charges", "total_charges", "charges_per_month", "charge_drift",
                    "add_on_services", "is_female", "senior_citizen", "partner", "dependents", "phone_service",
                    "paperless_billing"]
CATEGORICAL_FEATURES = ["tenure_band", "multiple_lines", "internet_service", "online_security", "online_backup",
                        "device_protection", "tech_support", "streaming_tv", "streaming_movies", "contract",
                        "payment_method"]


class CountEqual(TransformerMixin, BaseEstimator):
    """Count, row by row, how many of ``columns`` hold ``value``; the count goes to column ``name``.

    A custom transformer written for this project, following scikit-learn's
    contract: ``__init__`` only stores the parameters, ``fit`` checks the
    input and learns nothing from the values (so the step is stateless) and
    returns ``self``, ``transform`` adds one float64 column, and
    ``get_feature_names_out`` names the output. ``lockstep_onnx`` describes
    the same computation for the ONNX export.

    Parameters
    ----------
    columns : list of str
    value : str, default "yes"
    name : str, default "count"

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"a": ["yes", "no"], "b": ["yes", "yes"]})
    >>> CountEqual(["a", "b"], name="n").fit_transform(X)["n"].tolist()
    [2.0, 1.0]
    """

    def __init__(self, columns=(), value="yes", name="count"):
        self.columns = columns
        self.value = value
        self.name = name

    def fit(self, X, y=None):
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"CountEqual: columns {missing} are not in X")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        check_is_fitted(self)
        out = X.copy()
        hits = np.zeros(len(X), dtype=np.float64)
        for column in self.columns:
            hits += (X[column].astype(object) == self.value).to_numpy(dtype=np.float64)
        out[self.name] = hits
        return out

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return np.asarray([*self.feature_names_in_, self.name], dtype=object)

    def lockstep_onnx(self, graph):
        """The same count in ONNX, for `lockstep export onnx` (see lockstep's docs/inference.md)."""
        hits = [graph.to_double(graph.equals_text(graph[c], self.value)) for c in self.columns]
        graph[self.name] = graph.sum_of(hits)


def features():
    """Raw customer attributes to model features, row by row."""
    return make_pipeline(
        NormalizeStrings(TEXT, mapping={"no internet service": "no", "no phone service": "no"}),
        CountEqual(ADD_ONS, value="yes", name="add_on_services"),
        ColumnArithmetic([
            ("charges_per_month", "total_charges", "/", "tenure"),
            ("charge_drift", "monthly_charges", "-", "charges_per_month"),
        ]),
        FixedBins({"tenure": [0, 12, 24, 48, float("inf")]}, labels=["under 1y", "1-2y", "2-4y", "4y+"],
                  suffix="_band"),
        RenameColumns({"female": "is_female"}),
        SelectColumns(NUMERIC_FEATURES + CATEGORICAL_FEATURES),
    ).set_output(transform="pandas")


def model():
    """Preprocessing fitted on the training split, then a logistic regression."""
    preprocess = ColumnTransformer([
        ("numeric", make_pipeline(MissingIndicatorImputer(strategy="median"), StandardScaler()), NUMERIC_FEATURES),
        ("categorical", make_pipeline(CategoryMissingFiller(), RareCategoryGrouper(min_frequency=0.005),
                                      OneHotEncoder(handle_unknown="ignore")), CATEGORICAL_FEATURES),
    ])
    return Pipeline([("preprocess", preprocess), ("estimator", LogisticRegression(max_iter=2000))])


def boosted_model():
    """Gradient-boosted trees on the same features; categories as ordinal codes, missing values handled natively."""
    preprocess = ColumnTransformer([
        ("numeric", "passthrough", NUMERIC_FEATURES),
        ("categorical", make_pipeline(CategoryMissingFiller(), OrdinalEncoder(handle_unknown="use_encoded_value",
                                                                               unknown_value=-1)),
         CATEGORICAL_FEATURES),
    ])
    n_numeric = len(NUMERIC_FEATURES)
    categorical = list(range(n_numeric, n_numeric + len(CATEGORICAL_FEATURES)))
    return Pipeline([("preprocess", preprocess),
                     ("estimator", HistGradientBoostingClassifier(categorical_features=categorical, max_iter=200,
                                                                  early_stopping=False))])


if __name__ == "__main__":  # a quick look: python pipeline.py
    raw = pd.read_csv("data/wa_churn.csv").drop(columns=["rownames", "churn"])
    print(features().fit_transform(raw).head())
