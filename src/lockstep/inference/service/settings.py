"""The service's settings: everything it needs, independent of the project folder."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["ServeSettings"]

#: The environment variable that carries the settings to each worker process (``uvicorn --factory``).
ENV = "LOCKSTEP_SERVE_SETTINGS"


@dataclass
class ServeSettings:
    """Everything the service needs, independent of the project folder."""

    store_root: str
    experiment: str
    model: str
    default_name: str
    runtime: str = "sklearn"
    max_batch: int = 1000
    max_body_bytes: int = 1_000_000
    allow_unknown_fields: bool = False
    token: str | None = None
    poll_seconds: float = 0.0
    audit: bool = True
    bundle: str | None = None  # serve this bundle folder instead of a version from the registry
    drift_window: int = 1000  # recent records behind the PSI gauges of /metrics (0: none)
    public_key: str | None = None  # verify the model's signature with this key (refuse it unsigned)
    storage_options: dict[str, str] | None = None  # how to reach a store in S3
    tracking_uri: str | None = None  # a shared registry ([registry] tracking_uri)
    artifacts: str | None = None  # its files ([registry] artifacts)

    @property
    def key_path(self) -> Path | None:
        return Path(self.public_key) if self.public_key else None

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        return cls(**json.loads(os.environ[ENV]))
