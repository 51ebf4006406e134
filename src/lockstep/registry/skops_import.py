"""``skops.io``, imported without walking the whole of scikit-learn in every process.

At import, skops builds its default list of trusted scikit-learn estimators
with ``sklearn.utils.all_estimators()``, which imports every module of
scikit-learn: about 0.85 s of each process that loads or saves a model
(``predict``, ``serve``, ``verify``, ``parity``, ``monitor``, ``train``),
for a list of about 200 names that only changes when scikit-learn does.

:func:`skops_io` keeps that list in a cache file, keyed by the versions and
folders of scikit-learn and skops and by Python's version, and hands it to
skops's import in place of the walk; the list skops ends up with is the one
it would have built (a test compares both). Without a cache file, or with one
that is unreadable or not a list of ``sklearn.`` names, skops is imported as
usual and the file is written for the next process. Nothing else of skops
changes: the types a model may contain are still checked against the list
recorded at registration.

The cache lives in ``$LOCKSTEP_CACHE_DIR``, else ``$XDG_CACHE_HOME/lockstep``,
else ``~/.cache/lockstep``; a folder that cannot be written only means no
cache.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from lockstep.core.errors import LockstepError
from lockstep.store import atomic_write_text

__all__ = ["cache_file", "skops_io"]

_NAME = re.compile(r"^sklearn(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def skops_io() -> ModuleType:
    """The module ``skops.io``, imported (once per process) with scikit-learn's estimator names from the cache."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    path = cache_file()
    names = _read(path) if path is not None else None
    if names is None:
        module = importlib.import_module("skops.io")
        if path is not None:
            _write(path, list(importlib.import_module("skops.io._trusted_types").SKLEARN_ESTIMATOR_TYPE_NAMES))
        return module
    utils: Any = importlib.import_module("sklearn.utils")
    walk: Callable[..., Any] = utils.all_estimators
    utils.all_estimators = lambda *args, **kwargs: [(n.rpartition(".")[2], _named(n)) for n in names]
    try:
        return importlib.import_module("skops.io")
    finally:
        utils.all_estimators = walk


def cache_file() -> Path | None:
    """The cache file for the installed scikit-learn and skops (None when they cannot be located)."""
    try:
        sklearn, skops = importlib.import_module("sklearn"), importlib.import_module("skops")
    except ImportError:
        return None
    key = json.dumps([sklearn.__version__, str(Path(sklearn.__file__ or "").parent), skops.__version__,
                      str(Path(skops.__file__ or "").parent), sys.version])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return _cache_dir() / f"skops-sklearn-estimators-{digest}.json"


def _cache_dir() -> Path:
    if os.environ.get("LOCKSTEP_CACHE_DIR"):
        return Path(os.environ["LOCKSTEP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lockstep"


def _read(path: Path) -> list[str] | None:
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and _NAME.match(n) for n in names):
        return None
    return names


def _write(path: Path, names: list[str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(names))
    except (OSError, LockstepError):
        pass  # a cache folder that cannot be written: the next process walks scikit-learn again


def _named(name: str) -> type:
    """A stand-in class whose module and name are ``name``'s: all skops reads of an estimator class."""
    module, _, qualname = name.rpartition(".")
    return type(qualname, (), {"__module__": module})
