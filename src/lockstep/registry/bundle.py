"""A model bundle: one registered version, self-contained, servable without the registry.

``lockstep docker`` puts a bundle in the image, and ``lockstep serve --bundle
DIR`` serves it. The folder holds::

    version.json        the version as the registry knows it: name, number, aliases, tags
                        (fingerprints, lineage, file digests), metrics, parameters
    input_schema.json   the raw input schema recorded at training
    reference_profile.json  the training data's binned summaries (drift gauges of /metrics)
    model/              the MLflow model folder: MLmodel, model.skops, code/
    onnx/model.onnx     the ONNX export, when there is one

Loading a bundle makes the same checks as loading from the registry: the
model file's hash, the trusted types, the stored code, the fingerprint of
the loaded model, and the ONNX file's hash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockstep.core.errors import IntegrityError, NotFoundError, UserError
from lockstep.core.fingerprint import fingerprint_bytes
from lockstep.core.schema import ModelSchema
from lockstep.registry.loading import load_checked
from lockstep.registry.versions import TAG, LoadedModel, VersionInfo

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.refs import ModelRef

__all__ = ["Bundle", "bundle_files"]


def bundle_files(registry: Registry, info: VersionInfo) -> dict[str, bytes]:
    """The files of a version's bundle, by path relative to the bundle folder."""
    files: dict[str, bytes] = {}
    model_dir = registry._version_dir(info)
    for path in sorted(model_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[f"model/{path.relative_to(model_dir).as_posix()}"] = path.read_bytes()
    files["input_schema.json"] = registry.artifact_bytes(info, "input_schema.json")
    files["reference_profile.json"] = registry.artifact_bytes(info, "reference_profile.json")
    record = {"name": info.name, "version": info.version, "aliases": info.aliases, "run_id": info.run_id,
              "created": info.created, "tags": info.tags, "metrics": info.metrics, "params": info.params,
              "source": info.source}
    files["version.json"] = json.dumps(record, indent=2, sort_keys=True).encode()
    if info.tags.get(f"{TAG}.onnx.digest"):
        data, _ = registry.onnx(info)
        files["onnx/model.onnx"] = data
    return files


class Bundle:
    """A bundle folder: the version it holds, and the model loaded and checked.

    A bundle is a :class:`~lockstep.registry.source.ModelSource` of one
    version: every reference resolves to it.

    Parameters
    ----------
    path : str or Path
    public_key : Path, optional
        Verify the model's signature with this key on load (and refuse it unsigned).
    """

    def __init__(self, path: str | Path, public_key: Path | None = None) -> None:
        self.path = Path(path)
        self.public_key = public_key
        record = self.path / "version.json"
        if not record.is_file():
            raise NotFoundError(f"{self.path} is not a model bundle (it has no version.json)",
                                hint="`lockstep docker MODEL --out DIR` writes one in DIR/model")
        raw = json.loads(record.read_text())
        self.info = VersionInfo(**raw)

    def version(self, ref: ModelRef | None = None) -> VersionInfo:
        """The bundle's version, whatever ``ref`` says (a bundle holds one)."""
        return self.info

    def load(self, ref: ModelRef | None = None) -> LoadedModel:
        """The model, checked like a model loaded from the registry (its signature too, with a public key)."""
        model = load_checked(self.info, self.path / "model", self.public_key)
        schema = ModelSchema.from_dict(json.loads((self.path / "input_schema.json").read_text()))
        return LoadedModel(model=model, info=self.info, schema=schema)

    def reference_profile(self, info: VersionInfo) -> dict[str, Any]:
        """The reference profile of the bundle's version (for drift gauges and monitoring)."""
        path = self.path / "reference_profile.json"
        if not path.is_file():
            raise NotFoundError(f"the bundle {self.path} has no reference_profile.json")
        profile: dict[str, Any] = json.loads(path.read_text())
        return profile

    def onnx(self, info: VersionInfo) -> tuple[bytes, dict[str, Any]]:
        """The bundle's ONNX export and parity record, checked against the recorded hash (as :meth:`Registry.onnx`)."""
        digest = info.tags.get(f"{TAG}.onnx.digest")
        path = self.path / "onnx" / "model.onnx"
        if not digest or not path.exists():
            raise UserError(f"the bundle of {info.name}/{info.version} has no ONNX export",
                            hint="serve it with --runtime sklearn, or export ONNX before making the bundle")
        data = path.read_bytes()
        if fingerprint_bytes(data) != digest:
            raise IntegrityError(f"{path}: the ONNX file changed since it was exported; refusing to use it")
        return data, json.loads(info.tags.get(f"{TAG}.onnx.parity", "{}"))
