"""Runtimes: what turns validated records into predictions, with scikit-learn or onnxruntime.

Both take the records the request model produced and return the labels (or
values) and, for classifiers, the class probabilities. The scikit-learn
runtime builds the pipeline's input with :func:`~lockstep.features.frames.raw_frame`,
as training and batch prediction do; the ONNX runtime feeds one tensor per
raw column to the exported graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from lockstep.inference.schema import ModelSchema
    from lockstep.registry.mlflow_registry import LoadedModel

__all__ = ["SklearnRuntime", "records_table"]


def records_table(records: list[dict], schema: ModelSchema) -> pa.Table:
    """Validated records as an Arrow table of the inputs, with the declared types."""
    import datetime as dt

    import pyarrow as pa

    from lockstep.data.schema import arrow_type

    columns = {}
    for name in schema.inputs:
        spec = schema.columns[name]
        values = [r.get(name) for r in records]
        if spec.dtype == "datetime":
            values = [v.astimezone(dt.UTC).replace(tzinfo=None) if isinstance(v, dt.datetime) and v.tzinfo else v
                      for v in values]
        columns[name] = pa.array(values, arrow_type(spec.dtype))
    return pa.table(columns)


class SklearnRuntime:
    """Predict with the registered scikit-learn pipeline (its feature step run once per request)."""

    name = "sklearn"
    blocking = True  # holds the GIL for milliseconds: run it in a worker thread

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.schema = loaded.schema
        self.classes = list(loaded.model.classes_) if self.schema.task == "classification" else None

    def predict(self, records: list[dict]) -> tuple[list, list[dict] | None]:
        from lockstep.inference.batch import predict_frame

        frame = self.schema.frame(records_table(records, self.schema))
        labels, proba = predict_frame(self.loaded.model, frame, self.schema.task)
        return _outputs(labels, proba, self.classes)


def _outputs(labels: Any, proba: Any, classes: list | None) -> tuple[list, list[dict] | None]:
    out_labels = [v.item() if hasattr(v, "item") else v for v in labels]
    if proba is None or classes is None:
        return out_labels, None
    names = [str(c) for c in classes]
    return out_labels, [dict(zip(names, row)) for row in proba.tolist()]
