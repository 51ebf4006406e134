"""The environment a result was computed in: Python, platform, CPU, packages, BLAS/OpenMP.

:func:`capture` records everything (stored with every artifact, compared by
``lockstep verify`` later). Cache keys use :func:`core`, the part that can
change numerical results: the interpreter, the machine architecture and the
numerical packages. Upgrading ``rich`` does not invalidate cached features;
upgrading NumPy does.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy  # noqa: F401
import scipy.linalg  # noqa: F401
import sklearn.utils._openmp_helpers  # noqa: F401
from threadpoolctl import threadpool_info

from lockstep.core.fingerprint import fingerprint_json

__all__ = ["CORE_PACKAGES", "capture", "core", "core_fingerprint", "git_state"]

#: Packages whose version can change the numbers lockstep computes.
CORE_PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn", "scipy", "deltalake", "lockstep")

_THREAD_VARIABLES = ("PYTHONHASHSEED", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _packages() -> dict[str, str]:
    out = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out[name.lower().replace("_", "-")] = dist.version
    return dict(sorted(out.items()))


def _threadpools() -> list[dict[str, Any]]:
    """The BLAS and OpenMP libraries of NumPy, SciPy and scikit-learn, loaded first so that the list is
    the same whatever the process imported before."""
    keys = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer", "architecture")
    return [{k: info.get(k) for k in keys if k in info} for info in threadpool_info()]


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
    """The part of the environment that can change numerical results."""
    env = env if env is not None else capture()
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
