"""What ``lockstep features show`` and ``lockstep features diff`` print."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockstep.data.diff import diff_tables
from lockstep.data.summary import summarize_columns

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from lockstep.store import FeatureInfo, SnapshotInfo

__all__ = ["describe_features", "diff_features"]


def describe_features(info: FeatureInfo, table: pa.Table, snapshot: SnapshotInfo | None) -> dict:
    """Metadata, feature summaries (dtype, missing rate, ranges or top values) and lineage.

    The lineage goes back to the raw snapshot and its source files.
    """
    out = info.to_dict()
    out["summary"] = summarize_columns(table.select(info.columns), info.dtypes)
    out["lineage"] = {
        "raw_version": info.raw_version,
        "raw_fingerprint": info.raw_fingerprint,
        "raw_source": snapshot.source if snapshot is not None else None,
        "raw_exists": snapshot is not None and snapshot.fingerprint == info.raw_fingerprint,
        "code": info.code,
        "config_fingerprint": info.config_fingerprint,
        "environment_fingerprint": info.environment_fingerprint,
        "git": info.git,
    }
    return out


def diff_features(old_info: FeatureInfo, old: pa.Table, new_info: FeatureInfo, new: pa.Table) -> dict:
    """Rows added, removed and changed (by id), features added, removed and retyped, summaries, lineage."""
    def types(info: FeatureInfo) -> dict[str, str]:
        return {**info.dtypes, info.label_column: "str", "split": "str"}

    table_diff = diff_tables(old_info.version, old_info.fingerprint, old, types(old_info),
                             new_info.version, new_info.fingerprint, new, types(new_info), id_col=new_info.id_column)
    out = table_diff.to_dict()
    old_files, new_files = old_info.code.get("files", {}), new_info.code.get("files", {})
    out["lineage"] = {
        "raw_version": [old_info.raw_version, new_info.raw_version],
        "raw_changed": old_info.raw_fingerprint != new_info.raw_fingerprint,
        "code_changed": old_info.code.get("fingerprint") != new_info.code.get("fingerprint"),
        "code_files_changed": sorted(f for f in set(old_files) | set(new_files)
                                     if old_files.get(f) != new_files.get(f)),
        "config_changed": old_info.config_fingerprint != new_info.config_fingerprint,
        "environment_changed": old_info.environment_fingerprint != new_info.environment_fingerprint,
    }
    return out
