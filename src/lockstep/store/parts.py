"""A table version read and written by parts, so that no process ever holds all of it.

Reading: :func:`partitions` cuts a version into :class:`Partition` s, runs of
at most ``rows`` consecutive rows inside one row group of one data file, in
the order of the table's rows; :func:`read_partition` reads one of them
(anywhere: a Dask worker reads its own). The footers of the data files are
the only thing read to cut them.

Writing: each part of a new version is written as a Parquet data file of its
own inside the table's folder (:func:`write_part`, also anywhere), then
:func:`commit_parts` makes the files one Delta version, in one commit, with
lockstep's metadata, in the order given: delta-rs reads a commit's files in
the order of its actions, which is the order of the rows. Until that commit
the files are in no version; :func:`discard_parts` removes them when the work
fails.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as fs
import pyarrow.parquet as pq
from deltalake import CommitProperties
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from lockstep.core.errors import StoreError
from lockstep.store import _delta
from lockstep.store.location import RemotePath, StorePath

__all__ = ["Partition", "PartFile", "commit_parts", "delta_schema", "discard_parts", "partitions",
           "read_partition", "write_part"]


@dataclass(frozen=True)
class Partition:
    """Rows ``start`` to ``stop`` (excluded) of row group ``row_group`` of the data file ``file``.

    Attributes
    ----------
    index : int
        Its place among the version's partitions (0 first).
    file : str
        The data file, relative to the table's folder.
    row_group, start, stop : int
    offset : int
        The number of the table's rows before it.
    """

    index: int
    file: str
    row_group: int
    start: int
    stop: int
    offset: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class PartFile:
    """A data file written for a version that is not committed yet."""

    name: str
    size: int
    rows: int


def partitions(path: StorePath, version: int | None, rows: int) -> tuple[list[Partition], pa.Schema]:
    """The partitions of the table's ``version`` (default: the latest), at most ``rows`` rows each, in row order,
    and the schema every partition is read with."""
    if rows < 1:
        raise ValueError("a partition holds at least one row")
    dataset = _delta.dataset(path, version)
    out: list[Partition] = []
    offset = 0
    for fragment in dataset.get_fragments():
        metadata = fragment.metadata  # the footer: row groups and their sizes
        for group in range(metadata.num_row_groups):
            count = metadata.row_group(group).num_rows
            for start in range(0, count, rows):
                stop = min(start + rows, count)
                out.append(Partition(len(out), fragment.path, group, start, stop, offset))
                offset += stop - start
    return out, dataset.schema


def read_partition(path: StorePath, partition: Partition, schema: pa.Schema, *,
                   text_as_dictionary: bool = False) -> pa.Table:
    """The rows of one partition, with the version's ``schema`` (text dictionary-encoded when asked)."""
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    filesystem = _delta._filesystem(path)
    try:
        with filesystem.open_input_file(partition.file) as handle:
            reader = pq.ParquetFile(handle, read_dictionary=text if text_as_dictionary else None)
            table = reader.read_row_group(partition.row_group)
    except (OSError, pa.ArrowInvalid) as exc:
        raise StoreError(f"cannot read rows {partition.offset + 1:,} to {partition.offset + partition.rows:,} of "
                         f"{path} (data file {partition.file}): {exc}") from None
    table = table.slice(partition.start, partition.rows)
    wanted = pa.schema([f.with_type(pa.dictionary(pa.int32(), pa.string())) if text_as_dictionary and f.name in text
                        else f for f in schema])
    return table.select(wanted.names).cast(wanted)


def delta_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with each type as the Delta table will hold it (its data files must agree)."""
    return pa.schema(DeltaSchema.from_arrow(schema).to_arrow())


def write_part(path: StorePath, table: pa.Table, name: str) -> PartFile:
    """Write ``table`` as the data file ``name`` in the table's folder (part of no version yet)."""
    if not isinstance(path, RemotePath):
        path.mkdir(parents=True, exist_ok=True)
    filesystem = _delta._filesystem(path)
    table = table.cast(delta_schema(table.schema))
    try:
        pq.write_table(table, name, filesystem=filesystem)
        size = filesystem.get_file_info(name).size
    except OSError as exc:
        raise StoreError(f"cannot write the data file {name} of {path}: {exc}") from None
    return PartFile(name, int(size or 0), table.num_rows)


def read_part(path: StorePath, part: PartFile) -> pa.Table:
    """The rows of a data file written by :func:`write_part`."""
    with _delta._filesystem(path).open_input_file(part.name) as handle:
        return pq.read_table(handle)


def discard_parts(path: StorePath, names: list[str]) -> None:
    """Remove data files that no version holds (a failed or abandoned write); missing ones are fine."""
    filesystem = _delta._filesystem(path)
    for name in names:
        try:
            if filesystem.get_file_info(name).type == fs.FileType.File:
                filesystem.delete_file(name)
        except OSError:  # best effort: a file left behind is in no version, so no reader sees it
            pass


def commit_parts(path: StorePath, parts: list[PartFile], schema: pa.Schema, metadata: dict[str, Any]) -> int:
    """Make ``parts``, in this order, the rows of a new version of the table (its whole content); the version.

    Raises
    ------
    StoreError
        When another process committed to the table first (nothing is committed).
    """
    now = int(time.time() * 1000)
    actions = [AddAction(p.name, p.size, {}, now, True, json.dumps({"numRecords": p.rows})) for p in parts]
    properties = CommitProperties(custom_metadata={_delta.METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    schema = delta_schema(schema)
    try:
        if _delta.is_table(path):
            changes = list[AddAction | RemoveAction](actions)
            _delta.open_table(path).create_write_transaction(changes, "overwrite", schema, commit_properties=properties)
        else:
            create_table_with_add_actions(str(path), DeltaSchema.from_arrow(schema),
                                          actions, mode="overwrite", configuration=_delta.TABLE_CONFIGURATION,
                                          storage_options=_delta._options(path), commit_properties=properties)
    except CommitFailedError as exc:
        raise StoreError(f"another process wrote the Delta table {path} at the same moment; nothing was written "
                         f"({' '.join(str(exc).split())[:200]})", hint="run the command again") from None
    return _delta.open_table(path).version()
