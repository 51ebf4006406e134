"""``lockstep predict``: raw rows in, predictions out, with the exact model version recorded on every row.

The input is read in chunks (bounded memory); each chunk is validated
against the input schema recorded with the model, turned into the model's
input the way training did (:func:`lockstep.core.frames.raw_frame`) and
predicted. Rows that break the schema stop the run before anything is
written, or with ``quarantine=True`` go to the quarantine table with their
reasons. The output is written whole or not at all. The run is recorded
with the fingerprints of the input (the validated model inputs) and of the
output.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lockstep._version import __version__
from lockstep.core.errors import SchemaValidationError, UserError
from lockstep.core.fingerprint import TableHasher, fingerprint_json
from lockstep.core.prediction import model_outputs, outputs_table
from lockstep.data.quarantine import set_aside
from lockstep.data.rows import row_hashes
from lockstep.data.schema import validate_table
from lockstep.store import FileOutput, QuarantineRecord, ReadOptions, count_rows, display_path, iter_file_batches

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.core.schema import ModelSchema
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.refs import ModelRef
    from lockstep.registry.versions import LoadedModel
    from lockstep.store import Store

__all__ = ["BatchResult", "predict_batch", "predict_table"]

Progress = Callable[[int, "int | None"], None]


@dataclass
class BatchResult:
    """The outcome of :func:`predict_batch`."""

    run_id: str
    model: str
    version: int
    fingerprint: str
    input: str
    output: str
    rows: int
    quarantined: int
    input_fingerprint: str
    output_fingerprint: str
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def _output_format(output: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = Path(output).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv",):
        return "csv"
    raise UserError(f"cannot tell the output format of {output!r} from its extension",
                    hint="name a .parquet or .csv file, or pass --format parquet|csv|delta")


def predict_table(loaded: LoadedModel, table: pa.Table) -> pa.Table:
    """Predictions for validated raw rows: ``prediction``, then ``proba_<class>`` for classifiers that have them."""
    schema: ModelSchema = loaded.schema
    labels, proba = model_outputs(loaded.model, schema.frame(table), schema.task)
    return outputs_table(labels, proba, schema.classes, schema.task)


def _chunks(config: Config, store: Store, schema: ModelSchema, input_path: Path | None,
            features_version: int | None, chunk_rows: int) -> tuple[str, int | None, Iterator[pa.Table]]:
    if input_path is not None:
        name = display_path(input_path, Path.cwd())
        options = ReadOptions(
            format=None, delimiter=config.data.delimiter if config else ",",
            encoding=config.data.encoding if config else "utf-8",
            null_values=tuple(config.data.null_values) if config and config.data.null_values else None,
            text_columns=tuple(c for c, s in schema.columns.items() if s.dtype == "str"),
            expected_columns=len(schema.columns),
        )
        return name, count_rows(input_path, options), iter_file_batches(input_path, name, options, chunk_rows)
    feature = store.features(config.features.name).info(features_version)
    raw = store.snapshots.read(feature.raw_version)
    name = f"feature set version {feature.version} (raw snapshot {feature.raw_version})"
    return name, raw.num_rows, (raw.slice(i, chunk_rows) for i in range(0, raw.num_rows, chunk_rows))


def _rows_of(chunk: pa.Table, rows: list[int]) -> list[dict[str, Any]]:
    return chunk.take(pa.array(rows)).to_pylist()


def _numbered(source: str, offset: int, row: int) -> tuple[str, int]:
    return source, offset + row + 1


class _BatchRun:
    """One run of :func:`predict_batch`: validates, predicts and stamps each chunk, and counts what it did."""

    def __init__(self, loaded: LoadedModel, source: str, quarantine: bool, progress: Progress | None,
                 total: int | None) -> None:
        self.loaded, self.source, self.quarantine = loaded, source, quarantine
        self.progress, self.total = progress, total
        self.run_id = uuid.uuid4().hex
        self.in_hash, self.out_hash = TableHasher(), TableHasher()
        self.rows = self.quarantined = self.offset = 0
        self.records: list[QuarantineRecord] = []

    def outputs(self, chunks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        """The output of each chunk that has a valid row, with the run id."""
        for chunk in chunks:
            table = self._valid_rows(chunk)
            self.offset += chunk.num_rows
            if table.num_rows == 0:
                continue
            out = self._predict(table)
            self.out_hash.update(out)
            self.rows += out.num_rows
            if self.progress:
                self.progress(self.rows + self.quarantined, self.total)
            yield out.append_column("run_id", pa.array([self.run_id] * out.num_rows, pa.string()))

    def _valid_rows(self, chunk: pa.Table) -> pa.Table:
        """The chunk's rows that pass the model's input schema; the others refused, or set aside."""
        schema = self.loaded.schema
        result = validate_table(chunk, schema.columns, source=self.source, extra_columns="ignore")
        locate = partial(_located, self.source, self.offset)
        if result.column_failures:
            raise SchemaValidationError(self.source, result.failures(locate),
                                        hint="the input must have the columns the model was trained on")
        if not result.row_failures:
            return result.table
        if not self.quarantine:
            raise SchemaValidationError(self.source, result.failures(locate),
                                        hint="fix the rows, or pass --quarantine to set them aside")
        table, set_apart = set_aside(result, partial(_rows_of, chunk), partial(_numbered, self.source, self.offset),
                                     schema.id_column)
        self.records.extend(set_apart)
        self.quarantined += len(set_apart)
        return table

    def _predict(self, table: pa.Table) -> pa.Table:
        """The predictions of validated rows, with their ids and the model's identity on every row."""
        schema, info = self.loaded.schema, self.loaded.info
        model_inputs = table.select(schema.inputs)
        self.in_hash.update(model_inputs)
        if schema.id_column:
            ids = table.column(schema.id_column)
        else:
            ids = pa.array([f"{int(h):016x}" for h in row_hashes(model_inputs)], pa.string())
        predicted = predict_table(self.loaded, table)
        n = table.num_rows
        return pa.table({schema.id_column or "_row_id": ids,
                         **{name: predicted.column(name) for name in predicted.column_names},
                         "model_name": pa.array([info.name] * n, pa.string()),
                         "model_version": pa.array([info.version] * n, pa.int64()),
                         "model_fingerprint": pa.array([info.fingerprint] * n, pa.string())})


def _located(source: str, offset: int, row: int) -> str:
    return f"{source} row {offset + row + 1}"


def predict_batch(config: Config, store: Store, registry: Registry, ref: ModelRef, *,
                  input_path: Path | None = None, features_version: int | None = None, output: str,
                  fmt: str | None = None, quarantine: bool = False, chunk_rows: int = 100_000,
                  progress: Progress | None = None) -> BatchResult:
    """Predict every row of a file (or of a feature set version's raw rows) with a registered model.

    Parameters
    ----------
    config : Config
    store : Store
    registry : Registry
    ref : ModelRef
        The model version (loaded and checked against its fingerprint).
    input_path : Path, optional
        A CSV or Parquet file of raw rows; or ``features_version``.
    features_version : int, optional
        Predict the raw rows behind this feature set version.
    output : str
        A ``.parquet`` or ``.csv`` path, or with ``fmt="delta"`` the name of
        a table in the store (``<store>/predictions/<name>``).
    fmt : {"parquet", "csv", "delta"}, optional
        Default: from the output's extension.
    quarantine : bool
        Set rows that break the schema aside instead of failing.
    chunk_rows : int
        Rows per chunk.
    progress : callable, optional
        Called with ``(rows done, total rows or None)``.

    Returns
    -------
    BatchResult
    """
    if (input_path is None) == (features_version is None):
        raise UserError("give exactly one of an input file (--input) and a feature set version (--features-version)")
    fmt = _output_format(output, fmt) if fmt != "delta" else "delta"
    store.check_writable("record the batch run in")  # before the work, not after it
    started = time.perf_counter()
    loaded = registry.load(ref)
    source, total, chunks = _chunks(config, store, loaded.schema, input_path, features_version, chunk_rows)
    run = _BatchRun(loaded, source, quarantine, progress, total)
    if fmt == "delta":
        destination = _write_delta(store, output, run, chunks)
    else:
        destination = _write_file(Path(output), fmt, run, chunks)
    if run.records:
        store.ensure()
        store.quarantine.append(fingerprint_json([asdict(r) for r in run.records]), run.records,
                                snapshot_version=None, ingested=datetime.now(UTC))
    info = loaded.info
    result = BatchResult(run_id=run.run_id, model=info.name, version=info.version, fingerprint=info.fingerprint,
                         input=source, output=destination, rows=run.rows, quarantined=run.quarantined,
                         input_fingerprint=run.in_hash.hexdigest(), output_fingerprint=run.out_hash.hexdigest(),
                         seconds=round(time.perf_counter() - started, 3))
    store.ensure()
    store.predictions.record_run({**result.to_dict(), "time": datetime.now(UTC).isoformat(timespec="seconds"),
                                  "lockstep_version": __version__})
    return result


def _write_delta(store: Store, name: str, run: _BatchRun, chunks: Iterator[pa.Table]) -> str:
    """Write the run's outputs as a table of the store's predictions, in one commit; its path."""
    outputs = run.outputs(chunks)
    first = next(outputs, None)
    if first is None:
        raise UserError(f"{run.source}: no row to predict")

    def all_batches() -> Iterator[pa.RecordBatch]:
        yield from first.to_batches()
        for piece in outputs:
            yield from piece.cast(first.schema).to_batches()

    store.ensure()
    info = run.loaded.info
    store.predictions.write_table(name, first.schema, all_batches(),
                                  {"kind": "batch", "run_id": run.run_id, "model": info.name,
                                   "version": info.version, "fingerprint": info.fingerprint})
    return str(store.predictions.table_path(name))


def _write_file(path: Path, fmt: str, run: _BatchRun, chunks: Iterator[pa.Table]) -> str:
    """Write the run's outputs to a Parquet or CSV file, whole or not at all; its path."""
    writer = FileOutput(path, fmt)
    try:
        for piece in run.outputs(chunks):
            writer.write(piece)
    except BaseException:
        writer.abort()
        raise
    if run.rows == 0:
        writer.abort()
        raise UserError(f"{run.source}: no row to predict")
    writer.commit()
    return str(path)
