"""Transformers every tabular project rewrites, in scikit-learn's style.

Stateless (they learn nothing from data; use them in the feature pipeline):
:class:`SelectColumns`, :class:`DropColumns`, :class:`RenameColumns`,
:class:`ColumnArithmetic`, :class:`DateTimeParts`, :class:`Clip`,
:class:`LogTransform`, :class:`PowerTransform`, :class:`NormalizeStrings`,
:class:`FixedBins`.

Stateful (they learn from the training rows; use them in the model pipeline):
:class:`RareCategoryGrouper`, :class:`MissingIndicatorImputer`,
:class:`CategoryMissingFiller`.

All take and give pandas DataFrames (and NumPy arrays), implement
``get_feature_names_out`` and ``set_output``, and pass scikit-learn's
estimator checks.
"""

from lockstep.features.transformers.arithmetic import ColumnArithmetic
from lockstep.features.transformers.binning import FixedBins
from lockstep.features.transformers.categories import CategoryMissingFiller
from lockstep.features.transformers.clip import Clip
from lockstep.features.transformers.datetime_parts import DateTimeParts
from lockstep.features.transformers.missing import MissingIndicatorImputer
from lockstep.features.transformers.power import LogTransform, PowerTransform
from lockstep.features.transformers.rare import RareCategoryGrouper
from lockstep.features.transformers.selection import DropColumns, RenameColumns, SelectColumns
from lockstep.features.transformers.strings import NormalizeStrings

__all__ = [
    "CategoryMissingFiller",
    "Clip",
    "ColumnArithmetic",
    "DateTimeParts",
    "DropColumns",
    "FixedBins",
    "LogTransform",
    "MissingIndicatorImputer",
    "NormalizeStrings",
    "PowerTransform",
    "RareCategoryGrouper",
    "RenameColumns",
    "SelectColumns",
]

STATELESS = ("SelectColumns", "DropColumns", "RenameColumns", "ColumnArithmetic", "DateTimeParts", "Clip",
             "LogTransform", "PowerTransform", "NormalizeStrings", "FixedBins")
