"""``lockstep export onnx``: convert, check parity on the test split, store with the model version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import onnxruntime as ort
import pyarrow as pa

from lockstep.core.compare import compare_outputs, within_tolerance
from lockstep.core.errors import UserError
from lockstep.core.prediction import model_outputs
from lockstep.inference.onnx.build import OnnxExportError, build_onnx, culprit
from lockstep.inference.onnx.inputs import onnx_inputs

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.refs import ModelRef
    from lockstep.registry.versions import VersionInfo
    from lockstep.store import Store

__all__ = ["TOLERANCE", "OnnxExport", "export_onnx"]

#: The largest difference of probabilities (or values) allowed between ONNX and scikit-learn.
TOLERANCE = 1e-5


@dataclass
class OnnxExport:
    version: VersionInfo
    path: str
    parity: dict[str, Any]

    def to_dict(self) -> dict:
        return {"model": self.version.name, "version": self.version.version, "path": self.path,
                "parity": self.parity}


def test_rows(store: Store, info: VersionInfo):
    """The raw rows of the test split the model was evaluated on."""
    name = info.tags["lockstep.features.name"]
    feature = store.features(name).info(int(info.tags["lockstep.features.version"]))
    split = store.features(name).read(feature.version, columns=["split"]).column("split")
    raw = store.snapshots.read(feature.raw_version)
    return raw.filter(pa.array([s == "test" for s in split.to_pylist()]))


def parity_check(loaded: Any, session: Any, built: Any, table: Any) -> dict[str, Any]:
    """Compare onnxruntime with the scikit-learn pipeline on ``table``: label mismatches, largest differences.

    Classifiers pass with identical labels and probabilities within
    :data:`TOLERANCE`; regressors with values within :data:`TOLERANCE` of
    their magnitude (``|a - b| <= TOLERANCE * max(1, |a|)``).
    """
    frame = loaded.schema.frame(table)
    feeds = onnx_inputs(loaded.schema, table)
    regression = loaded.schema.task == "regression"
    expected_labels, expected = model_outputs(loaded.model, frame, loaded.schema.task)
    if regression:
        (values,) = session.run([built.scores], feeds)
        comparison = compare_outputs(expected_labels, None, values.ravel(), None, regression=True)
    elif built.label is not None and built.scores is None:
        (labels,) = session.run([built.label], feeds)
        comparison = compare_outputs(expected_labels, None, labels.ravel(), None, regression=False)
    else:
        labels, proba = session.run([built.label, built.scores], feeds)
        comparison = compare_outputs(expected_labels, expected, labels.ravel(), proba, regression=False)
    return {"rows": table.num_rows, "label_mismatches": 0 if regression else comparison.label_mismatches,
            "max_abs_diff": comparison.max_abs_diff, "max_rel_diff": comparison.max_rel_diff,
            "tolerance": TOLERANCE, "passed": within_tolerance(comparison, TOLERANCE, regression=regression)}


def export_onnx(store: Store, registry: Registry, ref: ModelRef) -> OnnxExport:
    """Convert a registered model, check it against scikit-learn on its test split, and store it.

    Raises
    ------
    UserError
        If a step cannot be converted (naming it) or parity fails (with the numbers).
    """
    loaded = registry.load(ref)
    info = loaded.info
    try:
        built = build_onnx(loaded.model, loaded.schema)
    except OnnxExportError as exc:
        raise UserError(f"{info.name}/{info.version} cannot be exported to ONNX: {exc}",
                        hint="serve it with --runtime sklearn, or make the step exportable") from None
    data = built.model.SerializeToString()
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 4  # a failure is reported below, not logged by onnxruntime as well
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        parity = parity_check(loaded, session, built, test_rows(store, info))
    except Exception as exc:  # noqa: BLE001 - a graph onnxruntime cannot run is a step that cannot be exported
        where = culprit(loaded.model.steps[-1][1], str(exc))
        raise UserError(f"{info.name}/{info.version} cannot be exported to ONNX: the converted graph{where} does not "
                        f"run in onnxruntime: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                        hint="serve it with --runtime sklearn") from None
    if not parity["passed"]:
        where = culprit(loaded.model.steps[-1][1], "")
        raise UserError(f"{info.name}/{info.version}: the ONNX graph does not match scikit-learn on the test split: "
                        f"{parity['label_mismatches']} label(s) differ, largest difference "
                        f"{parity['max_abs_diff']:.3g}, relative {parity['max_rel_diff']:.3g} (tolerance "
                        f"{TOLERANCE:g}); not stored. Likeliest: the conversion{where}",
                        hint="serve it with --runtime sklearn; a feature step's lockstep_onnx may not do what its "
                        "transform does")
    parity.update(outputs={"label": built.label, "scores": built.scores})
    path = registry.attach_onnx(info, data, parity)
    return OnnxExport(version=registry.version(ref.__class__(info.name, version=info.version)), path=str(path),
                      parity=parity)
