"""What a verification and a parity check depend on, fingerprinted: ``lockstep run`` skips a check whose key passed
before. Computing a key reads fingerprints only, never the libraries the checks themselves use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lockstep._version import __version__
from lockstep.core.environment import core_fingerprint
from lockstep.core.errors import LockstepError
from lockstep.core.fingerprint import fingerprint_json
from lockstep.core.usercode import code_identity

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.reproducibility.lineage import Lineage

__all__ = ["parity_key", "verification_key"]


def parity_key(info: Any, rows: int | None, http: bool, batch: bool) -> str:
    """What a parity check depends on: the model (and its ONNX export), the numerical environment, the
    options and lockstep's version. ``lockstep run`` skips a check whose key was checked before."""
    return fingerprint_json({"model": info.fingerprint, "onnx": info.tags.get("lockstep.onnx.digest"),
                             "environment": core_fingerprint(), "rows": rows, "http": http, "batch": batch,
                             "lockstep": __version__})


def verification_key(config: Config, lineage: Lineage, options: dict[str, Any], artifact: str | None) -> str:
    """What a verification depends on: the model and its stored file (``artifact``, the file's current hash),
    its snapshot, the current code and numerical environment, the options and lockstep's version.
    ``lockstep run`` skips a verification whose key was verified before."""
    refs = [lineage.model_ref] + ([lineage.config.features.pipeline] if lineage.config.features.pipeline else [])
    code: dict[str, Any] = {}
    for ref in refs:
        try:
            code[ref] = code_identity(ref, config.project_dir).fingerprint
        except LockstepError as exc:
            code[ref] = exc.message
    return fingerprint_json({"model": lineage.info.fingerprint, "artifact": artifact,
                             "raw": lineage.raw_fingerprint, "code": code,
                             "environment": core_fingerprint(), "options": options, "lockstep": __version__})
