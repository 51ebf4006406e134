"""The exact requirements of a model version, from the environment recorded when it was trained.

The list is the dependency closure of lockstep and of the packages the
model's classes and the project's code come from, each pinned to the version
recorded at training, so that ``pip install --no-deps -r requirements.txt``
installs exactly that environment and nothing else.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from packaging.requirements import Requirement

__all__ = ["LockedRequirements", "dependency_closure", "lock_requirements", "model_distributions"]


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_closure(roots: list[str]) -> list[str]:
    """Every distribution ``roots`` need, with extras followed, from the installed metadata (normalized names)."""
    seen: dict[str, set[str]] = {}
    queue: list[tuple[str, frozenset[str]]] = [(_normalize(r), frozenset()) for r in roots]
    while queue:
        name, extras = queue.pop()
        done = seen.get(name)
        if done is not None and extras <= done:
            continue
        seen[name] = (done or set()) | set(extras)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            wanted = req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ({""} | set(extras)))
            if wanted:
                queue.append((_normalize(req.name), frozenset(req.extras)))
    return sorted(seen)


def model_distributions(modules: list[str]) -> set[str]:
    """The installed distributions that provide the given top-level modules (standard library excluded)."""
    provided = metadata.packages_distributions()
    out: set[str] = set()
    for module in modules:
        top = module.split(".")[0]
        if top in sys.stdlib_module_names:
            continue
        out.update(_normalize(d) for d in provided.get(top, []))
    return out


@dataclass
class LockedRequirements:
    """Pinned requirements and what could not be pinned."""

    pins: dict[str, str]
    missing: list[str] = field(default_factory=list)  # needed now but not in the recorded environment
    header: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"# {h}" for h in self.header]
        lines += [f"{name}=={version}" for name, version in sorted(self.pins.items())]
        if self.missing:
            lines.append("# not in the recorded environment (install them yourself): " + ", ".join(self.missing))
        return "\n".join(lines) + "\n"


def lock_requirements(recorded: dict[str, Any], roots: list[str], *, title: str) -> LockedRequirements:
    """Pin the closure of ``roots`` to the versions in the ``recorded`` environment.

    lockstep itself is not pinned (it is not on PyPI): the header says how it
    is installed.
    """
    packages = {_normalize(k): v for k, v in (recorded.get("packages") or {}).items()}
    closure = dependency_closure(roots)
    pins, missing = {}, []
    for name in closure:
        if name == "lockstep":
            continue
        if name in packages:
            pins[name] = packages[name]
        else:
            missing.append(name)
    python = recorded.get("python", {})
    plat = recorded.get("platform", {})
    header = [
        title,
        f"recorded with Python {python.get('version')} ({python.get('implementation')}) on "
        f"{plat.get('system')} {plat.get('machine')}",
        "complete: install with  pip install --no-deps -r requirements.txt",
        f"lockstep {packages.get('lockstep', '?')} itself is installed from its source "
        "(`lockstep docker` vendors it next to this file)",
    ]
    return LockedRequirements(pins=pins, missing=missing, header=header)
