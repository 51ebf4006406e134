#!/usr/bin/env python3
"""Developer entry point: ``python3 dev.py test`` and ``python3 dev.py demo``.

Both commands create (or reuse) the virtual environment ``.venv`` from the
committed lock file ``requirements.lock``, installing exact versions with
their hashes, then install lockstep itself in editable mode. The environment
is rebuilt when the lock file or ``pyproject.toml`` changes.

Commands
--------
test [PYTEST ARGS...]   the checks, then the test suite (the command CI runs), one worker per core
check                   only the checks: ruff (lint), mypy (types) and import-linter (the layers)
demo                    run the example systems end to end
lock                    re-resolve ``requirements.lock`` from ``pyproject.toml``
env                     only create or update the environment

Only the Python standard library is used here, so a machine with Python 3.11
and pip is enough.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".lockstep-installed"


def _venv_python() -> Path:
    sub = "Scripts/python.exe" if os.name == "nt" else "bin/python"
    return VENV / sub


def _bin(name: str) -> Path:
    return _venv_python().parent / name


def _run(cmd: list[str | os.PathLike[str]], **kwargs) -> None:
    printable = " ".join(str(c) for c in cmd)
    print(f"$ {printable}", flush=True)
    result = subprocess.run([str(c) for c in cmd], **kwargs)
    if result.returncode != 0:
        sys.exit(result.returncode)


def _lock_digest() -> str:
    """What the environment is built from: the lock file and pyproject.toml's build and project tables (a change
    to the tools' settings, ``[tool.*]``, needs no new environment)."""
    h = hashlib.sha256(LOCK.read_bytes())
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    h.update(json.dumps({k: meta.get(k) for k in ("build-system", "project")}, sort_keys=True).encode())
    return h.hexdigest()


def ensure_env() -> Path:
    """Create or update ``.venv`` from the lock file; return its interpreter."""
    if sys.version_info < (3, 11):
        sys.exit(f"lockstep needs Python >= 3.11; this is {sys.version.split()[0]}")
    digest = _lock_digest()
    if STAMP.exists() and STAMP.read_text().strip() == digest and _venv_python().exists():
        _compile(_venv_python())
        return _venv_python()
    if VENV.exists():
        print("Lock file changed: rebuilding .venv", flush=True)
        shutil.rmtree(VENV)
    _run([sys.executable, "-m", "venv", VENV])
    py = _venv_python()
    pip = [py, "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    # Every dependency, build backend included, comes from the lock file with
    # its hash: nothing is resolved at install time.
    _run([*pip, "--require-hashes", "--no-deps", "-r", LOCK])
    _run([*pip, "--no-deps", "--no-build-isolation", "--editable", ROOT])
    _run([py, "-m", "pip", "check"])
    _compile(py)
    STAMP.write_text(digest + "\n")
    return py


def _compile(py: Path) -> None:
    """Byte-compile lockstep's sources where they are stale, as pip does for an installed wheel but not for an
    editable install: with ``PYTHONDONTWRITEBYTECODE`` set (as on our machines), every command would otherwise
    compile every module it imports, about 0.07 s of a command that has nothing to do (docs/benchmarks.md)."""
    subprocess.run([str(py), "-m", "compileall", "-q", str(ROOT / "src" / "lockstep")], check=False)


#: The static checks, each a module run with the environment's interpreter.
CHECKS = (
    ("ruff", ["-m", "ruff", "check", "src", "tests", "bench", "examples", "dev.py"]),
    ("mypy", ["-m", "mypy"]),
    ("import-linter", ["-c", "import sys; from importlinter.cli import lint_imports_command as c; "
                            "sys.exit(c.main(standalone_mode=False))"]),
)


def cmd_check(args: list[str]) -> None:
    py = ensure_env()
    for name, command in CHECKS:
        print(f"--- {name}", flush=True)
        _run([py, *command], cwd=ROOT)


def cmd_test(args: list[str]) -> None:
    cmd_check([])
    py = ensure_env()
    # One worker per core (pytest-xdist; a worker more was measured slower: 643 s against 601 s, the processes it
    # adds compete for the same two cores). A test file's tests share a worker, so module fixtures are built once.
    # Files are handed out in the order tests/conftest.py gives them (longest first), not xdist's (most tests
    # first), so that no long file starts last. Later arguments win: `python3 dev.py test -n 0` runs in one process.
    # The slowest tests are listed at the end, for whoever keeps the suite under ten minutes.
    _run([py, "-m", "pytest", "-n", "auto", "--dist", "loadfile", "--no-loadscope-reorder", "--durations=15", *args],
         cwd=ROOT)


def cmd_demo(args: list[str]) -> None:
    py = ensure_env()
    _run([py, str(ROOT / "examples" / "demo.py"), *args], cwd=ROOT)


def cmd_lock(args: list[str]) -> None:
    # pip-tools in a venv of its own: resolving must not need the environment the old lock file describes
    tools = ROOT / ".venv-lock"
    py = tools / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not py.exists():
        _run([sys.executable, "-m", "venv", tools])
        _run([py, "-m", "pip", "install", "--quiet", "pip-tools"])
    _run(
        [
            py.parent / "pip-compile",
            "--quiet",
            "--generate-hashes",
            "--allow-unsafe",
            "--strip-extras",
            "--extra",
            "dev",
            "--all-build-deps",
            "--output-file",
            LOCK.name,  # relative: the lock file's comments name the files as the repository does
            "pyproject.toml",
            *args,
        ],
        cwd=ROOT,
    )


COMMANDS = {
    "test": cmd_test,
    "check": cmd_check,
    "demo": cmd_demo,
    "lock": cmd_lock,
    "env": lambda args: ensure_env(),
}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        sys.exit(2)
    COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
