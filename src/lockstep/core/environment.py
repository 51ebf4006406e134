"""The environment a result was computed in: Python, platform, CPU, packages, BLAS/OpenMP.

:func:`capture` records everything (stored with every artifact, compared by
``lockstep verify`` later). Cache keys use :func:`core`, the part that can
change numerical results: the interpreter, the machine architecture and the
numerical packages. Upgrading ``rich`` does not invalidate cached features;
upgrading NumPy does.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_info

from lockstep.core.fingerprint import fingerprint_json
from lockstep.core.lazy import lazy_module, loaded

__all__ = ["CORE_PACKAGES", "capture", "core", "core_fingerprint", "git_state", "put_back", "threadpool_summary"]

#: Packages whose version can change the numbers lockstep computes.
CORE_PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn", "scipy", "deltalake", "lockstep")

#: The libraries whose BLAS and OpenMP pools are listed, loaded first: not at import, because deciding that a
#: step is up to date reads only :func:`core`, which needs none of them.
_NUMERICAL = tuple(lazy_module(name) for name in ("numpy", "scipy.linalg", "sklearn.utils._openmp_helpers"))

_THREAD_VARIABLES = ("PYTHONHASHSEED", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def put_back(saved: Mapping[str, str | None]) -> None:
    """Set this process's environment variables back to ``saved`` (name -> value; None: the variable was unset)."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


#: The last :func:`_packages` answer, with the state of the import path it was read from.
_PACKAGES: dict[tuple[tuple[str, int], ...], dict[str, str]] = {}


def _path_state() -> tuple[tuple[str, int], ...]:
    """What the installed distributions depend on: the import path, and when each of its folders last changed
    (installing, upgrading or removing a distribution adds or removes a ``.dist-info`` folder there)."""
    state = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, -1))
    return tuple(state)


def _packages() -> dict[str, str]:
    """Every installed distribution and its version; the first found on the path wins, as it does on import.

    Reading every distribution's metadata takes 0.2 s, so the answer is kept for as long as the import path
    and its folders are unchanged (a process that trains many models reads it once).
    """
    key = _path_state()
    if key not in _PACKAGES:
        out: dict[str, str] = {}
        for dist in metadata.distributions():
            name, version = _name_and_version(dist)
            if name and version is not None:
                out.setdefault(name.lower().replace("_", "-"), version)
        _PACKAGES.clear()
        _PACKAGES[key] = dict(sorted(out.items()))
    return dict(_PACKAGES[key])


def _name_and_version(dist: metadata.Distribution) -> tuple[str | None, str | None]:
    """A distribution's ``Name`` and ``Version``, read from its metadata's header lines only.

    ``dist.metadata`` parses the whole file as an e-mail message, long description included: 0.2 s for a few
    hundred distributions, most of a skip decision's time. The two fields are single header lines, before the
    first blank line, in ``METADATA`` (``PKG-INFO`` for an egg), the files ``dist.metadata`` reads.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line.startswith("Name:"):
            name = line[5:].strip()
        elif line.startswith("Version:"):
            version = line[8:].strip()
    return name, version


def _version(name: str) -> str | None:
    """The installed version of ``name``, read from its metadata alone (None when it is not installed)."""
    try:
        return _name_and_version(metadata.distribution(name))[1]  # the header line, not the parsed message
    except metadata.PackageNotFoundError:
        return None


def _threadpools() -> list[dict[str, Any]]:
    """The BLAS and OpenMP libraries of NumPy, SciPy and scikit-learn, loaded first, in a fixed order: the list is
    the same whatever the process imported before, and in whatever order the libraries were loaded."""
    for module in _NUMERICAL:
        loaded(module)
    return threadpool_summary(("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer",
                               "architecture"))


def threadpool_summary(keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The thread pools (BLAS, OpenMP) loaded in this process, ``keys`` of each, in an order of their own (not
    the order the libraries happened to be loaded in)."""
    pools = [{k: info.get(k) for k in keys if k in info} for info in threadpool_info()]
    # by what the library is, then by its size: a process that limited its threads lists them in the same order
    return sorted(pools, key=lambda pool: (json.dumps({k: v for k, v in pool.items() if k != "num_threads"},
                                                      sort_keys=True, default=str), str(pool.get("num_threads"))))


def capture() -> dict[str, Any]:
    """Everything about this environment that lockstep records.

    Returns
    -------
    dict
        ``python``, ``platform``, ``cpu``, ``packages`` (every installed
        distribution and its version), ``threadpools`` (BLAS/OpenMP libraries
        loaded, with their thread counts) and ``variables`` (thread and hash
        seed settings).
    """
    return {
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "platform": {"system": platform.system(), "release": platform.release(), "machine": platform.machine()},
        "cpu": {"processor": platform.processor(), "count": os.cpu_count(), "byteorder": sys.byteorder},
        "packages": _packages(),
        "threadpools": _threadpools(),
        "variables": {name: os.environ.get(name) for name in _THREAD_VARIABLES},
    }


def core(env: dict[str, Any] | None = None) -> dict[str, Any]:
    """The part of the environment that can change numerical results: of ``env`` (a :func:`capture` record), or
    of this process, read from the interpreter and the core packages' metadata only (no library is imported)."""
    if env is None:
        return {
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "machine": platform.machine(), "system": platform.system(),
            "packages": {name: _version(name) for name in CORE_PACKAGES},
        }
    packages = env.get("packages", {})
    return {
        "python": env["python"]["version"],
        "implementation": env["python"]["implementation"],
        "machine": env["platform"]["machine"],
        "system": env["platform"]["system"],
        "packages": {name: packages.get(name) for name in CORE_PACKAGES},
    }


def core_fingerprint(env: dict[str, Any] | None = None) -> str:
    """Fingerprint of :func:`core`."""
    return fingerprint_json(core(env))


def git_state(folder: str | Path) -> dict[str, Any]:
    """The commit and dirty flag of the git repository holding ``folder`` (empty outside a repository)."""
    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return {"commit": commit, "dirty": bool(status)}
