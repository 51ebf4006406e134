"""The code of the telco-churn project: its feature pipeline and its model.

lockstep imports the functions below by the names given in lockstep.toml:

features()
    A *stateless* scikit-learn transformer: raw columns in, feature columns out,
    row by row. It learns nothing from data, so it gives the same result for a
    row alone (at serving time) as for the whole table (at training time).
    lockstep checks that on every run.

model()
    A scikit-learn Pipeline fitted on the training split only. Everything that
    learns from data (imputers, encoders, scalers, ...) goes here, before the
    estimator, so that it is fitted on training rows and travels with the model.

The whole source of this module is fingerprinted: changing any function in it,
helpers included, makes lockstep recompute what depends on it.
"""

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

TARGET = "churn"

# Raw columns by kind, as `lockstep init` found them. Edit freely.
NUMERIC = [
    "female",
    "senior_citizen",
    "partner",
    "dependents",
    "tenure",
    "phone_service",
    "paperless_billing",
    "monthly_charges",
    "total_charges",
]
CATEGORICAL = [
    "multiple_lines",
    "internet_service",
    "online_security",
    "online_backup",
    "device_protection",
    "tech_support",
    "streaming_tv",
    "streaming_movies",
    "contract",
    "payment_method",
]


def features():
    """The feature pipeline: here the identity; add stateless, row-wise steps."""
    return FunctionTransformer(feature_names_out="one-to-one").set_output(transform="pandas")


def model():
    """The model pipeline: preprocessing fitted on the training split, then the estimator."""
    preprocess = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                CATEGORICAL,
            ),
        ]
    )
    return Pipeline([("preprocess", preprocess), ("estimator", LogisticRegression(max_iter=1000))])
