"""A read-only view of the embedded registry's SQLite database, for answers that need no MLflow.

Deciding that ``train`` has nothing to do, listing models, and finding the
version that ``predict`` or ``serve`` loads are reads of a few rows. Through
MLflow each costs about 1.5 s before the first query: importing MLflow,
then opening its SQLAlchemy store (which checks the schema with Alembic).
These reads go to the database directly, with the standard library's
``sqlite3``, in a few milliseconds.

They are guarded by the schema they were written against: the database's
Alembic revision must be one in :data:`KNOWN_REVISIONS` (MLflow's, as
locked), else :func:`open_index` answers None and the registry asks MLflow,
which also upgrades an older database. The answers are the ones MLflow gives
(``tests/test_registry_index.py`` compares them on the same registries):

* only the default workspace (MLflow 3's single-tenant mode);
* deleted versions (MLflow marks them ``Deleted_Internal``) are not versions;
* runs found by a search are active ones; a run's metrics are the latest
  value of each, NaN where MLflow recorded NaN.

Runs and versions are created through MLflow. Two writes are simple enough
to do here, as MLflow's SQL store does them (one row upserted, after
checking that the version exists), and are made often by commands that
otherwise need no MLflow (``verify``, ``parity``, ``promote``): a version's
tag and an alias. Anything MLflow would validate differently (a long value,
an alias name MLflow reserves) is left to MLflow.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["KNOWN_REVISIONS", "RegistryIndex", "RunRecord", "VersionRecord", "open_index"]

#: The Alembic revisions of MLflow's tracking schema that this reader was checked against (MLflow 3.17).
KNOWN_REVISIONS = frozenset({"dc11669786a5"})
_WORKSPACE = "default"
_DELETED = "Deleted_Internal"
_VERSION_COLUMNS = "name, version, creation_time, source, run_id"
#: Tag values up to this length are written here (MLflow's own limit is larger; longer ones go through it).
_MAX_TAG_VALUE = 5000
#: Alias names written here: lockstep's, and none that MLflow reserves (``latest``, ``v1``, ...).
_ALIAS = re.compile(r"^(?!latest$)(?![vV]\d+$)[A-Za-z][A-Za-z0-9_-]{0,255}$")


@dataclass(frozen=True)
class VersionRecord:
    """A registered model version's row, with its tags."""

    name: str
    version: int
    creation_time: int
    source: str
    run_id: str
    tags: dict[str, str]


@dataclass(frozen=True)
class RunRecord:
    """A run's artifact location, tags, latest metrics and parameters."""

    run_id: str
    artifact_uri: str
    tags: dict[str, str]
    metrics: dict[str, float]
    params: dict[str, str]


class RegistryIndex:
    """Reads of an embedded MLflow registry (see the module's description); open it with :func:`open_index`."""

    def __init__(self, database: Path) -> None:
        self.database = database

    @contextmanager
    def _connect(self, mode: str = "ro") -> Iterator[sqlite3.Connection]:
        uri = f"{self.database.resolve().as_uri()}?mode={mode}"
        with closing(sqlite3.connect(uri, uri=True, timeout=30)) as connection:
            yield connection

    def _rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._connect() as connection:
            return connection.execute(query, args).fetchall()

    # ------------------------------------------------------------------ runs

    def experiment_id(self, name: str) -> int | None:
        found = self._rows("SELECT experiment_id FROM experiments WHERE workspace = ? AND name = ?", _WORKSPACE, name)
        return int(found[0][0]) if found else None

    def finished_runs_tagged(self, experiment_id: int, key: str, value: str, limit: int = 5) -> list[dict[str, str]]:
        """The tags of the newest active, finished runs of an experiment with tag ``key`` = ``value``
        (MLflow's ``search_runs`` with ``order_by=["attributes.start_time DESC"]``)."""
        found = self._rows(
            "SELECT r.run_uuid FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "WHERE r.experiment_id = ? AND r.lifecycle_stage = 'active' AND r.status = 'FINISHED' "
            "AND t.key = ? AND t.value = ? ORDER BY r.start_time DESC, r.run_uuid LIMIT ?",
            experiment_id, key, value, limit)
        return [{"run_id": run_id, **self._pairs("tags", "run_uuid", run_id)} for (run_id,) in found]

    def run(self, run_id: str) -> RunRecord | None:
        found = self._rows("SELECT artifact_uri FROM runs WHERE run_uuid = ?", run_id)
        if not found:
            return None
        metrics = {key: float("nan") if is_nan else float(value) for key, value, is_nan in
                   self._rows("SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", run_id)}
        return RunRecord(run_id=run_id, artifact_uri=found[0][0] or "", tags=self._pairs("tags", "run_uuid", run_id),
                         metrics=metrics, params=self._pairs("params", "run_uuid", run_id))

    def _pairs(self, table: str, column: str, value: str) -> dict[str, str]:
        query = f'SELECT "key", value FROM {table} WHERE {column} = ?'  # noqa: S608 - fixed names
        return {key: text for key, text in self._rows(query, value)}

    def logged_model_location(self, model_id: str) -> str | None:
        found = self._rows("SELECT artifact_location FROM logged_models WHERE model_id = ?", model_id)
        return str(found[0][0]) if found else None

    # ------------------------------------------------------------------ registered models

    def model_names(self) -> list[str]:
        return sorted(name for (name,) in self._rows("SELECT name FROM registered_models WHERE workspace = ?",
                                                     _WORKSPACE))

    def versions(self, name: str) -> list[VersionRecord]:
        """Every live version of model ``name``, oldest first."""
        found = self._rows(f"SELECT {_VERSION_COLUMNS} FROM model_versions "  # noqa: S608 - fixed names
                           "WHERE workspace = ? AND name = ? AND current_stage != ? ORDER BY version",
                           _WORKSPACE, name, _DELETED)
        return [self._version(row) for row in found]

    def version(self, name: str, version: int) -> VersionRecord | None:
        found = self._rows(f"SELECT {_VERSION_COLUMNS} FROM model_versions "  # noqa: S608 - fixed names
                           "WHERE workspace = ? AND name = ? AND version = ? AND current_stage != ?",
                           _WORKSPACE, name, version, _DELETED)
        return self._version(found[0]) if found else None

    def aliases(self, name: str) -> dict[str, int]:
        """Alias to version number, of model ``name``."""
        return {alias: int(version) for alias, version in self._rows(
            "SELECT alias, version FROM registered_model_aliases WHERE workspace = ? AND name = ?", _WORKSPACE, name)}

    # ------------------------------------------------------------------ writes

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> bool:
        """Set a version's tag, as MLflow's ``set_model_version_tag`` does; False (nothing written) when the
        version does not exist or the value is one to leave to MLflow."""
        if len(value) > _MAX_TAG_VALUE or not 0 < len(key) <= 250:
            return False
        return self._upsert(name, version, 'INSERT INTO model_version_tags (workspace, name, version, "key", value) '
                            'VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace, "key", name, version) '
                            "DO UPDATE SET value = excluded.value", key, value)

    def set_alias(self, name: str, alias: str, version: int) -> bool:
        """Point ``alias`` at a version, as MLflow's ``set_registered_model_alias`` does; False (nothing
        written) when the version does not exist or the alias name is one to leave to MLflow."""
        if not _ALIAS.match(alias):
            return False
        return self._upsert(name, version, "INSERT INTO registered_model_aliases (workspace, name, version, alias) "
                            "VALUES (?, ?, ?, ?) ON CONFLICT (workspace, name, alias) "
                            "DO UPDATE SET version = excluded.version", alias)

    def _upsert(self, name: str, version: int, statement: str, *values: str) -> bool:
        """In one transaction, if the live version ``name``/``version`` exists, run ``statement`` with the
        workspace, the name, the version and ``values``."""
        with self._connect("rw") as connection, connection:
            exists = connection.execute(
                "SELECT 1 FROM model_versions WHERE workspace = ? AND name = ? AND version = ? AND current_stage != ?",
                (_WORKSPACE, name, version, _DELETED)).fetchone()
            if exists:
                connection.execute(statement, (_WORKSPACE, name, version, *values))
        return exists is not None

    def _version(self, row: tuple[Any, ...]) -> VersionRecord:
        name, version, created, source, run_id = row
        tags = {key: value for key, value in self._rows(
            'SELECT "key", value FROM model_version_tags WHERE workspace = ? AND name = ? AND version = ?',
            _WORKSPACE, name, version)}
        return VersionRecord(name=name, version=int(version), creation_time=int(created or 0), source=source or "",
                             run_id=run_id or "", tags=tags)


def open_index(database: Path) -> RegistryIndex | None:
    """A reader of the registry database at ``database``, or None when it cannot answer for MLflow: the file is
    missing, or its schema is not one this reader knows (an older or newer MLflow wrote it)."""
    if not database.is_file():
        return None
    index = RegistryIndex(database)
    try:
        revisions = {revision for (revision,) in index._rows("SELECT version_num FROM alembic_version")}
    except sqlite3.Error:
        return None
    return index if revisions and revisions <= KNOWN_REVISIONS else None
