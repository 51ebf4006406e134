"""What a registered model takes and gives: its raw input schema, recorded at training.

Stored with every model version as the run artifact ``input_schema.json``,
so that batch prediction and the service validate their input against the
schema the model was trained with, from the registry alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lockstep.core.lazy import lazy_module
from lockstep.core.sections import ColumnSchema
from lockstep.core.values import plain

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

    import lockstep.core.frames as frames
    from lockstep.core.config import Config
else:  # pandas, for the commands that build a frame: reading a schema (models list, a skip decision) needs none
    frames = lazy_module("lockstep.core.frames")

__all__ = ["ModelSchema"]


@dataclass(frozen=True)
class ModelSchema:
    """The inputs and outputs of a registered model.

    Attributes
    ----------
    inputs : list of str
        The raw columns the model reads, in order.
    columns : dict
        Column name to :class:`~lockstep.core.sections.ColumnSchema`, for the inputs
        and the id column.
    id_column : str or None
        The id column requests and batch files may carry (``None`` when ids
        were derived from row content).
    target : str
    task : str
    classes : list or None
        The classes, in the order of the probability columns.
    """

    inputs: list[str]
    columns: dict[str, ColumnSchema]
    id_column: str | None
    target: str
    task: str
    classes: list[Any] | None = None

    @classmethod
    def from_config(cls, config: Config, classes: list[Any] | None) -> ModelSchema:
        data = config.data
        names = list(config.feature_inputs) + ([data.id] if data.id and data.id not in config.feature_inputs else [])
        return cls(inputs=list(config.feature_inputs), columns={n: data.columns[n] for n in names},
                   id_column=data.id, target=data.target, task=data.task, classes=classes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": list(self.inputs),
            "columns": {name: spec.model_dump(mode="json", exclude_none=True) for name, spec in self.columns.items()},
            "id_column": self.id_column,
            "target": self.target,
            "task": self.task,
            "classes": [plain(c) for c in self.classes] if self.classes is not None else None,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelSchema:
        return cls(inputs=list(raw["inputs"]), columns={n: ColumnSchema.model_validate(v) for n, v in
                                                        raw["columns"].items()},
                   id_column=raw.get("id_column"), target=raw["target"], task=raw["task"], classes=raw.get("classes"))

    @property
    def input_schema(self) -> dict[str, ColumnSchema]:
        return {name: self.columns[name] for name in self.inputs}

    def frame(self, table: pa.Table) -> pd.DataFrame:
        """The model's input DataFrame from validated raw rows (the same function training used)."""
        return frames.raw_frame(table, self.columns, self.inputs)
