"""``lockstep predict``: raw rows in, predictions out, with the exact model version recorded on every row.

The input is read in pieces (bounded memory): a CSV file in chunks, a
Parquet file, a folder or glob of them, a Delta table or the raw rows behind
a feature set in runs of rows inside their row groups
(:mod:`lockstep.store.inputs`). Each piece is validated against the input
schema recorded with the model, turned into the model's input the way
training did (:func:`lockstep.core.frames.raw_frame`) and predicted: here,
or with ``compute="dask"`` on Dask's workers, which read their pieces
themselves and receive the model once, with its stored code (the results
come back in the input's order, a few pieces ahead at most). Rows that break the schema stop the run before anything is
written, or with ``quarantine=True`` go to the quarantine table with their
reasons. The output is written whole or not at all. The run is recorded
with the fingerprints of the input (the validated model inputs) and of the
output.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lockstep._version import __version__
from lockstep.compute import Compute, Shipped, compute_session, reach, received, ship
from lockstep.core.errors import SchemaValidationError, UserError
from lockstep.core.fingerprint import TableHasher, fingerprint_json
from lockstep.core.prediction import model_outputs, outputs_table
from lockstep.core.sections import ComputeConfig
from lockstep.data.quarantine import set_aside
from lockstep.data.rows import row_hashes
from lockstep.data.schema import validate_table
from lockstep.store import (
    FileOutput,
    FolderOutput,
    InputPiece,
    QuarantineRecord,
    ReadOptions,
    count_rows,
    display_path,
    is_parquet_input,
    iter_file_batches,
    parquet_input,
    read_piece,
    table_input,
)

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
    compute: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _output_format(output: str, fmt: str | None) -> str:
    """``parquet``, ``csv``, or ``folder`` (a folder of Parquet files, one per piece: a path ending in ``/``)."""
    if output.endswith(("/", os.sep)) or Path(output).is_dir():
        if fmt not in (None, "parquet"):
            raise UserError(f"{output!r} is a folder: predictions go there as Parquet files, not {fmt}",
                            hint="drop --format, or name a file")
        return "folder"
    if fmt:
        return fmt
    suffix = Path(output).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv",):
        return "csv"
    raise UserError(f"cannot tell the output format of {output!r} from its extension",
                    hint="name a .parquet or .csv file, a folder ending in /, or pass --format parquet|csv|delta")


def predict_table(loaded: LoadedModel, table: pa.Table) -> pa.Table:
    """Predictions for validated raw rows: ``prediction``, then ``proba_<class>`` for classifiers that have them."""
    schema: ModelSchema = loaded.schema
    labels, proba = model_outputs(loaded.model, schema.frame(table), schema.task)
    return outputs_table(labels, proba, schema.classes, schema.task)


def _chunks(config: Config, store: Store, schema: ModelSchema, input_path: Path | None,
            features_version: int | None, chunk_rows: int,
            piece_rows: int) -> tuple[str, int | None, Iterator[pa.Table | InputPiece]]:
    """The input's name, its rows (when known before reading), and its pieces: tables of ``chunk_rows`` (a CSV
    file), or pieces of ``piece_rows`` to read."""
    if input_path is not None:
        name = display_path(input_path, Path.cwd()) if "*" not in str(input_path) else str(input_path)
        if is_parquet_input(input_path):
            planned = parquet_input(input_path, name, piece_rows)
            return name, planned.rows, iter(planned.pieces)
        options = ReadOptions(
            format=None, delimiter=config.data.delimiter if config else ",",
            encoding=config.data.encoding if config else "utf-8",
            null_values=tuple(config.data.null_values) if config and config.data.null_values else None,
            text_columns=tuple(c for c, s in schema.columns.items() if s.dtype == "str"),
            expected_columns=len(schema.columns),
        )
        return name, count_rows(input_path, options), iter_file_batches(input_path, name, options, chunk_rows)
    feature = store.features(config.features.name).info(features_version)
    name = f"feature set version {feature.version} (raw snapshot {feature.raw_version})"
    planned = table_input(store.snapshots.path, name, piece_rows, store.snapshots.info(feature.raw_version).version)
    return name, planned.rows, iter(planned.pieces)


def _rows_of(chunk: pa.Table, rows: list[int]) -> list[dict[str, Any]]:
    return chunk.take(pa.array(rows)).to_pylist()


def _numbered(source: str, offset: int, row: int) -> tuple[str, int]:
    return source, offset + row + 1


@dataclass
class Piece:
    """What one piece of the input gave: its validated model inputs and output rows (None: no valid row), the
    rows set aside, the rows read."""

    inputs: pa.Table | None
    output: pa.Table | None
    records: list[QuarantineRecord]
    read: int


def predict_piece(loaded: LoadedModel | Shipped, chunk: pa.Table | InputPiece, source: str, offset: int,
                  quarantine: bool, batch_rows: int) -> Piece:
    """Validate and predict one piece (here, or on a Dask worker: a shipped model, a piece read there), in batches
    of ``batch_rows`` rows that start at multiples of ``batch_rows`` in the input: the model sees the same batches
    however the input is stored and wherever the piece runs (a row's outputs can depend on its batch's size, in
    the last bit, through the numerical libraries' kernels)."""
    model: LoadedModel = received(loaded) if isinstance(loaded, Shipped) else loaded
    if isinstance(chunk, InputPiece):
        offset, chunk = chunk.offset, read_piece(chunk)
    else:  # a chunk of a CSV file, read in this process: one batch, as it was read
        batch_rows = max(chunk.num_rows, 1)
    inputs, outputs, records = [], [], []
    for start in range(0, chunk.num_rows, batch_rows):
        table, set_apart = _valid_rows(model, chunk.slice(start, batch_rows), source, offset + start, quarantine)
        records += set_apart
        if table.num_rows:
            model_inputs, output = _predict(model, table)
            inputs.append(model_inputs)
            outputs.append(output)
    if not outputs:
        return Piece(None, None, records, chunk.num_rows)
    return Piece(pa.concat_tables(inputs), pa.concat_tables(outputs), records, chunk.num_rows)


def _valid_rows(loaded: LoadedModel, chunk: pa.Table, source: str, offset: int,
                quarantine: bool) -> tuple[pa.Table, list[QuarantineRecord]]:
    """The chunk's rows that pass the model's input schema; the others refused, or set aside."""
    schema = loaded.schema
    # text stays dictionary-encoded, as read: its distinct values are checked and converted once
    result = validate_table(chunk, schema.columns, source=source, extra_columns="ignore", keep_dictionary=True)
    locate = partial(_located, source, offset)
    if result.column_failures:
        raise SchemaValidationError(source, result.failures(locate),
                                    hint="the input must have the columns the model was trained on")
    if not result.row_failures:
        return result.table, []
    if not quarantine:
        raise SchemaValidationError(source, result.failures(locate),
                                    hint="fix the rows, or pass --quarantine to set them aside")
    table, set_apart = set_aside(result, partial(_rows_of, chunk), partial(_numbered, source, offset),
                                 schema.id_column)
    return table, list(set_apart)


def _predict(loaded: LoadedModel, table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The model inputs of validated rows, and their predictions with their ids and the model's identity."""
    schema, info = loaded.schema, loaded.info
    model_inputs = table.select(schema.inputs)
    if schema.id_column:
        ids = table.column(schema.id_column)
        if pa.types.is_dictionary(ids.type):  # the output's ids are plain values, however the input stored them
            ids = ids.cast(ids.type.value_type)
    else:
        ids = pa.array([f"{int(h):016x}" for h in row_hashes(model_inputs)], pa.string())
    predicted = predict_table(loaded, table)
    n = table.num_rows
    return model_inputs, pa.table({schema.id_column or "_row_id": ids,
                                   **{name: predicted.column(name) for name in predicted.column_names},
                                   "model_name": pa.array([info.name] * n, pa.string()),
                                   "model_version": pa.array([info.version] * n, pa.int64()),
                                   "model_fingerprint": pa.array([info.fingerprint] * n, pa.string())})


class _BatchRun:
    """One run of :func:`predict_batch`: takes each piece's outcome in order, fingerprints and counts it."""

    def __init__(self, loaded: LoadedModel, source: str, quarantine: bool, progress: Progress | None,
                 total: int | None, batch_rows: int) -> None:
        self.loaded, self.source, self.quarantine, self.batch_rows = loaded, source, quarantine, batch_rows
        self.progress, self.total = progress, total
        self.run_id = uuid.uuid4().hex
        self.in_hash, self.out_hash = TableHasher(), TableHasher()
        self.rows = self.quarantined = self.offset = 0
        self.records: list[QuarantineRecord] = []

    def here(self, chunks: Iterator[pa.Table | InputPiece]) -> Iterator[Piece]:
        """Each piece predicted in this process."""
        for chunk in chunks:
            piece = predict_piece(self.loaded, chunk, self.source, self.offset, self.quarantine, self.batch_rows)
            self.offset += piece.read
            yield piece

    def on(self, compute: Compute, chunks: Iterator[pa.Table | InputPiece]) -> Iterator[Piece]:
        """Each piece predicted on a Dask worker, in order; tables read here carry their offset."""
        model = compute.client.scatter(ship(self.loaded, self.loaded.code_modules), broadcast=True, hash=False)
        offsets = _with_offsets(chunks)
        return compute.ordered(_predict_at, offsets, model, self.source, self.quarantine, self.batch_rows,
                               name="lockstep-predict")

    def outputs(self, pieces: Iterator[Piece]) -> Iterator[pa.Table]:
        """The output of each piece that has a valid row, with the run id."""
        for piece in pieces:
            self.records.extend(piece.records)
            self.quarantined += len(piece.records)
            if piece.output is None or piece.inputs is None:
                continue
            self.in_hash.update(piece.inputs)
            self.out_hash.update(piece.output)
            self.rows += piece.output.num_rows
            if self.progress:
                self.progress(self.rows + self.quarantined, self.total)
            out = piece.output
            yield out.append_column("run_id", pa.array([self.run_id] * out.num_rows, pa.string()))


def _with_offsets(chunks: Iterator[pa.Table | InputPiece]) -> Iterator[tuple[pa.Table | InputPiece, int]]:
    offset = 0
    for chunk in chunks:
        yield chunk, offset
        offset += chunk.num_rows if isinstance(chunk, pa.Table) else chunk.rows


def _predict_at(item: tuple[pa.Table | InputPiece, int], model: Shipped, source: str, quarantine: bool,
                batch_rows: int) -> Piece:
    """On a worker: one piece and its offset. The tables sent back are made contiguous first: a pickled slice of an
    Arrow array carries its whole buffer, and the batches are slices of the piece (1 GB sent for 0.3 GB of rows
    of the example's pieces of 1M rows)."""
    chunk, offset = item
    piece = predict_piece(model, chunk, source, offset, quarantine, batch_rows)
    if piece.inputs is not None and piece.output is not None:
        piece.inputs, piece.output = piece.inputs.combine_chunks(), piece.output.combine_chunks()
    return piece


def _located(source: str, offset: int, row: int) -> str:
    return f"{source} row {offset + row + 1}"


def predict_batch(config: Config, store: Store, registry: Registry, ref: ModelRef, *,
                  input_path: Path | None = None, features_version: int | None = None, output: str,
                  fmt: str | None = None, quarantine: bool = False, chunk_rows: int = 100_000,
                  progress: Progress | None = None, compute: str | None = None) -> BatchResult:
    """Predict every row of an input (or of a feature set version's raw rows) with a registered model.

    Parameters
    ----------
    config : Config
    store : Store
    registry : Registry
    ref : ModelRef
        The model version (loaded and checked against its fingerprint).
    input_path : Path, optional
        A CSV or Parquet file of raw rows, a folder or glob of Parquet files, or a Delta table's folder; or
        ``features_version``.
    features_version : int, optional
        Predict the raw rows behind this feature set version.
    output : str
        A ``.parquet`` or ``.csv`` path, a folder (a path ending in ``/``: one Parquet file per piece), or with
        ``fmt="delta"`` the name of a table in the store (``<store>/predictions/<name>``), written as one data
        file per piece.
    fmt : {"parquet", "csv", "delta"}, optional
        Default: from the output's extension.
    quarantine : bool
        Set rows that break the schema aside instead of failing.
    chunk_rows : int
        Rows per piece.
    progress : callable, optional
        Called with ``(rows done, total rows or None)``.
    compute : {"local", "dask"}, optional
        Where the pieces are predicted (default: ``[compute] backend``); the outputs are the same.

    Returns
    -------
    BatchResult
    """
    if (input_path is None) == (features_version is None):
        raise UserError("give exactly one of an input file (--input) and a feature set version (--features-version)")
    fmt = _output_format(output, fmt) if fmt != "delta" else "delta"
    settings = config.compute if config is not None else ComputeConfig()
    reach(settings, compute)
    store.check_writable("record the batch run in")  # before the work, not after it
    started = time.perf_counter()
    loaded = registry.load(ref)
    # a piece (one task on Dask) holds whole batches of chunk_rows, about [compute] partition_rows in all
    piece_rows = chunk_rows * max(1, settings.partition_rows // chunk_rows)
    source, total, chunks = _chunks(config, store, loaded.schema, input_path, features_version, chunk_rows,
                                    piece_rows)
    run = _BatchRun(loaded, source, quarantine, progress, total, chunk_rows)
    with compute_session(settings, compute, threads=1) as session:
        pieces = run.on(session, chunks) if session.distributed else run.here(chunks)
        if fmt == "delta":
            destination = _write_delta(store, output, run, pieces)
        else:
            destination = _write_file(Path(output), fmt, run, pieces)
    return _recorded(store, run, destination, time.perf_counter() - started, session)


def _recorded(store: Store, run: _BatchRun, destination: str, seconds: float, compute: Compute) -> BatchResult:
    """The rows set aside go to the quarantine table, the run to the store's record of batch runs."""
    if run.records:
        store.ensure()
        store.quarantine.append(fingerprint_json([asdict(r) for r in run.records]), run.records,
                                snapshot_version=None, ingested=datetime.now(UTC))
    info = run.loaded.info
    result = BatchResult(run_id=run.run_id, model=info.name, version=info.version, fingerprint=info.fingerprint,
                         input=run.source, output=destination, rows=run.rows, quarantined=run.quarantined,
                         input_fingerprint=run.in_hash.hexdigest(), output_fingerprint=run.out_hash.hexdigest(),
                         seconds=round(seconds, 3), compute=compute.record())
    store.ensure()
    store.predictions.record_run({**result.to_dict(), "time": datetime.now(UTC).isoformat(timespec="seconds"),
                                  "lockstep_version": __version__})
    return result


def _write_delta(store: Store, name: str, run: _BatchRun, pieces: Iterator[Piece]) -> str:
    """Append the run's outputs to a table of the store's predictions, one data file per piece, in one commit; its
    path. Nothing is committed, and the files are removed, if any piece fails."""
    token, names, written = uuid.uuid4().hex, [], []
    schema: pa.Schema | None = None
    table = store.predictions
    try:
        for number, out in enumerate(run.outputs(pieces)):
            if schema is None:
                store.ensure()
                schema = out.schema
            names.append(f"part-{token}-{number:06d}.parquet")
            written.append(table.write_part(name, out.cast(schema), names[-1]))
        if schema is None:
            raise UserError(f"{run.source}: no row to predict")
        info = run.loaded.info
        table.commit_parts(name, written, schema, {"kind": "batch", "run_id": run.run_id, "model": info.name,
                                                   "version": info.version, "fingerprint": info.fingerprint})
    except BaseException:
        if names:
            table.discard_parts(name, names)
        raise
    return str(table.table_path(name))


def _write_file(path: Path, fmt: str, run: _BatchRun, pieces: Iterator[Piece]) -> str:
    """Write the run's outputs to a Parquet or CSV file, or a folder of Parquet files (one per piece), whole or not
    at all; its path."""
    writer = FolderOutput(path) if fmt == "folder" else FileOutput(path, fmt)
    try:
        for out in run.outputs(pieces):
            writer.write(out)
    except BaseException:
        writer.abort()
        raise
    if run.rows == 0:
        writer.abort()
        raise UserError(f"{run.source}: no row to predict")
    writer.commit()
    return str(path)
