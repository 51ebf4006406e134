"""What the registry records and hands out: versions, training records and loaded models, as plain data."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockstep.registry.stored_code import module_name

__all__ = ["TAG", "LoadedModel", "TrainingRecord", "VersionInfo"]

TAG = "lockstep"  # prefix of every tag lockstep writes


@dataclass
class TrainingRecord:
    """Everything a training run logs; built by the training layer, written by :meth:`Registry.log_training`."""

    run_name: str
    model_name: str
    model: Any
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    version_tags: dict[str, str]
    code_paths: list[Path]
    pip_requirements: list[str]
    trusted_types: list[str]
    input_example: Any
    signature: dict[str, Any]
    json_artifacts: dict[str, Any] = field(default_factory=dict)
    table_artifacts: dict[str, Any] = field(default_factory=dict)
    #: ``{"plots/NAME.png": PNG bytes}`` when called; logged after the model, so that it may still be drawing
    images: Callable[[], dict[str, bytes]] | None = None


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version, with what lockstep recorded about it."""

    name: str
    version: int
    aliases: list[str]
    run_id: str
    created: str
    tags: dict[str, str]
    metrics: dict[str, float]
    params: dict[str, str]
    source: str

    @property
    def fingerprint(self) -> str:
        return self.tags.get(f"{TAG}.model.fingerprint", "")

    def metric_summary(self, split: str = "test") -> dict[str, dict[str, float]]:
        """Metric name to mean, std and 95% interval on ``split`` (metrics are logged as
        ``<split>_<metric>_<statistic>``)."""
        out: dict[str, dict[str, float]] = {}
        prefix = f"{split}_"
        for key, value in self.metrics.items():
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix):]
            for stat in ("ci_low", "ci_high", "mean", "std"):
                if rest.endswith("_" + stat):
                    out.setdefault(rest[: -len(stat) - 1], {})[stat] = value
                    break
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "run_id": self.run_id,
            "created": self.created,
            "fingerprint": self.fingerprint,
            "metrics": {split: self.metric_summary(split) for split in ("valid", "test")},
            "lineage": {k[len(TAG) + 1:]: v for k, v in sorted(self.tags.items()) if k.startswith(TAG + ".")},
            "params": dict(self.params),
        }


@dataclass
class LoadedModel:
    """A model loaded from the registry and checked against its recorded fingerprint."""

    model: Any
    info: VersionInfo
    schema: Any = None  # the ModelSchema recorded at training

    @property
    def code_modules(self) -> list[str]:
        """The names of the modules of the code stored with the model (``pkg/sub.py`` is ``pkg.sub``)."""
        files = json.loads(self.info.tags.get(f"{TAG}.code.files", "{}") or "{}")
        return sorted(module_name(relative)[0] for relative in files)
