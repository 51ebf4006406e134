"""Ingest: read the raw source, validate it, and snapshot it when it changed.

The steps, in order; nothing is written unless every check passes:

1. read the source (:func:`lockstep.store.read_source`);
2. convert to the declared types and validate with pandera, collecting every
   failure (:func:`lockstep.data.schema.validate_table`); ids must be unique;
3. with ``quarantine=True``, set failing rows aside (they go to the
   quarantine table, with their reasons) instead of refusing the data;
4. derive the row id when ``[data] id`` is not set;
5. leakage checks: the target among the declared features, rows shared
   between train and valid/test;
6. fingerprint the table; write a new snapshot version only if the
   fingerprint differs from the latest one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockstep._version import __version__
from lockstep.core.errors import SchemaFailure, SchemaValidationError, SourceError
from lockstep.core.fingerprint import fingerprint_json, fingerprint_table
from lockstep.core.lazy import lazy_module
from lockstep.core.sections import DerivedId
from lockstep.store import QuarantineRecord, SnapshotInfo, hash_source_files, locate_source, read_source

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from lockstep.core.config import Config
    from lockstep.data import leakage
    from lockstep.data import quarantine as quarantine_rows
    from lockstep.data import rows as row_ids
    from lockstep.data import schema as schema_rules
    from lockstep.data import splits as split_keys
    from lockstep.data.leakage import SharedRows
    from lockstep.data.schema import RowFailure, ValidationResult
    from lockstep.store import SourceData, Store
else:  # the checks (Arrow, pandas, pandera): imported when the data changed, not to find that it did not
    pa = lazy_module("pyarrow")
    leakage = lazy_module("lockstep.data.leakage")
    quarantine_rows = lazy_module("lockstep.data.quarantine")
    row_ids = lazy_module("lockstep.data.rows")
    schema_rules = lazy_module("lockstep.data.schema")
    split_keys = lazy_module("lockstep.data.splits")

__all__ = ["IngestResult", "ingest"]

Progress = Callable[[str], None]


@dataclass
class IngestResult:
    """The outcome of :func:`ingest`.

    Attributes
    ----------
    snapshot : SnapshotInfo
        The new snapshot, or the latest one when the data was unchanged.
    changed : bool
        Whether a new snapshot version was written.
    quarantined : int
        Source rows set aside in the quarantine table.
    quarantine_failures : list of SchemaFailure
        The rules those rows broke.
    shared : SharedRows
        Rows shared between train and valid/test.
    source : dict
        What was read.
    cached : bool
        True when the inputs (source files, configuration, lockstep version)
        were those of the latest snapshot, so nothing was read or validated.
    """

    snapshot: SnapshotInfo
    changed: bool
    quarantined: int = 0
    quarantine_failures: list[SchemaFailure] = field(default_factory=list)
    shared: SharedRows | None = None
    source: dict = field(default_factory=dict)
    cached: bool = False

    def to_dict(self) -> dict:
        out = self.snapshot.to_dict()
        out["changed"] = self.changed
        out["cached"] = self.cached
        out["quarantined"] = self.quarantined
        out["quarantine_failures"] = [f.to_dict() for f in self.quarantine_failures]
        out["shared_rows"] = self.shared.to_dict() if self.shared else None
        return out


def ingest(config: Config, store: Store, *, source: Path | None = None, quarantine: bool = False,
           force: bool = False, progress: Progress | None = None) -> IngestResult:
    """Validate the raw source and snapshot it if it changed.

    Parameters
    ----------
    config : Config
    store : Store
    source : Path, optional
        Read this file or glob instead of ``[data] source``.
    quarantine : bool, default False
        Set rows that break the schema aside in the quarantine table instead
        of refusing the whole source.
    force : bool, default False
        Read and validate the source even when its files and the
        configuration are those of the latest snapshot.
    progress : callable, optional
        Called with the name of each step as it starts.

    Returns
    -------
    IngestResult

    Raises
    ------
    SourceError, SchemaValidationError, LeakageError
        Nothing is written in any of these cases.
    """
    step = progress or (lambda _name: None)
    data = config.data
    leakage.check_declared_features(config)

    location = locate_source(data, config.project_dir, override=source)
    files, inputs, cached = _source_inputs(config, store, location, quarantine, force, step)
    if cached is not None:
        return cached
    step("reading the source")
    src = read_source(data, config.project_dir, location=location, files=files)

    step("validating against the schema")
    table, records, quarantine_failures = _valid_rows(src, config, quarantine, step)
    if data.id is None:
        step("deriving row ids")
        table = table.add_column(0, DerivedId, row_ids.derive_row_ids(table))

    step("checking for leakage")
    splits = split_keys.assign_splits(table, data.id_column, config.split, config.feature_inputs)
    shared = leakage.shared_rows(table, data.id_column, splits, config.feature_inputs)
    leakage.check_shared_rows(shared, config.split.max_shared_fraction)

    step("fingerprinting")
    fingerprint = fingerprint_table(table)

    # from reading the latest snapshot to writing the next: one ingest at a time (another waits, then finds
    # this one's snapshot and writes nothing twice)
    store.ensure()
    with store.lock("ingest", "ingest"):
        return _commit(config, store, table, fingerprint, records, quarantine_failures, shared, src, inputs, step)


def _source_inputs(config: Config, store: Store, location: Any, quarantine: bool, force: bool, step: Progress,
                   ) -> tuple[Any, str, IngestResult | None]:
    """The source files' fingerprints and the ingest's inputs fingerprint; with the latest snapshot as the result
    when those inputs are the ones it was made from (a database source is always read)."""
    if location.kind == "sql":
        return None, "", None
    step("fingerprinting the source files")
    files = hash_source_files(location, config.project_dir)
    inputs = _inputs_fingerprint(config, files, quarantine)
    latest = store.snapshots.latest()
    if not force and latest is not None and latest.inputs == inputs:
        return files, inputs, IngestResult(snapshot=latest, changed=False, quarantined=latest.quarantined,
                                           source=latest.source, cached=True)
    return files, inputs, None


def _valid_rows(src: SourceData, config: Config, quarantine: bool, step: Progress,
                ) -> tuple[pa.Table, list[QuarantineRecord], list[SchemaFailure]]:
    """The source's rows that pass the schema; the others refuse the source, or with ``quarantine`` are set aside.

    Returns the rows kept, the quarantine records and the failures behind them.
    """
    result = _validate(src, config)
    if result.column_failures:
        raise SchemaValidationError(src.description, result.failures(src.locate),
                                    hint="column problems cannot be quarantined: fix the data or [data.schema]")
    if not result.row_failures:
        return result.table, [], []
    if not quarantine:
        raise SchemaValidationError(src.description, result.failures(src.locate))
    step("setting failing rows aside")
    table, records = quarantine_rows.set_aside(result, partial(_raw_rows, src), src.part_of, config.data.id)
    failures = result.failures(src.locate)
    if table.num_rows == 0:
        raise SchemaValidationError(src.description, failures,
                                    hint="every row failed: nothing to ingest; fix the data or the schema")
    return table, records, failures


def _commit(config: Config, store: Store, table, fingerprint: str, records: list, quarantine_failures: list,
            shared, src, inputs: str, step: Progress) -> IngestResult:
    """Write the quarantine and the snapshot, if the data changed since the latest snapshot."""
    data = config.data
    latest = store.snapshots.latest()
    changed = latest is None or latest.fingerprint != fingerprint
    next_version = (latest.version + 1) if latest is not None else 0

    if records:
        # The quarantine is written before the snapshot that leaves those rows
        # out, so that no row is ever dropped silently; a batch already there
        # (a re-run) is not written twice.
        step("writing the quarantine")
        batch = fingerprint_json([asdict(r) for r in records])
        store.quarantine.append(batch, records, snapshot_version=next_version if changed or latest is None else
                                latest.version,
                                ingested=datetime.now(UTC))

    if not changed and latest is not None:
        return IngestResult(snapshot=latest, changed=False, quarantined=len(records),
                            quarantine_failures=quarantine_failures, shared=shared, source=src.metadata())

    step("writing the snapshot")
    info = SnapshotInfo(
        version=next_version,
        fingerprint=fingerprint,
        rows=table.num_rows,
        column_names=table.column_names,
        schema={name: (data.columns[name].dtype if name in data.columns else "str") for name in table.column_names},
        id_column=data.id_column,
        target=data.target,
        source=src.metadata(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        lockstep_version=__version__,
        quarantined=len(records),
        declared_schema=config.normalized()["data"]["schema"],
        inputs=inputs,
    )
    snapshot = store.snapshots.write(table, info)
    return IngestResult(snapshot=snapshot, changed=True, quarantined=len(records),
                        quarantine_failures=quarantine_failures, shared=shared, source=src.metadata())


def _inputs_fingerprint(config: Config, files: list, quarantine: bool) -> str:
    """Everything an ingest's result depends on, when the source is files."""
    normalized = config.normalized()
    return fingerprint_json({
        "files": [f.to_dict() for f in files],
        "config": {key: normalized[key] for key in ("data", "split", "features")},
        "quarantine": quarantine,
        "lockstep": __version__,
    })


def _validate(src: SourceData, config: Config) -> ValidationResult:
    """Validate each part of the source; failures carry rows numbered across all parts."""
    data = config.data
    typed_parts: list[pa.Table] = []
    column_failures: list[SchemaFailure] = []
    row_failures: list[RowFailure] = []
    for part in src.parts:
        result = schema_rules.validate_table(part.table, data, source=part.name)
        column_failures += result.column_failures
        for f in result.row_failures:
            f.rows = [r + part.row_offset for r in f.rows]
            row_failures.append(f)
        typed_parts.append(result.table)
    if column_failures:
        return schema_rules.ValidationResult(table=pa.table({}), column_failures=column_failures,
                                             row_failures=row_failures)
    try:
        table = pa.concat_tables(typed_parts) if len(typed_parts) > 1 else typed_parts[0]
    except pa.ArrowInvalid as exc:
        raise SourceError(f"the files of {src.description} do not share one schema: {exc}",
                          hint="a datetime column may have a time zone in some files but not in others") from None
    if data.id is not None:
        dupes = leakage.duplicate_ids(table.column(data.id))
        if dupes:
            rows = sorted(r for positions in dupes.values() for r in positions)
            values = table.column(data.id).take(pa.array(rows)).to_pylist()
            rule = f"unique id ({len(dupes)} id(s) occur more than once)"
            row_failures.append(schema_rules.RowFailure(column=data.id, rule=rule, rows=rows, values=values))
    return schema_rules.ValidationResult(table=table, row_failures=row_failures)


def _raw_rows(src: SourceData, rows: list[int]) -> list[dict[str, Any]]:
    """The values of rows of the source, as read, by their position in the combined table."""
    out = []
    for row in rows:
        name, _ = src.part_of(row)
        part = next(p for p in src.parts if p.name == name and p.row_offset <= row)
        out.append(part.table.slice(row - part.row_offset, 1).to_pylist()[0])
    return out
