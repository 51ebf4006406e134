"""A table version read and written by parts, so that no process ever holds all of it.

Reading: :func:`partitions` cuts a version into :class:`Partition` s, runs of
``rows`` consecutive rows (the last may hold fewer) starting at multiples of
``rows``, each made of segments of row groups of data files, in the order of
the table's rows; :func:`read_partition` reads one of them (anywhere: a Dask
worker reads its own). The footers of the data files are the only thing
read to cut them. The same rows are cut the same way however they are
stored (files, row groups): what a partition holds, and so any computation
on it as one batch, does not depend on the storage.

Writing: each part of a new version is written as a Parquet data file of its
own inside the table's folder (:func:`write_part`, also anywhere), then
:func:`commit_parts` makes the files one Delta version, in one commit, with
lockstep's metadata, in the order given: delta-rs reads a commit's files in
the order of its actions, which is the order of the rows. Until that commit
the files are in no version; :func:`discard_parts` removes them when the work
fails.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deltalake import CommitProperties
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from lockstep.core.errors import FileSystemError, StoreError
from lockstep.core.lazy import lazy_module
from lockstep.store import _delta
from lockstep.store.location import RemotePath, StorePath

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as fs
    import pyarrow.parquet as pq
else:  # Arrow (and NumPy with it): imported by the first call that reads or writes data, not by a skip
    pa = lazy_module("pyarrow")
    fs = lazy_module("pyarrow.fs")
    pq = lazy_module("pyarrow.parquet")

__all__ = ["Partition", "PartFile", "Segment", "commit_parts", "delta_schema", "discard_parts", "file_partitions",
           "partitions", "read_partition", "write_part"]


@dataclass(frozen=True)
class Segment:
    """Rows ``start`` to ``stop`` (excluded) of row group ``row_group`` of the data file ``file`` (relative to the
    table's or input's folder); ``text`` names the file's text columns."""

    file: str
    row_group: int
    start: int
    stop: int
    text: tuple[str, ...] = ()


@dataclass(frozen=True)
class Partition:
    """A run of consecutive rows: ``rows`` rows after the first ``offset``, in one or more segments.

    Partitions start at multiples of their size, whatever the files and row groups: the same rows are cut the
    same way however they are stored.
    """

    index: int
    offset: int
    rows: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class PartFile:
    """A data file written for a version that is not committed yet."""

    name: str
    size: int
    rows: int


def _text(schema: pa.Schema) -> tuple[str, ...]:
    return tuple(f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type))


def _cut(groups: list[tuple[str, int, int, tuple[str, ...]]], rows: int) -> list[Partition]:
    """Consecutive row groups ``(file, group, row count, text columns)`` cut into partitions of ``rows`` rows."""
    if rows < 1:
        raise ValueError("a partition holds at least one row")
    out: list[Partition] = []
    segments: list[Segment] = []
    offset = filled = 0
    for file, group, count, text in groups:
        start = 0
        while start < count:
            take = min(rows - filled, count - start)
            segments.append(Segment(file, group, start, start + take, text))
            start += take
            filled += take
            if filled == rows:
                out.append(Partition(len(out), offset, filled, tuple(segments)))
                offset, filled, segments = offset + filled, 0, []
    if segments:
        out.append(Partition(len(out), offset, filled, tuple(segments)))
    return out


def partitions(path: StorePath, version: int | None, rows: int) -> tuple[list[Partition], pa.Schema]:
    """The partitions of the table's ``version`` (default: the latest), ``rows`` rows each (the last may hold
    fewer), in row order, and the schema they are read with. Only the data files' footers are read."""
    dataset = _delta.dataset(path, version)
    text = _text(dataset.schema)
    groups = []
    for fragment in dataset.get_fragments():
        metadata = fragment.metadata  # the footer: row groups and their sizes
        groups += [(fragment.path, g, metadata.row_group(g).num_rows, text) for g in range(metadata.num_row_groups)]
    return _cut(groups, rows), dataset.schema


def file_partitions(root: StorePath, files: list[str], rows: int) -> list[Partition]:
    """The partitions of Parquet ``files`` (relative to ``root``, read in this order), ``rows`` rows each."""
    filesystem = _delta._filesystem(root)
    groups = []
    for name in files:
        with filesystem.open_input_file(name) as handle:
            parquet = pq.ParquetFile(handle)
            metadata, text = parquet.metadata, _text(parquet.schema_arrow)
        groups += [(name, g, metadata.row_group(g).num_rows, text) for g in range(metadata.num_row_groups)]
    return _cut(groups, rows)


def read_partition(path: StorePath, partition: Partition, schema: pa.Schema | None = None, *,
                   text_as_dictionary: bool = False) -> pa.Table:
    """The rows of one partition: with ``schema`` (a table version's), or as each file has them. With
    ``text_as_dictionary``, text is dictionary-encoded, as Parquet stores it."""
    filesystem = _delta._filesystem(path)
    pieces = []
    for segment in partition.segments:
        try:
            with filesystem.open_input_file(segment.file) as handle:
                reader = pq.ParquetFile(handle, read_dictionary=list(segment.text) if text_as_dictionary else None)
                table = reader.read_row_group(segment.row_group)
        except (OSError, pa.ArrowInvalid) as exc:
            raise StoreError(f"cannot read rows {partition.offset + 1:,} to {partition.offset + partition.rows:,} "
                             f"of {path} (data file {segment.file}): {exc}") from None
        table = table.slice(segment.start, segment.stop - segment.start)
        if schema is not None:
            wanted = pa.schema([f.with_type(pa.dictionary(pa.int32(), pa.string()))
                                if text_as_dictionary and f.name in segment.text else f for f in schema])
            table = table.select(wanted.names).cast(wanted)
        pieces.append(table)
    if len(pieces) == 1:
        return pieces[0]
    return pa.concat_tables(pieces, promote_options="permissive")


def delta_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with each type as the Delta table will hold it (its data files must agree)."""
    return pa.schema(DeltaSchema.from_arrow(schema).to_arrow())


def write_part(path: StorePath, table: pa.Table, name: str) -> PartFile:
    """Write ``table`` as the data file ``name`` in the table's folder (part of no version yet).

    Columns are cast to the types the Delta table holds. Dictionary-encoded text is written as it is, without
    decoding it first (Parquet keeps text in dictionaries anyway): the file then carries no Arrow schema, so
    that it reads back as plain text, as Delta's readers see it.
    """
    if not isinstance(path, RemotePath):
        path.mkdir(parents=True, exist_ok=True)
    filesystem = _delta._filesystem(path)
    encoded = [pa.types.is_dictionary(f.type) for f in table.schema]
    target = delta_schema(table.schema)
    if any(encoded):
        target = pa.schema([f.with_type(pa.dictionary(t.type.index_type, f.type)) if is_encoded else f
                            for f, t, is_encoded in zip(target, table.schema, encoded)])
    table = table.cast(target)
    # Column statistics (min, max, nulls) for every column but dictionary-encoded text, whose min and max cost 0.09 s
    # a million rows (a fifth of the write) and prune nothing: text features are categories, and Delta's add actions
    # carry no column statistics for readers to skip files by
    statistics = [f.name for f, is_encoded in zip(table.schema, encoded) if not is_encoded]
    try:
        pq.write_table(table, name, filesystem=filesystem, store_schema=not any(encoded), write_statistics=statistics)
        size = filesystem.get_file_info(name).size
    except OSError as exc:
        full = FileSystemError.of(exc, "write the data file", path)  # a full disk, no permission: the user's
        with contextlib.suppress(OSError):
            filesystem.delete_file(name)
        if full is not None:
            raise full from None
        raise StoreError(f"cannot write the data file {name} of {path}: {exc}") from None
    return PartFile(name, int(size or 0), table.num_rows)


def read_part(path: StorePath, part: PartFile) -> pa.Table:
    """The rows of a data file written by :func:`write_part`."""
    with _delta._filesystem(path).open_input_file(part.name) as handle:
        return pq.read_table(handle)


def discard_parts(path: StorePath, names: list[str]) -> None:
    """Remove data files that no version holds (a failed or abandoned write); missing ones are fine. A local
    folder left empty (the table did not exist before) goes too, and so does the folder of its kind
    (``features/``) when this was its first table."""
    filesystem = _delta._filesystem(path)
    for name in names:
        try:
            if filesystem.get_file_info(name).type == fs.FileType.File:
                filesystem.delete_file(name)
        except OSError:  # best effort: a file left behind is in no version, so no reader sees it
            pass
    if not isinstance(path, RemotePath):
        with contextlib.suppress(OSError):
            path.rmdir()  # only when empty
            path.parent.rmdir()


def commit_parts(path: StorePath, parts: list[PartFile], schema: pa.Schema, metadata: dict[str, Any], *,
                 mode: str = "overwrite") -> int:
    """Make ``parts``, in this order, the rows of a new version of the table (its whole content, or with
    ``mode="append"`` added to it); the version.

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
            _delta.open_table(path).create_write_transaction(changes, mode, schema, commit_properties=properties)
        else:
            create_table_with_add_actions(str(path), DeltaSchema.from_arrow(schema),
                                          actions, mode="overwrite", configuration=_delta.TABLE_CONFIGURATION,
                                          storage_options=_delta._options(path), commit_properties=properties)
    except CommitFailedError as exc:
        raise StoreError(f"another process wrote the Delta table {path} at the same moment; nothing was written "
                         f"({' '.join(str(exc).split())[:200]})", hint="run the command again") from None
    except Exception as exc:  # deltalake reports a full disk as one of several unrelated types
        full = FileSystemError.of(exc, "commit the Delta table", path)
        if full is None:
            raise
        raise full from None
    return _delta.open_table(path).version()
