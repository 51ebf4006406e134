"""Batch prediction outputs: files written whole or not at all, Delta tables in the store, and the run record.

A file output (Parquet or CSV) is written to a temporary file next to the
target and renamed over it when every row is written: a failed or
interrupted run leaves no partial output. A folder output holds one Parquet
file per piece of the run, written the same way (a temporary folder). A store output
(``<store>/predictions/<name>``) is a Delta table that every run appends
to in a single commit. Every run, whatever its output, is recorded in
``<store>/predictions/_runs``: model, input and output fingerprints, rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockstep.core.errors import UserError
from lockstep.core.lazy import lazy_module
from lockstep.store import _delta, parts
from lockstep.store.location import StorePath, as_store_path
from lockstep.store.parts import PartFile

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
else:  # Arrow (and NumPy with it): imported by the first call that reads or writes data, not by a skip
    pa = lazy_module("pyarrow")
    pacsv = lazy_module("pyarrow.csv")
    pq = lazy_module("pyarrow.parquet")

#: A table name: it becomes a folder of the store, so never a path.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

__all__ = ["FileOutput", "FolderOutput", "PredictionStore"]


class FileOutput:
    """A Parquet or CSV file written atomically (temporary file, then rename)."""

    def __init__(self, path: Path, fmt: str) -> None:
        if fmt not in ("parquet", "csv"):
            raise UserError(f"unknown output format {fmt!r}", hint="use .parquet, .csv or --format delta")
        self.path = Path(path)
        self.fmt = fmt
        self._writer: Any = None
        self._tmp: Path | None = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            os.close(fd)
            self._tmp = Path(tmp)
            self._writer = (pq.ParquetWriter(tmp, table.schema) if self.fmt == "parquet"
                            else pacsv.CSVWriter(tmp, table.schema))
        self._writer.write_table(table)

    def commit(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        assert self._tmp is not None  # set with the writer
        os.replace(self._tmp, self.path)
        self._writer = None

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except (OSError, pa.ArrowException):  # the file is being discarded: a failure to finish it is moot
                pass
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self._writer = None


class FolderOutput:
    """A folder of Parquet files, one per piece (``part-000000.parquet``, ...), written whole or not at all: into a
    temporary folder next to the target, which replaces the target (and what it held) when every piece is in."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._tmp: Path | None = None
        self._count = 0

    def write(self, table: pa.Table) -> None:
        if self._tmp is None:
            if self.path.exists() and not self.path.is_dir():
                raise UserError(f"{self.path} is a file, not a folder for the predictions",
                                hint="name a folder (ending in /), or a .parquet file")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent))
        pq.write_table(table, self._tmp / f"part-{self._count:06d}.parquet")
        self._count += 1

    def commit(self) -> None:
        if self._tmp is None:
            return
        old = None
        if self.path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".old", dir=self.path.parent))
            os.replace(self.path, old / "previous")
        os.replace(self._tmp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self._tmp = None

    def abort(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None


class PredictionStore:
    """``<store>/predictions``: named Delta outputs and the record of every batch run."""

    def __init__(self, root: StorePath) -> None:
        self.root = as_store_path(root)

    def table_path(self, name: str) -> StorePath:
        """The folder of the named output table, inside ``<store>/predictions``.

        Raises
        ------
        UserError
            When ``name`` is not a plain name (a path, ``..``, a hidden or reserved name).
        """
        if not _NAME.match(name) or name in (".", "..") or name.startswith("_"):
            raise UserError(f"{name!r} is not a name for a prediction table: use letters, digits, '.', '_' and '-', "
                            "starting with a letter or digit", hint="for a file, give a path ending in .parquet or "
                            ".csv instead of --format delta")
        return self.root / name

    def write_part(self, name: str, table: pa.Table, part: str) -> PartFile:
        """Write one data file of a commit to come to ``predictions/<name>`` (see :meth:`commit_parts`)."""
        return parts.write_part(self.table_path(name), table, part)

    def commit_parts(self, name: str, written: list[PartFile], schema: pa.Schema, metadata: dict[str, Any]) -> None:
        """Append the data files, in order, to ``predictions/<name>`` as one Delta commit."""
        parts.commit_parts(self.table_path(name), written, schema, metadata, mode="append")

    def discard_parts(self, name: str, names: list[str]) -> None:
        """Remove data files written for a commit that will not be made."""
        parts.discard_parts(self.table_path(name), names)

    def read_table(self, name: str) -> pa.Table:
        return _delta.to_table(self.table_path(name))

    def record_run(self, run: dict[str, Any]) -> None:
        """Append one batch run's record to ``predictions/_runs``."""
        row = {k: (v if not isinstance(v, (dict, list)) else json.dumps(v, default=str)) for k, v in run.items()}
        _delta.write_table(self.root / "_runs", pa.Table.from_pylist([row]), {"kind": "batch-run"}, mode="append")

    def runs(self) -> pa.Table:
        path = self.root / "_runs"
        return _delta.to_table(path) if _delta.is_table(path) else pa.table({})
