"""What a command works on, imported when the command runs: ``--help`` imports none of it.

Read-only commands (``data list``, ``features show``, ...) open a
:class:`~lockstep.catalog.Catalog`, which needs only the configuration and
the store; the others open a :class:`~lockstep.project.Project`, which
brings the training, serving and MLflow code with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.catalog import Catalog
    from lockstep.project import Project
    from lockstep.registry.mlflow_registry import Registry

__all__ = ["open_catalog", "open_models", "open_project"]


def open_project(path: Path) -> Project:
    """The project in ``path``, with everything a command may do with it."""
    from lockstep.project import Project

    return Project(path)


def open_catalog(path: Path) -> Catalog:
    """The read-only view of the project's store in ``path``: quick to open."""
    from lockstep.catalog import Catalog

    return Catalog.open(path)


def open_models(path: Path) -> tuple[Catalog, Registry]:
    """The store's catalog and its registry, without the training code: for the commands that use a model."""
    from lockstep.catalog import Catalog
    from lockstep.registry.mlflow_registry import Registry

    catalog = Catalog.open(path)
    return catalog, Registry.of(catalog.config)
