"""Moved or copied stores: MLflow's recorded artifact locations pointed at the store's current folder."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lockstep.core.errors import FileSystemError

__all__ = ["relocate"]

_ARTIFACTS_DIR = "/mlartifacts/"
#: Where MLflow's SQLite store records absolute artifact locations (rewritten when a project moves).
_LOCATION_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                     ("logged_models", "artifact_location"), ("model_versions", "storage_location"),
                     ("model_versions", "source"))


def relocate(root: Path) -> list[str]:
    """Point the registry's recorded artifact locations at this store's folder, if it was moved or copied.

    MLflow records artifact locations as absolute ``file:`` URIs. When the
    project folder is moved, copied or restored elsewhere, the locations
    recorded under another store folder are rewritten to this one, in one
    SQLite transaction, so that every command reads this store's files and
    a copy never writes into the original's. Returns the old roots.
    """
    database = root / "mlflow.db"
    if not database.exists():
        return []
    new = root.resolve().as_uri()
    connection = sqlite3.connect(database, timeout=30)
    try:
        with connection:
            found = connection.execute(
                "SELECT DISTINCT artifact_location FROM experiments WHERE artifact_location LIKE ?",
                (f"%{_ARTIFACTS_DIR}%",)).fetchall()
            old_roots = sorted({loc[: loc.rindex(_ARTIFACTS_DIR)] for (loc,) in found} - {new})
            for old in old_roots:
                for table, column in _LOCATION_COLUMNS:
                    connection.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608 - fixed names
                        f"WHERE substr({column}, 1, ?) = ?",
                        (new + _ARTIFACTS_DIR, len(old + _ARTIFACTS_DIR) + 1, len(old + _ARTIFACTS_DIR),
                         old + _ARTIFACTS_DIR))
    except sqlite3.OperationalError as exc:
        error = FileSystemError.of(exc, "update the moved model registry", database)
        if error is None:
            raise
        raise FileSystemError(f"{error.message} (the store was moved or copied here, and MLflow's recorded "
                              "artifact locations must point at its new folder)",
                              hint="open it once where it can be written, or serve the bundle that `lockstep "
                              "docker` writes (`lockstep serve --bundle`) from read-only storage") from None
    finally:
        connection.close()
    return old_roots

