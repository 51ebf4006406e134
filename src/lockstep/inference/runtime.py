"""Runtimes: what turns validated records into predictions, with scikit-learn or onnxruntime.

Both take the records the request model produced and return the labels (or
values) and, for classifiers, the class probabilities. The scikit-learn
runtime builds the pipeline's input with :func:`~lockstep.core.frames.raw_frame`,
as training and batch prediction do; the ONNX runtime feeds one tensor per
raw column to the exported graph.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort
import pyarrow as pa

from lockstep.core.dtypes import arrow_type
from lockstep.core.prediction import model_outputs
from lockstep.inference.onnx.inputs import input_kind, microseconds

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.schema import ModelSchema
    from lockstep.registry.versions import LoadedModel

__all__ = ["OnnxRuntime", "SklearnRuntime", "input_groups", "record_feeds", "records_table"]


def records_table(records: list[dict], schema: ModelSchema) -> pa.Table:
    """Validated records as an Arrow table of the inputs, with the declared types."""
    columns = {}
    for name in schema.inputs:
        spec = schema.columns[name]
        values = [r.get(name) for r in records]
        if spec.dtype == "datetime":
            values = [v.astimezone(dt.UTC).replace(tzinfo=None) if isinstance(v, dt.datetime) and v.tzinfo else v
                      for v in values]
        columns[name] = pa.array(values, arrow_type(spec.dtype))
    return pa.table(columns)


def input_groups(schema: ModelSchema) -> dict[str, list[tuple[str, str]]]:
    """The graph's inputs by kind (:func:`~lockstep.inference.onnx.inputs.input_kind`): (column, tensor) pairs,
    in the schema's order."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in schema.inputs:
        groups.setdefault(input_kind(schema.columns[name]), []).append((name, f"in_{name}"))
    return groups


def record_feeds(records: list[dict], groups: dict[str, list[tuple[str, str]]]) -> dict[str, np.ndarray]:
    """The graph's input tensors, of shape (rows, 1), for validated records: the tensors
    :func:`~lockstep.inference.onnx.inputs.onnx_inputs` builds from the same rows as a table.

    The columns of a kind are built as one array, whose rows are the tensors (a request's cost is per array).
    """
    feeds: dict[str, np.ndarray] = {}
    n = len(records)
    for kind, columns in groups.items():
        if kind == "datetime":
            for name, tensor in columns:
                feeds[tensor] = microseconds([r.get(name) for r in records]).reshape(n, 1)
            continue
        if kind == "int64":
            block = np.array([[r.get(name) for r in records] for name, _ in columns], dtype=np.int64)
        elif kind == "double":
            block = np.array([[np.nan if (v := r.get(name)) is None else float(v) for r in records]
                              for name, _ in columns], dtype=np.float64)
        else:
            block = np.array([["" if (v := r.get(name)) is None else v for r in records] for name, _ in columns],
                             dtype=object)
        for row, (_, tensor) in enumerate(columns):
            feeds[tensor] = block[row].reshape(n, 1)
    return feeds


class SklearnRuntime:
    """Predict with the registered scikit-learn pipeline (its feature step run once per request)."""

    name = "sklearn"
    blocking = True  # holds the GIL for milliseconds: run it in a worker thread

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.schema = loaded.schema
        self.classes = list(loaded.model.classes_) if self.schema.task == "classification" else None

    def predict(self, records: list[dict]) -> tuple[list, list[dict] | None]:
        frame = self.schema.frame(records_table(records, self.schema))
        labels, proba = model_outputs(self.loaded.model, frame, self.schema.task)
        return _outputs(labels, proba, self.classes)


def _outputs(labels: Any, proba: Any, classes: list | None) -> tuple[list, list[dict] | None]:
    out_labels = [v.item() if hasattr(v, "item") else v for v in labels]
    if proba is None or classes is None:
        return out_labels, None
    names = [str(c) for c in classes]
    return out_labels, [dict(zip(names, row)) for row in proba.tolist()]


class OnnxRuntime:
    """Predict with the ONNX export of the registered model (checked against its recorded hash).

    Input tensors are built straight from the validated records, the way
    :func:`lockstep.inference.onnx.onnx_inputs` builds them from a table.
    """

    name = "onnx"
    blocking = False  # tens of microseconds: run it in the event loop

    def __init__(self, loaded: LoadedModel, registry) -> None:
        self.loaded = loaded
        self.schema = loaded.schema
        data, parity = registry.onnx(loaded.info)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.outputs = [o for o in (parity["outputs"]["label"], parity["outputs"]["scores"]) if o]
        self.groups = input_groups(self.schema)
        self.classes = list(loaded.model.classes_) if self.schema.task == "classification" else None

    def predict(self, records: list[dict]) -> tuple[list, list[dict] | None]:
        results = self.session.run(self.outputs, record_feeds(records, self.groups))
        if self.classes is not None:
            proba = results[1] if len(results) > 1 else None
            return _outputs(results[0].ravel(), proba, self.classes)
        return _outputs(results[0].ravel(), None, None)
