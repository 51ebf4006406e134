"""``skops.io``, imported without walking the whole of scikit-learn in every process.

At import, skops builds its default lists of trusted types:

* scikit-learn's estimators, with ``sklearn.utils.all_estimators()``, which
  imports every module of scikit-learn (about 0.85 s);
* NumPy's and SciPy's public ufuncs, with ``get_public_type_names``, which
  looks each of about 800 ufuncs up in every loaded module (0.2 s in a small
  process, more in one that has MLflow loaded).

Every process that loads or saves a model (``predict``, ``serve``, ``verify``,
``parity``, ``monitor``, ``train``) paid for both, for lists that only change
when those libraries do.

:func:`skops_io` keeps the lists in a cache file, keyed by the versions and
folders of scikit-learn, skops, NumPy and SciPy and by Python's version, and
hands them to skops's import in place of the walks; the lists skops ends up
with are the ones it would have built (a test compares them). Without a cache
file, or with one that is unreadable or holds a name skops could not have
found (an estimator outside ``sklearn.``, a ufunc outside the package skops
asked about), skops is imported as usual and the file is written for the next
process. Nothing else of skops changes: the types a model may contain are
still checked against the list recorded at its registration.

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
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

from lockstep.core.errors import LockstepError
from lockstep.store import atomic_write_text

__all__ = ["cache_file", "skops_io"]

_NAME = re.compile(r"^sklearn(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
#: The libraries whose versions and folders key the cache.
_KEYED = ("sklearn", "skops", "numpy", "scipy")


def skops_io() -> ModuleType:
    """The module ``skops.io``, imported (once per process) with its trusted-type lists from the cache."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    path = cache_file()
    cached = _read(path) if path is not None else None
    utils: Any = importlib.import_module("sklearn.utils")
    walk: Callable[..., Any] = utils.all_estimators
    if cached is not None:
        utils.all_estimators = lambda *args, **kwargs: [(n.rpartition(".")[2], _named(n)) for n in cached["sklearn"]]
    finder = _PublicNames(cached["public"] if cached is not None else {})
    sys.meta_path.insert(0, finder)
    try:
        module = importlib.import_module("skops.io")
    finally:
        utils.all_estimators = walk
        finder.remove()
    if path is not None and (cached is None or finder.computed):  # what skops had to build: kept for next time
        estimators = (cached["sklearn"] if cached is not None
                      else list(importlib.import_module("skops.io._trusted_types").SKLEARN_ESTIMATOR_TYPE_NAMES))
        public = {**(cached["public"] if cached is not None else {}), **finder.computed}
        _write(path, {"sklearn": estimators, "public": public})
    return module


class _PublicNames:
    """A finder that finds nothing: when skops imports ``skops.io._trusted_types``, it hands that module's
    ``get_public_type_names`` the cached answers (and records those it has to compute).

    A cached answer is used only for the module and type skops asks about, and only if every name in it belongs
    to that module's package, as the ones skops computes do.
    """

    def __init__(self, cached: dict[str, list[str]]) -> None:
        self.cached = cached
        self.computed: dict[str, list[str]] = {}
        self._restore: Callable[[], None] | None = None

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        utils: Any = sys.modules.get("skops.io._utils")
        if name == "skops.io._trusted_types" and utils is not None:
            compute = utils.get_public_type_names

            def public_type_names(module: ModuleType, oftype: type) -> list[str]:
                key = f"{module.__name__}:{oftype.__module__}.{oftype.__qualname__}"
                package = module.__name__.split(".")[0]
                names = self.cached.get(key)
                if names is not None and all(n.split(".")[0] == package for n in names):
                    return list(names)
                found = list(compute(module=module, oftype=oftype))
                self.computed[key] = found
                return found

            utils.get_public_type_names = public_type_names  # what _trusted_types imports when it runs
            self._restore = lambda: setattr(utils, "get_public_type_names", compute)
        return None

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        if self._restore is not None:
            self._restore()


def cache_file() -> Path | None:
    """The cache file for the installed scikit-learn, skops, NumPy and SciPy (None when they cannot be located)."""
    try:
        modules = [importlib.import_module(name) for name in _KEYED]
    except ImportError:
        return None
    key = json.dumps([[m.__name__, getattr(m, "__version__", ""), str(Path(m.__file__ or "").parent)]
                      for m in modules] + [sys.version])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return _cache_dir() / f"skops-trusted-names-{digest}.json"


def _cache_dir() -> Path:
    if os.environ.get("LOCKSTEP_CACHE_DIR"):
        return Path(os.environ["LOCKSTEP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lockstep"


def _read(path: Path) -> dict[str, Any] | None:
    """The cached lists, or None for a file that is missing, unreadable or not what :func:`_write` writes."""
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(cached, dict) or set(cached) != {"sklearn", "public"}:
        return None
    estimators, public = cached["sklearn"], cached["public"]
    if not isinstance(estimators, list) or not estimators or not all(
            isinstance(n, str) and _NAME.match(n) for n in estimators):
        return None
    if not isinstance(public, dict) or not all(
            isinstance(names, list) and all(isinstance(n, str) and _DOTTED.match(n) for n in names)
            for names in public.values()):
        return None
    return cached


def _write(path: Path, cached: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(cached))
    except (OSError, LockstepError):
        pass  # a cache folder that cannot be written: the next process walks again


def _named(name: str) -> type:
    """A stand-in class whose module and name are ``name``'s: all skops reads of an estimator class."""
    module, _, qualname = name.rpartition(".")
    return type(qualname, (), {"__module__": module})
