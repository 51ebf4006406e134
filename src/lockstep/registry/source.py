"""What serving and monitoring need from wherever a model comes from: the registry, or a bundle folder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.registry.refs import ModelRef
    from lockstep.registry.versions import LoadedModel, VersionInfo

__all__ = ["ModelSource"]


class ModelSource(Protocol):
    """A source of registered model versions.

    :class:`~lockstep.registry.mlflow_registry.Registry` and
    :class:`~lockstep.registry.bundle.Bundle` both satisfy it; the service
    is written against this protocol, so it serves from either without
    knowing which.
    """

    def version(self, ref: ModelRef) -> VersionInfo:
        """The version ``ref`` names, with its tags, metrics and aliases."""

    def load(self, ref: ModelRef) -> LoadedModel:
        """The model of ``ref``, checked against its recorded fingerprints (and signature)."""

    def reference_profile(self, info: VersionInfo) -> dict[str, Any]:
        """The binned summaries of the version's training data."""

    def onnx(self, info: VersionInfo) -> tuple[bytes, dict[str, Any]]:
        """The version's ONNX export and its parity record, checked against the recorded hash."""
