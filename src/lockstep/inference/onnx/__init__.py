"""ONNX export of a registered model: one graph from raw columns to predictions.

The registered pipeline is ``[features, model]``. The feature pipeline is
exported column by column with :class:`~lockstep.inference.onnx.graph.FrameGraph`
(each step's ``lockstep_onnx``); the model pipeline, standard scikit-learn
steps plus lockstep's stateful transformers, with skl2onnx in double
precision; the two graphs are joined feature column by feature column. The
graph's inputs are the raw columns, one tensor ``[N, 1]`` each: ``int64``
for integers that cannot be missing, ``double`` for other numbers and
booleans (NaN is missing), ``string`` for text (the empty string is
missing). Its outputs are ``label`` and ``probabilities`` (classifiers) or
``variable`` (regressors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lockstep.inference.onnx.graph import OPSET, FrameGraph, OnnxExportError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pyarrow as pa

    from lockstep.inference.schema import ModelSchema

__all__ = ["OnnxExportError", "build_onnx", "input_kind", "onnx_inputs"]


def input_kind(spec: Any) -> str:
    """The ONNX input kind of a raw column of the schema."""
    if spec.dtype == "int" and not spec.nullable:
        return "int64"
    if spec.dtype in ("int", "float", "bool"):
        return "double"
    if spec.dtype == "str":
        return "string"
    raise OnnxExportError(f"the raw column has dtype {spec.dtype}: ONNX has no date or time type")


def onnx_inputs(schema: ModelSchema, table: pa.Table) -> dict[str, np.ndarray]:
    """The graph's input tensors for validated raw rows (``table``), built like the pipeline's input."""
    import numpy as np

    frame = schema.frame(table)
    feeds = {}
    for name in schema.inputs:
        kind = input_kind(schema.columns[name])
        values = frame[name]
        if kind == "int64":
            feeds[f"in_{name}"] = values.to_numpy(dtype=np.int64).reshape(-1, 1)
        elif kind == "double":
            feeds[f"in_{name}"] = values.to_numpy(dtype=np.float64, na_value=np.nan).reshape(-1, 1)
        else:
            array = values.to_numpy(dtype=object, copy=True).reshape(-1, 1)
            array[values.isna().to_numpy().reshape(-1, 1)] = ""
            feeds[f"in_{name}"] = array
    return feeds


@dataclass
class BuiltGraph:
    model: Any  # onnx.ModelProto
    label: str | None
    scores: str


def _feature_steps(features: Any) -> list[tuple[str, Any]]:
    from sklearn.pipeline import Pipeline

    return list(features.steps) if isinstance(features, Pipeline) else [("features", features)]


def build_onnx(pipeline: Any, schema: ModelSchema) -> BuiltGraph:
    """The ONNX graph of a registered pipeline.

    Raises
    ------
    OnnxExportError
        Naming the step that cannot be exported and why.
    """
    import onnx
    from onnx import TensorProto, helper
    from sklearn.preprocessing import FunctionTransformer

    features, model = pipeline.steps[0][1], pipeline.steps[1][1]
    graph = FrameGraph()
    for name in schema.inputs:
        spec = schema.columns[name]
        try:
            kind = input_kind(spec)
        except OnnxExportError as exc:
            raise OnnxExportError(f"raw column {name!r}: {exc}") from None
        domain = frozenset(str(v) for v in spec.allowed) if spec.allowed is not None and kind == "string" else None
        graph.add_input(name, kind, domain)
    for step_name, step in _feature_steps(features):
        graph.step = f"feature step '{step_name}' ({type(step).__name__})"
        if isinstance(step, FunctionTransformer) and step.func is None:
            continue  # the identity
        if not hasattr(step, "lockstep_onnx"):
            raise OnnxExportError(f"{graph.step} has no ONNX form: give the class a lockstep_onnx(graph) method "
                                  "(see docs/inference.md), or serve with the sklearn runtime")
        step.lockstep_onnx(graph)
    feature_names = [str(n) for n in features.get_feature_names_out()]
    if list(graph.columns) != feature_names:
        raise OnnxExportError(f"the exported feature graph gives columns {list(graph.columns)}, but the pipeline "
                              f"gives {feature_names}")

    outputs, initial_types = [], []
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    for name in feature_names:
        column = graph.columns[name]
        if column.kind == "string":
            tensor = column.tensor
            initial_types.append((name, StringTensorType([None, 1])))
            elem = TensorProto.STRING
        else:
            tensor = graph.number(column).tensor
            initial_types.append((name, DoubleTensorType([None, 1])))
            elem = TensorProto.DOUBLE
        out = f"feat_{name}"
        graph.nodes.append(helper.make_node("Identity", [tensor], [out]))
        outputs.append(helper.make_tensor_value_info(out, elem, [None, 1]))
    feature_graph = helper.make_graph(graph.nodes, "lockstep_features", graph.inputs, outputs, graph.initializers)
    opsets = [helper.make_opsetid(domain, version) for domain, version in OPSET.items()]
    feature_model = helper.make_model(feature_graph, opset_imports=opsets)

    model_onnx = _convert_model(model, initial_types, schema.task)
    feature_model.ir_version = model_onnx.ir_version
    prefixed = onnx.compose.add_prefix(model_onnx, prefix="model_")
    io_map = [(f"feat_{name}", f"model_{name}") for name in feature_names]
    merged = onnx.compose.merge_models(feature_model, prefixed, io_map=io_map)
    names = [o.name for o in merged.graph.output]
    label = next((n for n in names if n.endswith("label")), None)
    scores = next(n for n in names if n.endswith(("probabilities", "variable")))
    onnx.checker.check_model(merged)
    return BuiltGraph(model=merged, label=label, scores=scores)


def _convert_model(model: Any, initial_types: list, task: str) -> Any:
    from skl2onnx import to_onnx
    from sklearn.pipeline import Pipeline

    from lockstep.inference.onnx.converters import register_converters

    register_converters()
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    options = {id(final): {"zipmap": False}} if task == "classification" else None
    try:
        return to_onnx(model, initial_types=initial_types, options=options, target_opset=dict(OPSET))
    except Exception as exc:
        message = str(exc)
        culprit = _culprit(model, message)
        raise OnnxExportError(f"the model pipeline cannot be converted by skl2onnx{culprit}: "
                              f"{type(exc).__name__}: {message.splitlines()[0][:300]}") from exc


def _culprit(model: Any, message: str) -> str:
    from sklearn.pipeline import Pipeline

    steps = model.steps if isinstance(model, Pipeline) else [("model", model)]
    names = []
    for name, step in steps:
        names.append((name, step))
        for sub in getattr(step, "transformers_", []) or []:
            inner = sub[1]
            names.append((f"{name}/{sub[0]}", inner))
            names += [(f"{name}/{sub[0]}/{n}", s) for n, s in getattr(inner, "steps", [])]
        names += [(f"{name}/{n}", s) for n, s in getattr(step, "steps", [])]
    for name, step in names:
        if type(step).__name__ in message:
            return f" (step '{name}', {type(step).__name__})"
    final_name, final = steps[-1]
    return f" (the failure is in the conversion of step '{final_name}', {type(final).__name__}, or its inputs)"
