"""The code of the ames-housing project: its feature pipeline and its model.

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
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

TARGET = "Sale_Price"

# Raw columns by kind, as `lockstep init` found them. Edit freely.
NUMERIC = [
    "Lot_Frontage",
    "Lot_Area",
    "Year_Built",
    "Year_Remod_Add",
    "Mas_Vnr_Area",
    "BsmtFin_SF_1",
    "BsmtFin_SF_2",
    "Bsmt_Unf_SF",
    "Total_Bsmt_SF",
    "First_Flr_SF",
    "Second_Flr_SF",
    "Gr_Liv_Area",
    "Bsmt_Full_Bath",
    "Bsmt_Half_Bath",
    "Full_Bath",
    "Half_Bath",
    "Bedroom_AbvGr",
    "Kitchen_AbvGr",
    "TotRms_AbvGrd",
    "Fireplaces",
    "Garage_Cars",
    "Garage_Area",
    "Wood_Deck_SF",
    "Open_Porch_SF",
    "Enclosed_Porch",
    "Three_season_porch",
    "Screen_Porch",
    "Pool_Area",
    "Misc_Val",
    "Mo_Sold",
    "Year_Sold",
    "Longitude",
    "Latitude",
]
CATEGORICAL = [
    "MS_SubClass",
    "MS_Zoning",
    "Street",
    "Alley",
    "Lot_Shape",
    "Land_Contour",
    "Utilities",
    "Lot_Config",
    "Land_Slope",
    "Neighborhood",
    "Condition_1",
    "Condition_2",
    "Bldg_Type",
    "House_Style",
    "Overall_Cond",
    "Roof_Style",
    "Roof_Matl",
    "Exterior_1st",
    "Exterior_2nd",
    "Mas_Vnr_Type",
    "Exter_Cond",
    "Foundation",
    "Bsmt_Cond",
    "Bsmt_Exposure",
    "BsmtFin_Type_1",
    "BsmtFin_Type_2",
    "Heating",
    "Heating_QC",
    "Central_Air",
    "Electrical",
    "Functional",
    "Garage_Type",
    "Garage_Finish",
    "Garage_Cond",
    "Paved_Drive",
    "Pool_QC",
    "Fence",
    "Misc_Feature",
    "Sale_Type",
    "Sale_Condition",
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
    return Pipeline([("preprocess", preprocess), ("estimator", Ridge(alpha=1.0))])
