"""The description of one snapshot that ``lockstep data show`` prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockstep.data.leakage import shared_rows
from lockstep.data.splits import assign_splits
from lockstep.data.summary import split_summary, summarize_columns

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from lockstep.core.config import Config
    from lockstep.store import SnapshotInfo

__all__ = ["describe_snapshot"]


def describe_snapshot(info: SnapshotInfo, table: pa.Table, config: Config) -> dict:
    """Metadata, per-column summaries, split sizes with the target per split, and shared rows.

    Splits are computed with the current ``[split]`` configuration.
    """
    out = info.to_dict()
    out["summary"] = summarize_columns(table, info.schema)
    if info.id_column in table.column_names and info.target in table.column_names:
        splits = assign_splits(table, info.id_column, config.split, config.feature_inputs)
        out["splits"] = split_summary(table, splits, info.target, config.data.task)
        out["shared_rows"] = shared_rows(table, info.id_column, splits).to_dict()
    out["task"] = config.data.task
    return out
