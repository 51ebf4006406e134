"""Loading the model to serve: from the registry or a bundle, with its runtime, request model and drift window."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lockstep.core.errors import FileSystemError, LockstepError, UserError
from lockstep.inference.requests import RequestModel, build_request_model
from lockstep.inference.runtime import OnnxRuntime, SklearnRuntime
from lockstep.inference.service.settings import ServeSettings
from lockstep.profiles.live import LiveDrift
from lockstep.profiles.profile import PROFILE_VERSION
from lockstep.registry.bundle import Bundle
from lockstep.registry.mlflow_registry import Registry
from lockstep.registry.refs import ModelRef, parse_model_ref
from lockstep.registry.source import ModelSource
from lockstep.registry.versions import LoadedModel, VersionInfo
from lockstep.store import Store
from lockstep.store.audit import AuditLog

__all__ = ["ServingModel", "audit_log", "check_audit_writable", "load_serving_model", "model_source"]


@dataclass
class ServingModel:
    """A loaded model version with its runtime and request model."""

    runtime: SklearnRuntime | OnnxRuntime
    info: VersionInfo
    schema: Any
    requests: RequestModel
    loaded_at: str
    live: LiveDrift | None = None  # the recent requests' drift, when the version has a reference profile
    identity: dict = field(init=False)  # name, version and fingerprint: part of every answer
    version_label: str = field(init=False)  # the version as the metrics label it

    def __post_init__(self) -> None:
        self.identity = {"name": self.info.name, "version": self.info.version, "fingerprint": self.info.fingerprint}
        self.version_label = str(self.info.version)


def model_source(settings: ServeSettings) -> ModelSource:
    """Where the service's models come from: the bundle folder, or the store's registry."""
    if settings.bundle:
        return Bundle(settings.bundle, settings.key_path)
    store = Store(settings.store_root, settings.storage_options)
    return Registry(None if store.remote else Path(settings.store_root), settings.experiment, settings.key_path,
                    tracking_uri=settings.tracking_uri, artifacts=settings.artifacts,
                    storage_options=settings.storage_options)


def audit_log(settings: ServeSettings) -> AuditLog:
    """The audit log of the service's store."""
    return Store(settings.store_root, settings.storage_options).audit


def configured_ref(settings: ServeSettings, ref_text: str | None = None) -> ModelRef:
    """The version to serve: ``ref_text``, or the configured reference (for example ``NAME@champion``)."""
    return parse_model_ref(ref_text or settings.model, settings.default_name)


def load_serving_model(settings: ServeSettings, ref_text: str | None = None) -> ServingModel:
    """Load and check a registered version and build its runtime and request model."""
    if settings.bundle and ref_text:
        raise UserError("this service serves a fixed bundle; it cannot switch to another model version")
    source = model_source(settings)
    loaded = source.load(configured_ref(settings, ref_text))
    runtime = OnnxRuntime(loaded, source) if settings.runtime == "onnx" else SklearnRuntime(loaded)
    requests = build_request_model(loaded.schema, max_batch=settings.max_batch,
                                   allow_unknown=settings.allow_unknown_fields)
    return ServingModel(runtime=runtime, info=loaded.info, schema=loaded.schema, requests=requests,
                        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
                        live=_live_drift(source, loaded, settings.drift_window))


def check_audit_writable(settings: ServeSettings) -> None:
    """Refuse to serve with an audit log that can never be written (a read-only store, no permission).

    A full disk is not refused: it may pass, and until then the service
    answers 503 and ``/ready`` says why.

    Raises
    ------
    FileSystemError
    """
    if not settings.audit:
        return
    try:
        audit_log(settings).writer().probe(size=1)
    except FileSystemError as exc:
        cause = exc.__cause__
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            return
        raise FileSystemError(exc.message, hint=(exc.hint or "") + "; or serve without an audit log "
                              "([serve] audit = false) if nothing must be recorded") from None


def _live_drift(source: ModelSource, loaded: LoadedModel, window: int) -> LiveDrift | None:
    """The sliding drift window of a model, if it has a reference profile of the current format."""
    if window <= 0:
        return None
    try:
        profile = source.reference_profile(loaded.info)
    except LockstepError:
        return None
    if profile.get("version") != PROFILE_VERSION:
        return None
    return LiveDrift(profile, list(loaded.schema.inputs), window)
