"""The feature pipeline partition by partition: in this process one after the other, or on Dask's workers.

Feature pipelines are stateless row by row (checked on every build), so the
rows of a partition transformed alone are those rows transformed with the
whole table. Each partition of the raw snapshot (a run of
``[compute] partition_rows`` rows, :mod:`lockstep.store.parts`) is read,
transformed, checked on its share of the stateless sample, and written as a
data file of the feature table, here or by a worker; this process then
checks that the partitions agree on every column's type, fingerprints the
rows in order, one partition at a time, and commits the files as one
version. No process holds more than a partition, whatever the size of the
snapshot; nothing is committed if any partition fails, and the files
written for it are removed.

A column's type can depend on the rows it holds: an integer column with a
missing value is float in pandas, a text column with no value at all comes
out as missing numbers. A partition whose column is all missing takes the
type of the others, and integers and floats together are floats, as they are
for the whole table; any other disagreement is refused, naming the column.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from lockstep.compute import fork as forked
from lockstep.core.dtypes import dtype_of
from lockstep.core.errors import PipelineError
from lockstep.core.fingerprint import TableHasher
from lockstep.core.usercode import load_object, parse_ref
from lockstep.data.splits import SPLIT_VALUES
from lockstep.features.pipeline import check_stateless, make_transformer, sample_rows
from lockstep.features.table import IDENTITY, feature_table, first_missing_rows, transform_raw
from lockstep.store import FeatureTable, SnapshotInfo, SnapshotTable
from lockstep.store.location import is_remote
from lockstep.store.parts import PartFile, Partition, delta_schema

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from lockstep.compute import Compute
    from lockstep.core.config import Config

__all__ = ["PartitionedFeatures", "build_partitioned"]

Progress = Callable[[str], None]

#: Rows of a partition from which its table is assembled and written by a forked child during the check: below,
#: forking (about 10 ms for a process holding 1M rows) and the child's start cost more than the overlap gains.
FORK_ROWS = 100_000


@dataclass(frozen=True)
class _Done:
    """What a worker reports about its partition: the file written, and what the version's record needs."""

    part: PartFile
    schema: pa.Schema
    all_missing: frozenset[str]
    splits: tuple[int, ...]
    checked: int
    fingerprint: str | None = None


@dataclass(frozen=True)
class PartitionedFeatures:
    """The outcome of the partitions' work, before the version is committed.

    Attributes
    ----------
    parts : list of PartFile
        The data files, in row order.
    schema : pyarrow.Schema
        The feature table's schema.
    fingerprint : str
    rows : int
    dtypes : dict
        Feature column to logical type.
    splits : dict
        Rows per split.
    parity : dict
        The stateless check, summed over the partitions.
    """

    parts: list[PartFile]
    schema: pa.Schema
    fingerprint: str
    rows: int
    dtypes: dict[str, str]
    splits: dict[str, int]
    parity: dict[str, object]


def feature_partition(config: Config, snapshots: SnapshotTable, table: FeatureTable, snapshot: SnapshotInfo,
                      partition: Partition, schema: pa.Schema, check_rows: int, name: str, *,
                      whole: bool = False, fork: bool = False) -> _Done:
    """Run on a worker: one partition of the raw snapshot to a data file of feature rows; with ``whole`` (the
    partition is the whole snapshot) also the feature set's fingerprint, of the rows as written.

    With ``fork`` (lockstep's own process, a local store), the feature table is assembled, written and
    fingerprinted by a forked copy of this process (:mod:`lockstep.compute.fork`) while the pipeline is checked
    here: lockstep's code there, the user's pipeline here, each on a core of its own. Else the file is written by
    a thread during the check."""
    raw = snapshots.read_partition(partition, schema, text_as_dictionary=True)
    ref = config.features.pipeline or IDENTITY
    factory = _factory(config)
    where = f"raw rows {partition.offset + 1:,} to {partition.offset + partition.rows:,}"
    try:
        started = time.perf_counter()
        frame, features = transform_raw(config, raw, factory, ref)
        ids = raw.column(snapshot.id_column).to_numpy(zero_copy_only=False)
        rows = sample_rows(len(frame), first_missing_rows(raw, list(frame.columns)), check_rows)

        def check() -> int:
            parity = check_stateless(lambda: make_transformer(factory, ref), frame, features, rows, ref, ids)
            return parity.rows_checked

        def write() -> _Done:
            return _assemble_and_write(config, raw, features, snapshot, ref, table, name, whole, check=None)

        if not (fork and partition.rows >= FORK_ROWS and forked.available()):
            return _assemble_and_write(config, raw, features, snapshot, ref, table, name, whole, check=check)
        timeout = max(60.0, 4 * (time.perf_counter() - started))  # a child that hangs is stopped, its work done here
        checked, done = _check_beside(forked.start(write), check, timeout)
    except PipelineError as exc:  # positions in a message are the partition's: say which rows they are
        exc.message = f"{exc.message} ({where}; positions counted from the first of them)"
        raise
    return dataclasses.replace(done, checked=checked)


def _check_beside(child: forked.Forked[_Done], check: Callable[[], int], timeout: float) -> tuple[int, _Done]:
    """The rows checked here, and what ``child`` made meanwhile. An error of the table's own comes first, as it
    does without the child; a check or a wait that is interrupted stops the child."""
    try:
        try:
            checked = check()
        except PipelineError:
            child.result(timeout)
            raise
        return checked, child.result(timeout)
    finally:
        child.cancel()  # nothing to stop once the child has answered


def _assemble_and_write(config: Config, raw: pa.Table, features: pd.DataFrame, snapshot: SnapshotInfo, ref: str,
                        table: FeatureTable, name: str, whole: bool, *, check: Callable[[], int] | None) -> _Done:
    """The feature table of ``features`` as a data file (and its fingerprint with ``whole``), with ``check``, the
    stateless check, run while a thread writes the file (Arrow writes without the GIL). Leaving the block waits
    for the write, also when the check fails; the caller then removes the file."""
    output, _, codes = feature_table(config, raw, features, snapshot.id_column, snapshot.target, ref,
                                     decoded=False)
    with ThreadPoolExecutor(1, thread_name_prefix="lockstep-write") as writer:
        written = writer.submit(table.write_part, output, name)
        checked = check() if check is not None else 0
        fingerprint = _fingerprint(output) if whole else None
    part = written.result()
    missing = frozenset(c for c in output.column_names if output.num_rows and output.column(c).null_count
                        == output.num_rows)
    counts = tuple(int((codes == i).sum()) for i in range(len(SPLIT_VALUES)))
    return _Done(part, delta_schema(output.schema), missing, counts, checked, fingerprint)


def _fingerprint(output: pa.Table) -> str:
    """The fingerprint of a whole snapshot's feature rows, from the table as written (text dictionary-encoded or
    not, a fingerprint reads values by their logical types, and Parquet keeps them: the same as the file read back,
    as a larger snapshot's partitions are). Not in the writer thread: hashed there beside the check, it waited for
    the GIL at every block (0.2-0.37 s instead of 0.15 s on 1M rows)."""
    hasher = TableHasher()
    hasher.update(output)
    return hasher.hexdigest()


def _feature_task(item: tuple[Partition, int, str, bool, bool], config: Config, snapshots: SnapshotTable,
                  table: FeatureTable, snapshot: SnapshotInfo, schema: pa.Schema) -> _Done:
    partition, check_rows, name, whole, fork = item
    return feature_partition(config, snapshots, table, snapshot, partition, schema, check_rows, name, whole=whole,
                             fork=fork)


def _factory(config: Config) -> Callable[[], object] | None:
    """The feature pipeline's factory on a worker: imported fresh from the project folder when the worker sees it
    (a cluster on this machine, or a shared file system), else from the module the session sent it."""
    ref = config.features.pipeline
    if ref is None:
        return None
    if config.project_dir.is_dir():
        return load_object(ref, config.project_dir)
    module, attr = parse_ref(ref)
    return getattr(importlib.reload(importlib.import_module(module)), attr)


def build_partitioned(config: Config, snapshots: SnapshotTable, table: FeatureTable, snapshot: SnapshotInfo,
                      compute: Compute, step: Progress) -> PartitionedFeatures:
    """Transform every partition of ``snapshot`` on the workers of ``compute``; the data files and their record.

    Raises
    ------
    PipelineError, CodeError, LeakageError
        From the pipeline, on any partition; the files already written are removed.
    ServiceError
        When workers kept dying under the work.
    """
    partitions, schema = snapshots.partitions(snapshot.version, config.compute.partition_rows)
    where = f"on {compute.workers} Dask worker(s)" if compute.distributed else "in this process"
    step(f"transforming {len(partitions)} partition(s) of raw snapshot {snapshot.version} {where}")
    token = uuid.uuid4().hex
    names = [f"part-{token}-{p.index:06d}.parquet" for p in partitions]
    shares = _check_shares(config.features.parity_rows, [p.rows for p in partitions])
    try:
        return compute.retrying(lambda: _run(config, snapshots, table, snapshot, partitions, schema, names, shares,
                                             compute, step), "the feature pipeline")
    except BaseException:
        table.discard_parts(names + [_recast_name(n) for n in names])
        raise


def _run(config: Config, snapshots: SnapshotTable, table: FeatureTable, snapshot: SnapshotInfo,
         partitions: list[Partition], schema: pa.Schema, names: list[str], shares: list[int], compute: Compute,
         step: Progress) -> PartitionedFeatures:
    fork = not compute.distributed and not is_remote(table.path)  # a Dask worker's process, S3's clients: no fork
    work = [(p, shares[p.index], names[p.index], len(partitions) == 1, fork) for p in partitions]
    done = compute.map(_feature_task, work, config, snapshots, table, snapshot, schema, name="lockstep-features")
    target = _unified(done)
    if len(done) == 1 and done[0].fingerprint is not None:  # the whole snapshot in one: fingerprinted as written
        return _features(done, target, snapshot, [done[0].part], done[0].fingerprint, done[0].part.rows)
    step(f"fingerprinting the {len(done)} partition(s)")
    hasher, parts = TableHasher(), []
    for outcome in done:
        part = outcome.part
        if outcome.schema != target:  # a partition whose column came out of another type: the whole table's
            rows = table.read_part(part).cast(target)
            part = table.write_part(rows, _recast_name(part.name))
            table.discard_parts([outcome.part.name])
        else:
            rows = table.read_part(part)
        hasher.update(rows)
        parts.append(part)
    return _features(done, target, snapshot, parts, hasher.hexdigest(), hasher.rows)


def _features(done: list[_Done], target: pa.Schema, snapshot: SnapshotInfo, parts: list[PartFile],
              fingerprint: str, rows: int) -> PartitionedFeatures:
    splits = [sum(o.splits[i] for o in done) for i in range(len(SPLIT_VALUES))]
    features = [f for f in target if f.name not in (snapshot.id_column, snapshot.target, "split")]
    return PartitionedFeatures(
        parts=parts, schema=target, fingerprint=fingerprint, rows=rows,
        dtypes={f.name: dtype_of(f.type) for f in features},
        splits={name: splits[i] for i, name in enumerate(SPLIT_VALUES) if i < 3 or splits[i]},
        parity={"rows_checked": sum(o.checked for o in done), "identical": True})


def _recast_name(name: str) -> str:
    return name.replace(".parquet", "-cast.parquet")


def _check_shares(total: int, sizes: list[int]) -> list[int]:
    """The stateless check's rows per partition: ``total`` shared in proportion to their sizes, as many in all as on
    the whole table."""
    rows, before, shares = sum(sizes) or 1, 0, []
    for size in sizes:
        share = round(total * (before + size) / rows) - round(total * before / rows)
        shares.append(min(share, size))
        before += size
    return shares


def _unified(done: list[_Done]) -> pa.Schema:
    """The one schema of the partitions' outputs (see the module's documentation), or a PipelineError."""
    first = done[0].schema
    for d in done:
        if d.schema.names != first.names:
            raise PipelineError(f"the feature pipeline gives different columns on different partitions of the raw "
                                f"rows ({first.names} and {d.schema.names})", hint="output the same columns "
                                "whatever the rows")
    fields = []
    for position, field in enumerate(first):
        types = {d.schema.field(position).type for d in done if field.name not in d.all_missing}
        if not types:
            types = {d.schema.field(position).type for d in done}
        if len(types) > 1 and all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types):
            types = {pa.float64()}
        if len(types) > 1:
            shown = " and ".join(sorted(str(t) for t in types))
            raise PipelineError(f"the feature pipeline gives column {field.name!r} different types on different "
                                f"partitions of the raw rows ({shown})", hint="give every feature one type "
                                "whatever the rows: cast it in the pipeline")
        fields.append(field.with_type(types.pop()))
    return pa.schema(fields)
