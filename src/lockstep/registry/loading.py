"""Loading a registered model folder, checked before and after: signature, file hash, trusted types, stored
code, and the loaded model's fingerprint. The registry and a bundle both load through :func:`load_checked`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lockstep.core.errors import IntegrityError, StoreError, UserError
from lockstep.core.fingerprint import fingerprint_file
from lockstep.core.lazy import lazy_module
from lockstep.registry.signing import claims_of, verify_model
from lockstep.registry.skops_import import skops_io
from lockstep.registry.stored_code import StoredCode
from lockstep.registry.versions import TAG, VersionInfo

if TYPE_CHECKING:  # SciPy, which a fitted model's fingerprint reads: only a command that loads a model pays for it
    import lockstep.core.model_fingerprint as fitted
else:
    fitted = lazy_module("lockstep.core.model_fingerprint")

__all__ = ["SKOPS_FILE", "file_digest", "load_checked", "stored_code"]

#: The model file in a version's folder.
SKOPS_FILE = "model.skops"


def load_checked(info: VersionInfo, path: Path, public_key: Path | None = None) -> Any:
    """Load the model in ``path`` (an MLflow model folder) after checking it against what ``info`` recorded:
    its signature (with ``public_key``), the model file's hash, the trusted types, the stored code, and then
    the loaded model's fingerprint."""
    if public_key is not None:
        verify_model(path, claims_of(info.name, info.version, info.tags), public_key,
                     label=f"{info.name}/{info.version}")

    recorded_digest = info.tags.get(f"{TAG}.model.file_digest")
    if not (path / SKOPS_FILE).exists():
        raise StoreError(f"{info.name}/{info.version}: the model file {path / SKOPS_FILE} is missing")
    if recorded_digest and file_digest(path / SKOPS_FILE) != recorded_digest:
        raise IntegrityError(f"{info.name}/{info.version}: the model file {path / SKOPS_FILE} changed since it was "
                        "registered (its hash differs); refusing to load it",
                        hint="the store was modified; retrain or restore the file")
    recorded_types = set(json.loads(info.tags.get(f"{TAG}.model.trusted_types", "[]")))
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    declared = set(mlmodel.get("flavors", {}).get("sklearn", {}).get("skops_trusted_types") or [])
    extra = sorted(declared - recorded_types)
    if extra:
        raise IntegrityError(f"{info.name}/{info.version}: the saved model declares types that were not trusted at "
                        f"registration: {', '.join(extra)}; refusing to load it",
                        hint="the MLmodel file was edited; retrain or restore it")
    code = stored_code(info, path)
    try:
        model = _load_skops(path / SKOPS_FILE, sorted(recorded_types), code)
    except UserError:
        raise
    except Exception as exc:
        if type(exc).__name__ == "UntrustedTypesFoundException":
            raise IntegrityError(f"{info.name}/{info.version}: {exc}; refusing to load untrusted types",
                            hint="only types recorded as trusted at registration are loaded") from None
        raise StoreError(f"{info.name}/{info.version}: the model could not be loaded: {exc}") from exc
    if info.fingerprint and fitted.model_fingerprint(model) != info.fingerprint:
        raise IntegrityError(f"{info.name}/{info.version}: the loaded model's fingerprint differs from the one "
                        "recorded at registration; refusing to use it",
                        hint="the model file or its code changed; retrain or restore it")
    return model


def stored_code(info: VersionInfo, model_dir: Path) -> StoredCode:
    """The code stored with a version (its model folder's ``code/``) and the files recorded for it."""
    recorded = json.loads(info.tags.get(f"{TAG}.code.files", "{}") or "{}")
    return StoredCode(model_dir / "code", recorded, f"{info.name}/{info.version}")


def _load_skops(model_file: Path, trusted: list[str], code: StoredCode) -> Any:
    """Load a skops file, its classes imported from the recorded code only (see :mod:`.stored_code`)."""
    with code.importable():
        return skops_io().load(model_file, trusted=trusted)


def file_digest(path: Path) -> str:
    """The fingerprint of a stored model file's bytes."""
    return fingerprint_file(path)
