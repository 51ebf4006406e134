"""What changed between two versions of a table: rows by id, schema, per-column summaries.

Used for raw snapshots (``lockstep data diff``) and feature sets
(``lockstep features diff``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from lockstep.core.values import plain
from lockstep.data.rows import row_hashes
from lockstep.data.summary import column_summary

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.store import SnapshotInfo

__all__ = ["TableDiff", "diff_snapshots", "diff_tables"]

_EXAMPLES = 5


@dataclass
class TableDiff:
    """The differences between version ``old`` and version ``new`` of a table.

    Attributes
    ----------
    rows_added, rows_removed, rows_changed : int
        Rows whose id is only in ``new``, only in ``old``, or in both with
        different values (in the columns both versions have).
    examples : dict
        Up to five ids of each kind; for changed rows, the columns that differ.
    columns_added, columns_removed : list of str
    type_changes : dict
        Column name to ``[old type, new type]``.
    summary_changes : dict
        For each column in both versions whose summary changed, the old and
        new values of each changed statistic.
    """

    old: int
    new: int
    old_fingerprint: str
    new_fingerprint: str
    rows_added: int = 0
    rows_removed: int = 0
    rows_changed: int = 0
    examples: dict[str, list] = field(default_factory=dict)
    columns_added: list[str] = field(default_factory=list)
    columns_removed: list[str] = field(default_factory=list)
    type_changes: dict[str, list[str]] = field(default_factory=dict)
    summary_changes: dict[str, dict[str, list]] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return self.old_fingerprint == self.new_fingerprint

    def to_dict(self) -> dict:
        return {
            "old": self.old,
            "new": self.new,
            "identical": self.identical,
            "old_fingerprint": self.old_fingerprint,
            "new_fingerprint": self.new_fingerprint,
            "rows": {"added": self.rows_added, "removed": self.rows_removed, "changed": self.rows_changed},
            "examples": self.examples,
            "schema": {
                "columns_added": self.columns_added,
                "columns_removed": self.columns_removed,
                "type_changes": self.type_changes,
            },
            "summary_changes": self.summary_changes,
        }


def diff_snapshots(old_info: SnapshotInfo, old: pa.Table, new_info: SnapshotInfo, new: pa.Table) -> TableDiff:
    """Compare two raw snapshots; rows are matched by the newer snapshot's id column."""
    return diff_tables(old_info.version, old_info.fingerprint, old, old_info.schema,
                       new_info.version, new_info.fingerprint, new, new_info.schema, id_col=new_info.id_column)


def diff_tables(old_version: int, old_fingerprint: str, old: pa.Table, old_cols: dict[str, str],
                new_version: int, new_fingerprint: str, new: pa.Table, new_cols: dict[str, str], *,
                id_col: str) -> TableDiff:
    """Compare two versions of a table.

    Parameters
    ----------
    old_version, old_fingerprint, old, old_cols
        The older version: number, fingerprint, rows, and column to logical
        type (``int``, ``float``, ``bool``, ``str``, ``datetime``, ``date``).
    new_version, new_fingerprint, new, new_cols
        The newer version, likewise.
    id_col : str
        The column that matches rows.
    """
    out = TableDiff(old=old_version, new=new_version, old_fingerprint=old_fingerprint,
                    new_fingerprint=new_fingerprint)
    out.columns_added = [c for c in new_cols if c not in old_cols]
    out.columns_removed = [c for c in old_cols if c not in new_cols]
    out.type_changes = {c: [old_cols[c], new_cols[c]] for c in new_cols if c in old_cols and old_cols[c] != new_cols[c]}

    if id_col not in old.column_names:
        out.examples["note"] = [f"the id column '{id_col}' is not in version {old_version}; rows not matched"]
        return out
    old_ids = pc.cast(old.column(id_col), pa.string())
    new_ids = pc.cast(new.column(id_col), pa.string())
    added = pc.invert(pc.is_in(new_ids, value_set=old_ids))
    removed = pc.invert(pc.is_in(old_ids, value_set=new_ids))
    out.rows_added = int(pc.sum(added).as_py() or 0)
    out.rows_removed = int(pc.sum(removed).as_py() or 0)
    out.examples["added"] = new_ids.filter(added).slice(0, _EXAMPLES).to_pylist()
    out.examples["removed"] = old_ids.filter(removed).slice(0, _EXAMPLES).to_pylist()

    common = [c for c in new.column_names if c in old.column_names and c != id_col
              and c not in out.type_changes]
    left = pa.table({"id": old_ids, "h_old": row_hashes(old, common)})
    right = pa.table({"id": new_ids, "h_new": row_hashes(new, common)})
    joined = left.join(right, keys="id", join_type="inner")
    changed_mask = pc.not_equal(joined.column("h_old"), joined.column("h_new"))
    changed = joined.filter(changed_mask)
    out.rows_changed = changed.num_rows
    examples = []
    for key in changed.column("id").slice(0, _EXAMPLES).to_pylist():
        o = old.filter(pc.equal(old_ids, key)).slice(0, 1)
        n = new.filter(pc.equal(new_ids, key)).slice(0, 1)
        cols = {c: [o.column(c)[0].as_py(), n.column(c)[0].as_py()] for c in common
                if o.column(c)[0].as_py() != n.column(c)[0].as_py()}
        examples.append({"id": key, "columns": {c: [plain(a), plain(b)] for c, (a, b) in cols.items()}})
    out.examples["changed"] = examples

    for c in common:
        before = column_summary(old.column(c), old_cols[c])
        after = column_summary(new.column(c), new_cols[c])
        delta = {k: [before.get(k), after.get(k)] for k in after if k != "dtype" and before.get(k) != after.get(k)}
        if delta:
            out.summary_changes[c] = delta
    return out
