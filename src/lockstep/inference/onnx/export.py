"""``lockstep export onnx``: convert, check parity on the test split, store with the model version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.registry.mlflow_registry import Registry, VersionInfo
    from lockstep.registry.refs import ModelRef
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
    import pyarrow as pa

    name = info.tags["lockstep.features.name"]
    feature = store.features(name).info(int(info.tags["lockstep.features.version"]))
    split = store.features(name).read(feature.version, columns=["split"]).column("split")
    raw = store.snapshots.read(feature.raw_version)
    return raw.filter(pa.array([s == "test" for s in split.to_pylist()]))


def parity_check(loaded: Any, session: Any, built: Any, table: Any) -> dict[str, Any]:
    """Compare onnxruntime with the scikit-learn pipeline on ``table``: label mismatches, largest difference."""
    import numpy as np

    from lockstep.inference.onnx import onnx_inputs

    frame = loaded.schema.frame(table)
    feeds = onnx_inputs(loaded.schema, table)
    if loaded.schema.task == "classification":
        labels, proba = session.run([built.label, built.scores], feeds)
        expected_labels = loaded.model.predict(frame)
        expected = loaded.model.predict_proba(frame)
        mismatches = int((labels.ravel() != expected_labels).sum())
        diff = float(np.abs(proba - expected).max()) if len(expected) else 0.0
    else:
        (values,) = session.run([built.scores], feeds)
        expected = loaded.model.predict(frame)
        mismatches = 0
        diff = float(np.abs(values.ravel() - expected).max()) if len(expected) else 0.0
    return {"rows": table.num_rows, "label_mismatches": mismatches, "max_abs_diff": diff, "tolerance": TOLERANCE,
            "passed": mismatches == 0 and diff <= TOLERANCE}


def export_onnx(store: Store, registry: Registry, ref: ModelRef) -> OnnxExport:
    """Convert a registered model, check it against scikit-learn on its test split, and store it.

    Raises
    ------
    UserError
        If a step cannot be converted (naming it) or parity fails (with the numbers).
    """
    import onnxruntime as ort

    from lockstep.errors import UserError
    from lockstep.inference.onnx import OnnxExportError, build_onnx

    loaded = registry.load(ref)
    info = loaded.info
    try:
        built = build_onnx(loaded.model, loaded.schema)
    except OnnxExportError as exc:
        raise UserError(f"{info.name}/{info.version} cannot be exported to ONNX: {exc}",
                        hint="serve it with --runtime sklearn, or make the step exportable") from None
    data = built.model.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    parity = parity_check(loaded, session, built, test_rows(store, info))
    if not parity["passed"]:
        raise UserError(f"{info.name}/{info.version}: the ONNX graph does not match scikit-learn on the test split: "
                        f"{parity['label_mismatches']} label(s) differ, largest difference "
                        f"{parity['max_abs_diff']:.3g} (tolerance {TOLERANCE:g}); not stored",
                        hint="a step's lockstep_onnx does not do what its transform does")
    parity.update(outputs={"label": built.label, "scores": built.scores})
    path = registry.attach_onnx(info, data, parity)
    return OnnxExport(version=registry.version(ref.__class__(info.name, version=info.version)), path=str(path),
                      parity=parity)
