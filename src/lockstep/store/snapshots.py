"""Raw snapshots: the validated raw data, one Delta table version per change.

The table lives at ``<store>/raw``. Each version is the whole raw table as it
was ingested (time travel reads any earlier one) and its commit carries a
:class:`SnapshotInfo`: fingerprint, shape, schema, source files and their
fingerprints, time and lockstep version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lockstep.store.versioned import VersionedTable

if TYPE_CHECKING:  # pragma: no cover
    pass

__all__ = ["SnapshotInfo", "SnapshotTable"]


@dataclass(frozen=True)
class SnapshotInfo:
    """What lockstep recorded about one raw snapshot version.

    Attributes
    ----------
    version : int
        The Delta table version (0 for the first snapshot).
    fingerprint : str
        The data fingerprint (:func:`lockstep.core.fingerprint.fingerprint_table`).
    rows : int
    column_names : list of str
    schema : dict
        Column name to logical type (``int``, ``float``, ``bool``, ``str``,
        ``datetime``, ``date``).
    id_column, target : str
    source : dict
        What was read: kind, description, files with sizes and fingerprints,
        or the SQL query.
    created : str
        UTC time of the ingest, ISO 8601.
    lockstep_version : str
    quarantined : int
        Rows of the source set aside in the quarantine table by this ingest.
    declared_schema : dict
        ``[data.schema]`` as it was when the snapshot was taken.
    inputs : str
        Fingerprint of everything the ingest read: the source files' fingerprints,
        the configuration and lockstep's version (empty for SQL sources). An
        ingest with the same inputs is skipped without reading the data.
    """

    version: int
    fingerprint: str
    rows: int
    column_names: list[str]
    schema: dict[str, str]
    id_column: str
    target: str
    source: dict[str, Any]
    created: str
    lockstep_version: str
    quarantined: int = 0
    declared_schema: dict[str, Any] = field(default_factory=dict)
    inputs: str = ""

    @property
    def columns(self) -> int:
        return len(self.column_names)

    @classmethod
    def from_metadata(cls, version: int, meta: dict[str, Any]) -> SnapshotInfo:
        return cls(
            version=version,
            fingerprint=meta["fingerprint"],
            rows=int(meta["rows"]),
            column_names=list(meta["column_names"]),
            schema=dict(meta["schema"]),
            id_column=meta["id_column"],
            target=meta["target"],
            source=dict(meta.get("source", {})),
            created=meta["created"],
            lockstep_version=meta["lockstep_version"],
            quarantined=int(meta.get("quarantined", 0)),
            declared_schema=dict(meta.get("declared_schema", {})),
            inputs=meta.get("inputs", ""),
        )

    def to_metadata(self) -> dict[str, Any]:
        """The commit metadata (everything but the version, which Delta assigns)."""
        out = self.to_dict()
        del out["version"], out["columns"]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``columns`` is the number of columns, ``column_names`` their names."""
        return {
            "version": self.version,
            "fingerprint": self.fingerprint,
            "rows": self.rows,
            "columns": self.columns,
            "column_names": list(self.column_names),
            "schema": dict(self.schema),
            "id_column": self.id_column,
            "target": self.target,
            "source": self.source,
            "created": self.created,
            "lockstep_version": self.lockstep_version,
            "quarantined": self.quarantined,
            "declared_schema": self.declared_schema,
            "inputs": self.inputs,
        }


class SnapshotTable(VersionedTable[SnapshotInfo]):
    """The raw snapshot table of a store (``<store>/raw``)."""

    info_type = SnapshotInfo
    noun = "raw snapshot version"
    empty = ("no raw snapshot exists yet", "run `lockstep ingest` first")
    missing_hint = "`lockstep data list` shows every version"
