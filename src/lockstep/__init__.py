"""lockstep: machine-learning systems on tabular data whose results can be reproduced exactly.

The public API. Heavy modules are imported on first use, so that
``import lockstep`` (and ``lockstep --help``) stays fast.

Examples
--------
>>> import lockstep
>>> lockstep.__version__  # doctest: +ELLIPSIS
'...'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lockstep._version import __version__
from lockstep.core.errors import (
    CodeError,
    ConfigError,
    LeakageError,
    LockstepError,
    NotFoundError,
    PipelineError,
    ProjectError,
    SchemaValidationError,
    SourceError,
    StoreError,
    UserError,
)

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config, load_config
    from lockstep.core.fingerprint import fingerprint_table
    from lockstep.project import Project
    from lockstep.scaffold import init_project

__all__ = [
    "CodeError",
    "Config",
    "ConfigError",
    "LeakageError",
    "LockstepError",
    "NotFoundError",
    "PipelineError",
    "Project",
    "ProjectError",
    "SchemaValidationError",
    "SourceError",
    "StoreError",
    "UserError",
    "__version__",
    "fingerprint_table",
    "init_project",
    "load_config",
]

_LAZY = {
    "Config": "lockstep.core.config",
    "load_config": "lockstep.core.config",
    "Project": "lockstep.project",
    "init_project": "lockstep.scaffold",
    "fingerprint_table": "lockstep.core.fingerprint",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lockstep' has no attribute {name!r}")
