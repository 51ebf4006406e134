"""``<store>/monitor``: the log of every monitoring run, and the reports it wrote.

One row per ``lockstep monitor`` run (a Delta table, appended once per run):
when, which model version, which window, how many rows, whether there was
drift or degradation, which columns drifted, and what was done about it
(the retraining loop's steps and decisions), with the whole JSON report.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lockstep.core.lazy import lazy_module
from lockstep.store import _delta
from lockstep.store.location import StorePath, as_store_path

if TYPE_CHECKING:
    import pyarrow as pa
else:  # Arrow (and NumPy with it): imported by the first call that reads or writes data, not by a skip
    pa = lazy_module("pyarrow")

__all__ = ["MonitorLog"]


def _schema() -> pa.Schema:
    return pa.schema([
        ("logged", pa.timestamp("us", tz="UTC")), ("time", pa.string()), ("model_name", pa.string()),
        ("model_version", pa.int64()),
        ("window", pa.string()), ("rows", pa.int64()), ("drift", pa.bool_()), ("degraded", pa.bool_()),
        ("drifted", pa.string()), ("actions", pa.string()), ("report", pa.string()),
    ])


class MonitorLog:
    """The monitoring log of a store."""

    def __init__(self, root: StorePath) -> None:
        self.root = as_store_path(root)

    def append(self, report: dict[str, Any]) -> None:
        """Record one monitoring run (its JSON report)."""
        row = {"logged": datetime.now(UTC), "time": report["time"], "model_name": report["model"],
               "model_version": report["version"],
               "window": report["window"], "rows": report["rows"], "drift": report["drift"],
               "degraded": report.get("degraded", False), "drifted": json.dumps(report.get("drifted", [])),
               "actions": json.dumps(report.get("actions", []), default=str),
               "report": json.dumps(report, default=str)}
        _delta.write_table(self.root, pa.Table.from_pylist([row], schema=_schema()), {"kind": "monitor"},
                           mode="append")

    def read(self) -> pa.Table:
        """Every monitoring run, oldest first."""
        if not _delta.is_table(self.root):
            return _schema().empty_table()
        return _delta.to_table(self.root).sort_by([("logged", "ascending")])
