"""The ONNX graph of a registered model: one graph from raw columns to predictions.

The registered pipeline is ``[features, model]``. The feature pipeline is
exported column by column with :class:`~lockstep.inference.onnx.graph.FrameGraph`
(each step's ``lockstep_onnx``); the model pipeline, standard scikit-learn
steps plus lockstep's stateful transformers, with skl2onnx in double
precision; the two graphs are joined feature column by feature column. The
graph's inputs are the raw columns, one tensor ``[N, 1]`` each: ``int64``
for integers that cannot be missing, ``double`` for other numbers and
booleans (NaN is missing), ``string`` for text (the empty string is
missing), ``double`` microseconds since 1970-01-01 UTC for dates and times
(NaN is missing). Its outputs are ``label`` and ``probabilities``
(classifiers) or ``variable`` (regressors).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
from skl2onnx.sklapi import CastTransformer
from sklearn.ensemble import VotingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVR, LinearSVC, NuSVR
from sklearn.tree import BaseDecisionTree

from lockstep.core.prediction import has_probabilities
from lockstep.inference.onnx.converters import register_converters
from lockstep.inference.onnx.graph import OPSET, FrameGraph, OnnxExportError
from lockstep.inference.onnx.hist_boosting import finish_tree_ensembles
from lockstep.inference.onnx.inputs import input_kind

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.schema import ModelSchema

__all__ = ["BuiltGraph", "OnnxExportError", "build_onnx", "culprit"]


@dataclass
class BuiltGraph:
    model: Any  # onnx.ModelProto
    label: str | None  # None for a regressor
    scores: str | None  # None for a classifier without probabilities


def _feature_steps(features: Any) -> list[tuple[str, Any]]:
    return list(features.steps) if isinstance(features, Pipeline) else [("features", features)]


def build_onnx(pipeline: Any, schema: ModelSchema) -> BuiltGraph:
    """The ONNX graph of a registered pipeline.

    Raises
    ------
    OnnxExportError
        Naming the step that cannot be exported and why.
    """
    features, model = pipeline.steps[0][1], pipeline.steps[1][1]
    graph = _feature_graph(features, schema)
    feature_names = [str(n) for n in features.get_feature_names_out()]
    if list(graph.columns) != feature_names:
        raise OnnxExportError(f"the exported feature graph gives columns {list(graph.columns)}, but the pipeline "
                              f"gives {feature_names}")
    feature_model, initial_types = _feature_model(graph, feature_names)
    model_onnx = _convert_model(model, initial_types, schema.task)
    finish_tree_ensembles(model_onnx)
    feature_model.ir_version = model_onnx.ir_version
    _align_opsets(feature_model, model_onnx)
    prefixed = onnx.compose.add_prefix(model_onnx, prefix="model_")
    io_map = [(f"feat_{name}", f"model_{name}") for name in feature_names]
    try:
        merged = onnx.compose.merge_models(feature_model, prefixed, io_map=io_map)
        onnx.checker.check_model(merged)
    except Exception as exc:  # noqa: BLE001 - any failure here is the joined graph's
        raise OnnxExportError(f"the feature graph and the converted model pipeline{culprit(model, '')} cannot be "
                              f"joined: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
    names = [o.name for o in merged.graph.output]
    label = next((n for n in names if n.endswith("label")), None)
    scores = next((n for n in names if n.endswith(("probabilities", "variable"))), None)
    if schema.task == "classification" and not has_probabilities(model):
        scores = None  # the converter's scores are the decision function's, not probabilities
    if (label if schema.task == "classification" else scores) is None:
        raise OnnxExportError(f"the converted model pipeline{culprit(model, '')} has no output for the prediction "
                              f"(its outputs: {', '.join(names)})")
    return BuiltGraph(model=merged, label=label, scores=scores)


def _feature_graph(features: Any, schema: ModelSchema) -> FrameGraph:
    """The feature pipeline as a graph on the raw inputs: each step's ``lockstep_onnx`` adds its nodes."""
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
        try:
            step.lockstep_onnx(graph)
        except OnnxExportError:
            raise
        except Exception as exc:  # noqa: BLE001 - a user's lockstep_onnx: name the step, say what it raised
            raise OnnxExportError(f"{graph.step}: its lockstep_onnx failed: {type(exc).__name__}: {exc}") from exc
    return graph


def _feature_model(graph: FrameGraph, feature_names: list[str]) -> tuple[Any, list[tuple[str, Any]]]:
    """The feature graph as an ONNX model with one output per feature (``feat_<name>``), and the model
    converter's input types for them."""
    outputs, initial_types = [], []
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
    return helper.make_model(feature_graph, opset_imports=opsets), initial_types


def _align_opsets(*models: Any) -> None:
    """Declare, in every model, the highest version any of them uses of each operator domain.

    skl2onnx declares the lowest versions its nodes need (``ai.onnx.ml`` 1 for
    a tree ensemble), the feature graph those of :data:`OPSET`; models can only
    be merged when they agree. A node valid at a domain's lower version keeps
    its meaning at the higher one for the operators both graphs use (the
    ``ai.onnx.ml`` operators that changed, ``LabelEncoder`` and the tree
    ensembles, only gained attributes).
    """
    versions: dict[str, int] = {}
    for model in models:
        for opset in model.opset_import:
            versions[opset.domain] = max(versions.get(opset.domain, 0), opset.version)
    for model in models:
        del model.opset_import[:]
        model.opset_import.extend(helper.make_opsetid(domain, version) for domain, version in sorted(versions.items()))


def _convert_model(model: Any, initial_types: list, task: str) -> Any:
    register_converters()
    converted = _for_conversion(model)
    final = converted.steps[-1][1] if isinstance(converted, Pipeline) else converted
    options = {id(final): {"zipmap": False}} if task == "classification" else None
    try:
        return to_onnx(converted, initial_types=initial_types, options=options, target_opset=dict(OPSET))
    except Exception as exc:
        message = str(exc)
        if type(exc).__name__ in ("MissingShapeCalculator", "MissingConverter"):
            raw = _failing_object(exc)
            what = type(raw).__name__ if raw is not None else "one of its steps"
            message = f"skl2onnx has no converter for {what}"
        raise OnnxExportError(f"the model pipeline cannot be converted by skl2onnx{culprit(model, message, exc)}: "
                              f"{type(exc).__name__}: {(message.splitlines() or [''])[0][:300]}") from exc


def _has_decision_trees(estimator: Any, depth: int = 0) -> bool:
    """True when ``estimator`` is or contains scikit-learn decision trees (forests, boosting, bagging, ...)."""
    if isinstance(estimator, BaseDecisionTree):
        return True
    if depth > 4:
        return False
    members: list[Any] = []
    for name in ("estimators_", "estimator_", "calibrated_classifiers_", "final_estimator_", "regressor_"):
        value = getattr(estimator, name, None)
        if value is None:
            continue
        if hasattr(value, "ravel"):  # gradient boosting keeps its trees in an array
            value = list(value.ravel())
        members += value if isinstance(value, list) else [value]
    return any(_has_decision_trees(m, depth + 1) for m in members)


def _needs_float32(estimator: Any) -> bool:
    """Estimators whose ONNX operators run in onnxruntime only in float32: trees, and support vector regression."""
    return _has_decision_trees(estimator) or isinstance(estimator, SVR | NuSVR | LinearSVC)


def _for_conversion(model: Any) -> Any:
    """The model pipeline to convert: a copy adjusted where skl2onnx needs it; the registered model is untouched.

    * A cast to float32 goes before an estimator made of decision trees (or
      an SVR). scikit-learn's trees compare the input cast to float32 with
      their thresholds, and skl2onnx converts trees exactly for float32 input
      (it adjusts the thresholds to float32); its double-precision tree
      operators do not run in onnxruntime.
    * A soft ``VotingClassifier`` is converted with ``flatten_transform=False``
      (the parameter shapes ``transform`` only, which the graph does not
      use; skl2onnx refuses the default).
    """
    if not isinstance(model, Pipeline):
        return model
    name, final = model.steps[-1]
    if isinstance(final, VotingClassifier) and final.flatten_transform:
        final = copy.copy(final)
        final.flatten_transform = False
    steps = [*model.steps[:-1]]
    if _needs_float32(final):
        steps.append(("lockstep_float32", CastTransformer(dtype=np.float32)))
    return Pipeline([*steps, (name, final)])


def _named_steps(model: Any) -> list[tuple[str, Any]]:
    """Every step of a model pipeline with its path (``preprocess/categorical/simpleimputer``), outer first."""
    out: list[tuple[str, Any]] = []

    def walk(prefix: str, obj: Any) -> None:
        out.append((prefix, obj))
        for name, step in getattr(obj, "steps", None) or []:
            walk(f"{prefix}/{name}" if prefix else name, step)
        for name, step, _columns in getattr(obj, "transformers_", None) or []:
            walk(f"{prefix}/{name}", step)

    if isinstance(model, Pipeline):
        for name, step in model.steps:
            walk(name, step)
    else:
        walk("model", model)
    return out


def _failing_object(exc: BaseException | None) -> Any:
    """The scikit-learn object whose skl2onnx converter raised ``exc`` (the deepest one on the traceback)."""
    found = None
    tb = exc.__traceback__ if exc is not None else None
    while tb is not None:
        operator = tb.tb_frame.f_locals.get("operator")
        raw = getattr(operator, "raw_operator", None)
        if raw is not None:
            found = raw
        tb = tb.tb_next
    return found


def culprit(model: Any, message: str, exc: BaseException | None = None) -> str:
    """`` (step 'PATH', Class)``: the step of ``model`` a conversion failure is about, as precisely as known.

    The step whose converter raised ``exc``, else the innermost step whose
    class the message names, else the model's last step.
    """
    steps = _named_steps(model)
    failing = _failing_object(exc)
    if failing is not None:
        for name, step in reversed(steps):
            if step is failing:
                return f" (step '{name}', {type(step).__name__})"
        return f" (a {type(failing).__name__} inside step '{steps[-1][0]}')" if steps else ""
    for name, step in reversed(steps):
        if type(step).__name__ in message:
            return f" (step '{name}', {type(step).__name__})"
    top = [(n, s) for n, s in steps if "/" not in n]
    final_name, final = top[-1]
    return f" (step '{final_name}', {type(final).__name__}, or its inputs)"
