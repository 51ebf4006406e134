"""What a registered version was made from, read back from the registry.

Everything ``verify``, ``parity``, ``check``, ``docs`` and ``docker`` need:
the recorded configuration (not the project's current ``lockstep.toml``),
the model and feature code references, the best parameters, the seeds and
threads, the raw snapshot and feature set versions with their fingerprints,
the fingerprints of the code files and the copy of the code stored with the
model, and the environment of the training run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockstep.core.config import parse_config, parse_recorded_config
from lockstep.core.errors import ProjectError
from lockstep.core.sections import SearchConfig
from lockstep.registry.stored_code import StoredCode

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.versions import VersionInfo

__all__ = ["Lineage", "load_lineage"]


@dataclass
class Lineage:
    """The recorded lineage of a registered version."""

    info: VersionInfo
    config: Config  # the recorded configuration, resolved against the current project folder
    model_ref: str
    candidate: str | None
    search: SearchConfig | None
    best_params: dict[str, Any]
    seeds: list[int]
    threads: int
    raw_version: int
    raw_fingerprint: str
    features_version: int
    features_fingerprint: str
    feature_columns: list[str]
    code_files: dict[str, str]
    code: StoredCode
    environment: dict[str, Any]
    training: dict[str, Any]

    @property
    def seed(self) -> int:
        """The primary seed: the registered model is this seed's."""
        return self.seeds[0]

    def config_for(self, project_dir: Path) -> Config:
        """The recorded configuration, with code looked up in ``project_dir``."""
        raw = self.config.normalized()
        raw["data"]["schema"] = {name: raw["data"]["schema"][name] for name in self.config.data.columns}
        config = parse_config(raw, source=f"{self.info.name}/{self.info.version} config.json")
        config._project_dir = Path(project_dir).resolve()
        return config

    @property
    def trusted_types(self) -> list[str]:
        return json.loads(self.info.tags.get("lockstep.model.trusted_types", "[]") or "[]")


def load_lineage(registry: Registry, info: VersionInfo, project_dir: Path) -> Lineage:
    """Read the lineage of ``info`` from its training run.

    Raises
    ------
    NotFoundError
        If the version was registered without a recorded configuration.
    """
    recorded = registry.run_json(info, "config.json")
    training = registry.run_json(info, "training.json")
    environment = registry.run_json(info, "environment.json")
    lineage = registry.run_json(info, "lineage.json")
    raw = recorded["config"]
    order = recorded.get("schema_order")  # JSON artifacts have sorted keys; the schema's order matters
    if order:
        schema = raw["data"]["schema"]
        raw["data"]["schema"] = {name: schema[name] for name in order}
    config = parse_recorded_config(raw, source=f"{info.name}/{info.version} config.json")
    config._project_dir = Path(project_dir).resolve()
    feature = lineage["features"]
    tags = info.tags
    code_files = dict(lineage.get("code_files") or json.loads(tags.get("lockstep.code.files", "{}")))
    if config.train is None:
        raise ProjectError(f"{info.name}/{info.version}: its recorded configuration has no [train] section")
    return Lineage(
        info=info,
        config=config,
        model_ref=recorded["model"],
        candidate=recorded.get("candidate"),
        search=SearchConfig.model_validate(recorded["search"]) if recorded.get("search") else None,
        best_params=dict(training.get("best_params") or {}),
        seeds=list(config.training.seeds),
        threads=int(config.training.threads),
        raw_version=int(tags["lockstep.raw.version"]),
        raw_fingerprint=tags["lockstep.raw.fingerprint"],
        features_version=int(tags["lockstep.features.version"]),
        features_fingerprint=tags["lockstep.features.fingerprint"],
        feature_columns=list(feature["columns"]),
        code_files=code_files,
        code=registry.stored_code(info, code_files),
        environment=environment,
        training=training,
    )
