"""The quarantine table: source rows that broke the schema, with the reasons.

``lockstep ingest --quarantine`` ingests the valid rows and appends the
failing ones here (``<store>/quarantine``), so that nothing is dropped
silently. Each row keeps its original values as JSON, where it came from and
every rule it broke. A batch that is already in the table (same rows, same
reasons) is not appended twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from lockstep.core.lazy import lazy_module
from lockstep.store import _delta
from lockstep.store.location import StorePath, as_store_path

if TYPE_CHECKING:
    import pyarrow as pa
else:  # Arrow (and NumPy with it): imported by the first call that reads or writes data, not by a skip
    pa = lazy_module("pyarrow")

__all__ = ["QuarantineRecord", "QuarantineTable"]


@dataclass(frozen=True)
class QuarantineRecord:
    """One quarantined source row."""

    source: str
    row: int
    id: str | None
    reasons: str
    record: str


class QuarantineTable:
    """The quarantine table of a store (``<store>/quarantine``)."""

    def __init__(self, path: StorePath) -> None:
        self.path = as_store_path(path)

    @staticmethod
    def schema() -> pa.Schema:
        return pa.schema([
            ("batch", pa.string()),
            ("ingested", pa.timestamp("us", tz="UTC")),
            ("snapshot_version", pa.int64()),
            ("source", pa.string()),
            ("row", pa.int64()),
            ("id", pa.string()),
            ("reasons", pa.string()),
            ("record", pa.string()),
        ])

    def batches(self) -> set[str]:
        """Fingerprints of the batches already recorded."""
        if not _delta.is_table(self.path):
            return set()
        table = _delta.to_table(self.path, columns=["batch"])
        return set(table.column("batch").unique().to_pylist())

    def append(self, batch: str, records: list[QuarantineRecord], *, snapshot_version: int | None,
               ingested: datetime) -> bool:
        """Append ``records`` as batch ``batch`` unless it is already there; return whether it was written."""
        if not records or batch in self.batches():
            return False
        n = len(records)
        table = pa.table(
            {
                "batch": [batch] * n,
                "ingested": pa.array([ingested] * n, pa.timestamp("us", tz="UTC")),
                "snapshot_version": pa.array([snapshot_version] * n, pa.int64()),
                "source": [r.source for r in records],
                "row": pa.array([r.row for r in records], pa.int64()),
                "id": pa.array([r.id for r in records], pa.string()),
                "reasons": [r.reasons for r in records],
                "record": [r.record for r in records],
            },
            schema=self.schema(),
        )
        _delta.write_table(self.path, table, {"kind": "quarantine", "batch": batch, "rows": n}, mode="append")
        return True

    def read(self) -> pa.Table:
        """Every quarantined row."""
        if not _delta.is_table(self.path):
            return self.schema().empty_table()
        return _delta.to_table(self.path)
