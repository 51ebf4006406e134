"""skl2onnx converters for lockstep's stateful transformers (the ones that live in model pipelines).

Inside a ``ColumnTransformer`` branch skl2onnx hands a converter one tensor
of shape ``[N, k]`` (all numbers, or all text); each converter below does to
it what the transformer's ``transform`` does to the same ``k`` columns.
Missing text is the empty string in ONNX.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skl2onnx import update_registered_converter
from skl2onnx.algebra.onnx_ops import (
    OnnxAnd,
    OnnxCast,
    OnnxConcat,
    OnnxEqual,
    OnnxGather,
    OnnxIdentity,
    OnnxIsNaN,
    OnnxLabelEncoder,
    OnnxSplit,
    OnnxWhere,
)
from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
from skl2onnx.operator_converters.linear_classifier import convert_sklearn_linear_classifier
from skl2onnx.shape_calculators.linear_classifier import calculate_linear_classifier_output_shapes
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.svm import LinearSVC

from lockstep.features.transformers import CategoryMissingFiller, MissingIndicatorImputer, RareCategoryGrouper
from lockstep.inference.onnx.hist_boosting import convert_hist_gradient_boosting, hist_gradient_boosting_shape

__all__ = ["register_converters"]

_REGISTERED = False


def _column_names(operator: Any) -> list[str]:
    names = getattr(operator.raw_operator, "feature_names_in_", None)
    if names is None:
        return [f"x{i}" for i in range(operator.raw_operator.n_features_in_)]
    return [str(n) for n in names]


def _shape_same(operator: Any) -> None:
    n = operator.inputs[0].get_first_dimension()
    k = len(_column_names(operator))
    operator.outputs[0].type = operator.inputs[0].type.__class__([n, k])


def _shape_missing(operator: Any) -> None:
    n = operator.inputs[0].get_first_dimension()
    op = operator.raw_operator
    width = len(_column_names(operator)) + len(op.indicators_)
    operator.outputs[0].type = operator.inputs[0].type.__class__([n, width])


def _convert_missing(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    opv = container.target_opset
    names = _column_names(operator)
    dtype = np.float64 if isinstance(operator.inputs[0].type, DoubleTensorType) else np.float32
    x = operator.inputs[0]
    isnan = OnnxIsNaN(x, op_version=opv)
    selected = np.array([[n in op.statistics_ for n in names]], dtype=bool)
    mask = OnnxAnd(isnan, selected, op_version=opv)
    stats = np.array([[op.statistics_.get(n, 0.0) for n in names]], dtype=dtype)
    filled = OnnxWhere(mask, stats, x, op_version=opv)
    if op.indicators_:
        index = np.array([names.index(n) for n in op.indicators_], dtype=np.int64)
        flags = OnnxCast(OnnxGather(isnan, index, axis=1, op_version=opv),
                         to=11 if dtype == np.float64 else 1, op_version=opv)
        out = OnnxConcat(filled, flags, axis=1, op_version=opv, output_names=operator.outputs[:1])
    else:
        out = OnnxIdentity(filled, op_version=opv, output_names=operator.outputs[:1])
    out.add_to(scope, container)


def _convert_filler(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    opv = container.target_opset
    names = _column_names(operator)
    x = operator.inputs[0]
    selected = np.array([[n in op.columns_ for n in names]], dtype=bool)
    empty = OnnxEqual(x, np.array([""], dtype=object), op_version=opv)
    out = OnnxWhere(OnnxAnd(empty, selected, op_version=opv), np.array([op.fill_value], dtype=object), x,
                    op_version=opv, output_names=operator.outputs[:1])
    out.add_to(scope, container)


def _convert_rare(scope: Any, operator: Any, container: Any) -> None:
    op = operator.raw_operator
    opv = container.target_opset
    names = _column_names(operator)
    x = operator.inputs[0]
    parts = OnnxSplit(x, np.array([1] * len(names), dtype=np.int64), axis=1, op_version=opv,
                      output_names=[scope.get_unique_variable_name(f"rare_split_{i}") for i in range(len(names))])
    columns = []
    for i, name in enumerate(names):
        part = OnnxIdentity(parts[i], op_version=opv)
        if name in op.frequent_:
            keep = list(op.frequent_[name])
            part = OnnxLabelEncoder(part, keys_strings=[*keep, ""], values_strings=[*keep, ""],
                                    default_string=op.replacement, op_version=3)
        columns.append(part)
    out = OnnxConcat(*columns, axis=1, op_version=opv, output_names=operator.outputs[:1]) if len(columns) > 1 \
        else OnnxIdentity(columns[0], op_version=opv, output_names=operator.outputs[:1])
    out.add_to(scope, container)


def _imputer_kept(op: Any) -> list[int]:
    """The input columns a fitted SimpleImputer keeps (it drops those all missing at fit, unless told not to)."""
    stats = op.statistics_
    if getattr(op, "keep_empty_features", False) or stats.dtype.kind not in "fc":
        return list(range(len(stats)))
    return [i for i, v in enumerate(stats) if not np.isnan(v)]


def _imputer_indicators(op: Any) -> list[int]:
    indicator = getattr(op, "indicator_", None)
    return [int(i) for i in indicator.features_] if indicator is not None else []


def _shape_imputer(operator: Any) -> None:
    op = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    width = len(_imputer_kept(op)) + len(_imputer_indicators(op))
    operator.outputs[0].type = operator.inputs[0].type.__class__([n, width])


def _is_missing_marker(value: Any) -> bool:
    """True for the markers of a missing value (NaN, None, pd.NA), which are the empty string in ONNX text."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:  # pd.NA
        return True


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """scikit-learn's SimpleImputer: text (missing is the empty string) and numbers, in the input's precision.

    skl2onnx's own converter refuses text whose missing marker is NaN and
    imputes numbers in float32; this one does what ``transform`` does.
    """
    op = operator.raw_operator
    opv = container.target_opset
    x = operator.inputs[0]
    marker = op.missing_values
    if isinstance(x.type, StringTensorType):
        if not _is_missing_marker(marker) and not isinstance(marker, str):
            raise NotImplementedError(f"SimpleImputer on text with missing_values={marker!r}")
        stats = np.array([["" if v is None else str(v) for v in op.statistics_]], dtype=object)
        missing = OnnxEqual(x, np.array(["" if _is_missing_marker(marker) else marker], dtype=object),
                            op_version=opv)
        flag_type = 11
    else:
        dtype = np.float64 if isinstance(x.type, DoubleTensorType) else np.float32
        stats = np.array([op.statistics_], dtype=dtype)
        missing = (OnnxIsNaN(x, op_version=opv) if _is_missing_marker(marker) else
                   OnnxEqual(x, np.array([marker], dtype=dtype), op_version=opv))
        flag_type = 11 if dtype == np.float64 else 1
    filled = OnnxWhere(missing, stats, x, op_version=opv)
    kept = _imputer_kept(op)
    if len(kept) < len(op.statistics_):
        filled = OnnxGather(filled, np.array(kept, dtype=np.int64), axis=1, op_version=opv)
    parts = [filled]
    indicators = _imputer_indicators(op)
    if indicators:
        if isinstance(x.type, StringTensorType):
            raise NotImplementedError("SimpleImputer(add_indicator=True) on text: the indicator columns are numbers "
                                      "in a text branch")
        flags = OnnxGather(missing, np.array(indicators, dtype=np.int64), axis=1, op_version=opv)
        parts.append(OnnxCast(flags, to=flag_type, op_version=opv))
    out = (OnnxConcat(*parts, axis=1, op_version=opv, output_names=operator.outputs[:1]) if len(parts) > 1 else
           OnnxIdentity(parts[0], op_version=opv, output_names=operator.outputs[:1]))
    out.add_to(scope, container)


def register_converters() -> None:
    """Teach skl2onnx lockstep's stateful transformers (once per process)."""
    global _REGISTERED
    if _REGISTERED:
        return
    update_registered_converter(MissingIndicatorImputer, "LockstepMissingIndicatorImputer", _shape_missing,
                                _convert_missing)
    update_registered_converter(CategoryMissingFiller, "LockstepCategoryMissingFiller", _shape_same, _convert_filler)
    update_registered_converter(RareCategoryGrouper, "LockstepRareCategoryGrouper", _shape_same, _convert_rare)
    # scikit-learn's SimpleImputer, as lockstep's graphs feed it (replaces skl2onnx's converter in this process)
    update_registered_converter(SimpleImputer, "SklearnSimpleImputer", _shape_imputer, _convert_imputer)
    # histogram gradient boosting in double precision with categorical splits (see hist_boosting.py)
    classifier_options = {"zipmap": [True, False, "columns"], "nocl": [True, False],
                          "output_class_labels": [False, True], "raw_scores": [True, False]}
    update_registered_converter(HistGradientBoostingClassifier, "SklearnHistGradientBoostingClassifier",
                                hist_gradient_boosting_shape, convert_hist_gradient_boosting,
                                options=classifier_options)
    update_registered_converter(HistGradientBoostingRegressor, "SklearnHistGradientBoostingRegressor",
                                hist_gradient_boosting_shape, convert_hist_gradient_boosting)
    # skl2onnx's own LinearSVC converter, declared with the zipmap option its parser asks every classifier for
    # (skl2onnx 1.20 leaves it out, so a LinearSVC cannot be converted at all)
    update_registered_converter(LinearSVC, "SklearnLinearSVC", calculate_linear_classifier_output_shapes,
                                convert_sklearn_linear_classifier,
                                options={"zipmap": [True, False, "columns"], "nocl": [True, False],
                                         "output_class_labels": [False, True], "raw_scores": [True, False]})
    _REGISTERED = True
