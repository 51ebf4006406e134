"""Selecting, dropping and renaming columns (stateless)."""

from __future__ import annotations

import pandas as pd

from lockstep.features.transformers._base import LockstepTransformer, as_list

__all__ = ["DropColumns", "RenameColumns", "SelectColumns"]


class SelectColumns(LockstepTransformer):
    """Keep the named columns, in the order given.

    Stateless: it learns nothing from the data, so it belongs in a feature
    pipeline.

    Parameters
    ----------
    columns : list of str, optional
        The columns to keep; all columns when ``None``.

    Attributes
    ----------
    columns_ : list of str
        The columns kept.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Set when fitted on a DataFrame.

    Examples
    --------
    >>> import pandas as pd
    >>> from lockstep.features.transformers import SelectColumns
    >>> X = pd.DataFrame({"a": [1, 2], "b": [3, 4], "c": [5, 6]})
    >>> SelectColumns(["c", "a"]).fit_transform(X)
       c  a
    0  5  1
    1  6  2
    """

    _parameter_constraints = {"columns": [list, tuple, str, None]}

    _assigns_columns = False

    def __init__(self, columns=None):
        self.columns = columns

    def _fit(self, frame: pd.DataFrame) -> None:
        self.columns_ = self._resolve(frame, as_list(self.columns))

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[self.columns_]

    def lockstep_onnx(self, graph) -> None:
        graph.select(list(self.columns_))

    def _names_out(self, names: list[str]) -> list[str]:
        return list(self.columns_)


class DropColumns(LockstepTransformer):
    """Drop the named columns.

    Stateless.

    Parameters
    ----------
    columns : list of str, optional
        The columns to drop; none when ``None``. Every one must exist.

    Attributes
    ----------
    columns_ : list of str
        The columns dropped.

    Examples
    --------
    >>> import pandas as pd
    >>> from lockstep.features.transformers import DropColumns
    >>> DropColumns(["b"]).fit_transform(pd.DataFrame({"a": [1], "b": [2]}))
       a
    0  1
    """

    _parameter_constraints = {"columns": [list, tuple, str, None]}

    _assigns_columns = False

    def __init__(self, columns=None):
        self.columns = columns

    def _fit(self, frame: pd.DataFrame) -> None:
        columns = as_list(self.columns)
        self.columns_ = self._resolve(frame, columns) if columns else []

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop(columns=self.columns_)

    def lockstep_onnx(self, graph) -> None:
        graph.drop(list(self.columns_))

    def _names_out(self, names: list[str]) -> list[str]:
        return [n for n in names if n not in self.columns_]


class RenameColumns(LockstepTransformer):
    """Rename columns.

    Stateless.

    Parameters
    ----------
    mapping : dict, optional
        Old name to new name. Every old name must exist, and the result must
        not have two columns with the same name.

    Attributes
    ----------
    mapping_ : dict

    Examples
    --------
    >>> import pandas as pd
    >>> from lockstep.features.transformers import RenameColumns
    >>> RenameColumns({"female": "is_female"}).fit_transform(pd.DataFrame({"female": [1, 0]}))
       is_female
    0          1
    1          0
    """

    _parameter_constraints = {"mapping": [dict, None]}

    _assigns_columns = False

    def __init__(self, mapping=None):
        self.mapping = mapping

    def _fit(self, frame: pd.DataFrame) -> None:
        mapping = dict(self.mapping or {})
        self._resolve(frame, list(mapping))
        renamed = [mapping.get(c, c) for c in frame.columns]
        if len(set(renamed)) != len(renamed):
            raise ValueError(f"RenameColumns would give duplicate column names: {renamed}")
        self.mapping_ = mapping

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.rename(columns=self.mapping_)

    def lockstep_onnx(self, graph) -> None:
        graph.rename(dict(self.mapping_))

    def _names_out(self, names: list[str]) -> list[str]:
        return [self.mapping_.get(n, n) for n in names]
