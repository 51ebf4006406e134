"""Making missing text categories explicit (for model pipelines and ONNX export)."""

from __future__ import annotations

import pandas as pd

from lockstep.features.transformers._base import LockstepTransformer, as_list, map_distinct

__all__ = ["CategoryMissingFiller"]


class CategoryMissingFiller(LockstepTransformer):
    """Replace missing values in text columns with an explicit category.

    Put it before encoders in a model pipeline. Besides making "missing" a
    category the model can learn from, it matters for ONNX export: the ONNX
    converters' imputers reject NaN in string columns, while a string
    category converts cleanly. Every value becomes a string (an object
    column).

    Parameters
    ----------
    fill_value : str, default "missing"
    columns : list of str, optional
        Every text column when ``None`` (decided at ``fit``).

    Attributes
    ----------
    columns_ : list of str

    Examples
    --------
    >>> import pandas as pd
    >>> from lockstep.features.transformers import CategoryMissingFiller
    >>> CategoryMissingFiller().fit_transform(pd.DataFrame({"veneer": ["Stone", None]}))
        veneer
    0    Stone
    1  missing
    """

    _parameter_constraints = {"fill_value": [str], "columns": [list, tuple, str, None]}
    _preserves_float64 = False

    def __init__(self, fill_value="missing", columns=None):
        self.fill_value = fill_value
        self.columns = columns

    def _fit(self, frame: pd.DataFrame) -> None:
        self.columns_ = self._resolve(frame, as_list(self.columns), kind="text")

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        for name in self.columns_:
            values = map_distinct(frame[name], str)
            frame[name] = values.where(values.notna(), self.fill_value)
        return frame
