"""ONNX for scikit-learn's histogram gradient boosting, exactly as it predicts.

skl2onnx 1.20's converter for ``HistGradientBoosting*`` fails with onnx 1.23,
compares in float32 and ignores categorical splits. This one writes ONNX's
``TreeEnsemble`` operator (``ai.onnx.ml`` version 5), which onnxruntime runs
in double precision, as scikit-learn does, and which has set-membership
nodes for categorical splits. A node of the fitted model becomes:

* a numeric split: ``x <= threshold`` (``BRANCH_LEQ``); a missing value goes
  where the model sends it (``missing_go_to_left``);
* a categorical split: ``x`` in the categories sent left (``BRANCH_MEMBER``);
  otherwise, when the model sends missing values left, a second node sends
  the categories it knows to the right and everything else (an unknown
  category, a negative code, a missing value) to the left, as scikit-learn
  treats them as missing.

The trees' sum starts from the model's baseline, then goes through the
loss's inverse link (identity, exp, the logistic function, softmax), and a
classifier's label is the class of the largest probability.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType

__all__ = ["convert_hist_gradient_boosting", "finish_tree_ensembles", "hist_gradient_boosting_shape"]

BRANCH_LEQ, BRANCH_MEMBER = 0, 6
#: The member of an empty set (onnxruntime wants at least one, and integers only): a value no category has.
_NEVER = float(np.iinfo(np.int32).min)
#: The domain the converter writes ``TreeEnsemble`` in, for skl2onnx, before :func:`finish_tree_ensembles`.
PLACEHOLDER_DOMAIN = "lockstep.placeholder"
#: The ``ai.onnx.ml`` version of ``TreeEnsemble``.
TREE_ENSEMBLE_OPSET = 5


def finish_tree_ensembles(model: Any) -> None:
    """Move the converter's ``TreeEnsemble`` nodes to ``ai.onnx.ml`` and declare its version 5 (in place).

    The other ``ai.onnx.ml`` operators skl2onnx writes mean the same at
    version 5 (those that changed since version 3 only gained attributes).
    """
    nodes = [n for n in model.graph.node if n.domain == PLACEHOLDER_DOMAIN]
    if not nodes:
        return
    for node in nodes:
        node.domain = "ai.onnx.ml"
    versions = {o.domain: o.version for o in model.opset_import if o.domain != PLACEHOLDER_DOMAIN}
    versions["ai.onnx.ml"] = max(versions.get("ai.onnx.ml", 0), TREE_ENSEMBLE_OPSET)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(domain, version) for domain, version in sorted(versions.items()))


class _Trees:
    """The attribute lists of one ``TreeEnsemble`` node, filled tree by tree."""

    def __init__(self) -> None:
        self.nodes: dict[str, list] = {k: [] for k in ("featureids", "modes", "splits", "truenodeids", "trueleafs",
                                                       "falsenodeids", "falseleafs", "missing")}
        self.membership: list[float] = []
        self.roots: list[int] = []
        self.leaf_targets: list[int] = []
        self.leaf_weights: list[float] = []

    def leaf(self, target: int, value: float) -> tuple[int, int]:
        self.leaf_targets.append(target)
        self.leaf_weights.append(float(value))
        return len(self.leaf_weights) - 1, 1

    def node(self, feature: int, mode: int, split: float, missing_true: bool,
             members: list[float] | None = None) -> int:
        for key, value in (("featureids", feature), ("modes", mode), ("splits", split),
                           ("missing", int(missing_true))):
            self.nodes[key].append(value)
        for key in ("truenodeids", "trueleafs", "falsenodeids", "falseleafs"):
            self.nodes[key].append(0)
        if mode == BRANCH_MEMBER:
            self.membership += [*(members or []), float("nan")]
        return len(self.nodes["modes"]) - 1

    def link(self, node: int, side: str, child: tuple[int, int]) -> None:
        self.nodes[f"{side}nodeids"][node], self.nodes[f"{side}leafs"][node] = child


def _bits(bitset: np.ndarray) -> list[float]:
    """The category codes in a 256-bit bitset (8 uint32 words)."""
    return [float(32 * word + bit) for word, value in enumerate(bitset.tolist()) for bit in range(32)
            if (int(value) >> bit) & 1]


class _Inputs:
    """Where the model's internal features come from in its input, and what their category codes stand for.

    With categorical features, the estimator encodes their values with an
    ordinal encoder of its own (unknown and missing values become missing)
    and moves them before the numeric features; its trees work on those
    codes. The ONNX graph tests the input's own values instead: a code's
    value is the encoder's category.
    """

    def __init__(self, op: Any) -> None:
        self.known, self.f_idx_map = op._bin_mapper.make_known_categories_bitsets()
        if getattr(op, "_preprocessor", None) is None:
            self.order = np.arange(op.n_features_in_)
            self.categories: list[np.ndarray] = []
        else:
            categorical = np.asarray(op.is_categorical_, dtype=bool)
            self.order = np.r_[np.flatnonzero(categorical), np.flatnonzero(~categorical)]
            self.categories = list(op._preprocessor.named_transformers_["encoder"].categories_)

    def column(self, feature: int) -> int:
        return int(self.order[feature])

    def values(self, feature: int, codes: list[float]) -> list[float]:
        """The input values of category ``codes`` of internal feature ``feature`` (missing ones left out)."""
        if feature >= len(self.categories):
            return codes
        categories = self.categories[feature]
        values = [float(categories[int(c)]) for c in codes
                  if int(c) < len(categories) and not np.isnan(float(categories[int(c)]))]
        if any(v != int(v) or not _NEVER < v <= np.iinfo(np.int32).max for v in values):
            # onnxruntime tests membership on integers: 2.5 would be taken for 2
            raise NotImplementedError("categorical features whose values are not integer codes (encode them with "
                                      "an OrdinalEncoder first)")
        return values


def _add_tree(trees: _Trees, predictor: Any, target: int, inputs: _Inputs) -> None:
    nodes = predictor.nodes

    def visit(i: int) -> tuple[int, int]:
        node = nodes[i]
        if node["is_leaf"]:
            return trees.leaf(target, node["value"])
        left_missing = bool(node["missing_go_to_left"])
        internal = int(node["feature_idx"])
        feature = inputs.column(internal)
        if not node["is_categorical"]:
            index = trees.node(feature, BRANCH_LEQ, float(node["num_threshold"]), left_missing)
            trees.link(index, "true", visit(int(node["left"])))
            trees.link(index, "false", visit(int(node["right"])))
            return index, 0
        left = inputs.values(internal, _bits(predictor.raw_left_cat_bitsets[int(node["bitset_idx"])]))
        index = trees.node(feature, BRANCH_MEMBER, 0.0, left_missing, left or [_NEVER])
        trees.link(index, "true", visit(int(node["left"])))
        right = visit(int(node["right"]))
        if not left_missing:
            trees.link(index, "false", right)  # unknown and missing values go right as well
        else:
            known = inputs.values(internal, _bits(inputs.known[int(inputs.f_idx_map[internal])]))
            known_right = [c for c in known if c not in set(left)]
            second = trees.node(feature, BRANCH_MEMBER, 0.0, False, known_right or [_NEVER])
            trees.link(second, "true", right)
            trees.link(second, "false", visit(int(node["left"])))  # treated as missing: left
            trees.link(index, "false", (second, 0))
        return index, 0

    root = visit(0)
    if root[1]:  # a tree that is one leaf: a split whose two branches end in it
        index = trees.node(0, BRANCH_LEQ, 0.0, True)
        trees.link(index, "true", root)
        trees.link(index, "false", root)
        root = (index, 0)
    trees.roots.append(root[0])


def hist_gradient_boosting_shape(operator: Any) -> None:
    """Output types: the label (classifiers) and the probabilities or values, in double precision."""
    op = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    if hasattr(op, "classes_"):
        kind = StringTensorType if np.asarray(op.classes_).dtype.kind in "OUS" else Int64TensorType
        operator.outputs[0].type = kind([n])
        operator.outputs[1].type = DoubleTensorType([n, len(op.classes_)])
    else:
        operator.outputs[0].type = DoubleTensorType([n, 1])


def convert_hist_gradient_boosting(scope: Any, operator: Any, container: Any) -> None:
    """The converter registered with skl2onnx for both ``HistGradientBoosting*`` estimators."""
    op = operator.raw_operator
    classifier = hasattr(op, "classes_")
    if classifier and np.asarray(op.classes_).dtype.kind not in "iuOUS":
        raise NotImplementedError(f"classes of dtype {np.asarray(op.classes_).dtype} (use integers or text)")
    link = type(op._loss.link).__name__
    if link not in ("IdentityLink", "LogLink", "LogitLink", "MultinomialLogit"):
        raise NotImplementedError(f"the loss {type(op._loss).__name__} (its link {link})")
    inputs = _Inputs(op)
    trees = _Trees()
    for iteration in op._predictors:
        for target, predictor in enumerate(iteration):
            _add_tree(trees, predictor, target, inputs)
    n_targets = op.n_trees_per_iteration_

    def name(hint: str) -> str:
        return scope.get_unique_variable_name(hint)

    x = operator.inputs[0].full_name
    if operator.inputs[0].type.__class__.__name__ != "DoubleTensorType":
        cast = name("hgb_x")
        container.add_node("Cast", [x], [cast], to=TensorProto.DOUBLE, name=scope.get_unique_operator_name("Cast"))
        x = cast
    attrs = _ensemble_attributes(trees, n_targets)
    summed = name("hgb_sum")
    # skl2onnx refuses ai.onnx.ml 5: the node is written in a placeholder domain and moved by finish_tree_ensembles
    container.add_node("TreeEnsemble", [x], [summed], op_domain=PLACEHOLDER_DOMAIN, op_version=1,
                       name=scope.get_unique_operator_name("TreeEnsemble"), **attrs)
    baseline = name("hgb_baseline")
    container.add_initializer(baseline, TensorProto.DOUBLE, [1, n_targets],
                              np.asarray(op._baseline_prediction, dtype=np.float64).ravel().tolist())
    raw = name("hgb_raw")
    container.add_node("Add", [summed, baseline], [raw], name=scope.get_unique_operator_name("Add"))

    if not classifier:
        out = operator.outputs[0].full_name
        container.add_node("Exp" if link == "LogLink" else "Identity", [raw], [out],
                           name=scope.get_unique_operator_name("Link"))
        return
    _classifier_outputs(scope, operator, container, raw, n_targets)


def _ensemble_attributes(trees: _Trees, n_targets: int) -> dict[str, Any]:
    """The attributes of the ``TreeEnsemble`` node (ai.onnx.ml 5) that sums the trees' leaves per target."""
    attrs: dict[str, Any] = {
        "aggregate_function": 1, "post_transform": 0, "n_targets": n_targets, "tree_roots": trees.roots,
        "nodes_featureids": trees.nodes["featureids"],
        "nodes_modes": numpy_helper.from_array(np.asarray(trees.nodes["modes"], dtype=np.uint8)),
        "nodes_splits": numpy_helper.from_array(np.asarray(trees.nodes["splits"], dtype=np.float64)),
        "nodes_truenodeids": trees.nodes["truenodeids"], "nodes_trueleafs": trees.nodes["trueleafs"],
        "nodes_falsenodeids": trees.nodes["falsenodeids"], "nodes_falseleafs": trees.nodes["falseleafs"],
        "nodes_missing_value_tracks_true": trees.nodes["missing"],
        "leaf_targetids": trees.leaf_targets,
        "leaf_weights": numpy_helper.from_array(np.asarray(trees.leaf_weights, dtype=np.float64)),
    }
    if trees.membership:
        attrs["membership_values"] = numpy_helper.from_array(np.asarray(trees.membership, dtype=np.float64))
    return attrs


def _classifier_outputs(scope: Any, operator: Any, container: Any, raw: str, n_targets: int) -> None:
    """A classifier's probabilities (sigmoid for two classes, softmax for more) and labels from the raw scores."""
    op = operator.raw_operator

    def name(hint: str) -> str:
        return scope.get_unique_variable_name(hint)

    proba = operator.outputs[1].full_name
    if n_targets == 1:
        positive = name("hgb_positive")
        container.add_node("Sigmoid", [raw], [positive], name=scope.get_unique_operator_name("Sigmoid"))
        one = name("hgb_one")
        container.add_initializer(one, TensorProto.DOUBLE, [1, 1], [1.0])
        negative = name("hgb_negative")
        container.add_node("Sub", [one, positive], [negative], name=scope.get_unique_operator_name("Sub"))
        container.add_node("Concat", [negative, positive], [proba], axis=1,
                           name=scope.get_unique_operator_name("Concat"))
    else:
        container.add_node("Softmax", [raw], [proba], axis=1, name=scope.get_unique_operator_name("Softmax"))
    index = name("hgb_argmax")
    container.add_node("ArgMax", [proba], [index], axis=1, keepdims=0, name=scope.get_unique_operator_name("ArgMax"))
    classes = name("hgb_classes")
    values = np.asarray(op.classes_)
    if values.dtype.kind in "OUS":
        container.add_initializer(classes, TensorProto.STRING, [len(values)], [str(v).encode() for v in values])
    else:
        container.add_initializer(classes, TensorProto.INT64, [len(values)], values.astype(np.int64).tolist())
    container.add_node("Gather", [classes, index], [operator.outputs[0].full_name], axis=0,
                       name=scope.get_unique_operator_name("Gather"))
