"""The monitored window: raw rows from a batch file, or the inputs the service recorded in the audit log.

Either way the window arrives in chunks of typed raw inputs (bounded
memory), each with the predicted scores when the audit log recorded them.
Values that do not convert to their column's type become missing and are
counted; no other schema rule is applied, since categories the schema does
not allow and values out of range are exactly what monitoring looks for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lockstep.core.errors import UserError
from lockstep.data.schema import convert_table
from lockstep.inference.runtime import records_table
from lockstep.profiles.scores import answer_scores
from lockstep.store import (
    InputPiece,
    ReadOptions,
    count_rows,
    display_path,
    is_parquet_input,
    iter_file_batches,
    parquet_input,
    read_piece,
)

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from lockstep.core.config import Config
    from lockstep.core.schema import ModelSchema
    from lockstep.registry.versions import VersionInfo
    from lockstep.store import Store

__all__ = ["Chunk", "Window", "audit_window", "file_window", "piece_chunk"]


@dataclass
class Chunk:
    """Typed raw inputs, how many values did not convert, and the recorded scores if any."""

    table: pa.Table
    invalid: int = 0
    scores: np.ndarray | None = None


@dataclass
class Window:
    """Where the rows come from, how many there are (when known), and the chunks.

    ``pieces``: for an input read by pieces (Parquet), the pieces, which a Dask worker reads itself with
    :func:`piece_chunk`; ``source`` names the input in messages.
    """

    description: str
    total: int | None
    chunks: Iterator[Chunk]
    pieces: list[InputPiece] | None = None
    source: str = ""


def piece_chunk(piece: InputPiece, schema: ModelSchema, source: str) -> Chunk:
    """One piece of a Parquet input, typed as the model reads it."""
    return _typed(read_piece(piece), schema, source)


def _typed(table: pa.Table, schema: ModelSchema, source: str) -> Chunk:
    missing = [c for c in schema.inputs if c not in table.column_names]
    if missing:
        raise UserError(f"{source} has no column(s) {', '.join(missing)} that the model reads",
                        hint="monitor data with the model's input columns (`lockstep models show`)")
    typed, failures = convert_table(table.select(schema.inputs), schema.input_schema, keep_dictionary=True)
    return Chunk(typed, invalid=sum(len(f.rows) for f in failures))


def _prefetched(batches: Iterator[Any]) -> Iterator[Any]:
    """Read the next batch in a thread while the current one is summarized (both release the GIL)."""
    iterator = iter(batches)
    done = object()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lockstep-read") as pool:
        pending = pool.submit(next, iterator, done)
        while True:
            batch = pending.result()
            if batch is done:
                return
            pending = pool.submit(next, iterator, done)
            yield batch


def file_window(path: Path, schema: ModelSchema, config: Config | None, chunk_rows: int) -> Window:
    """The rows of a CSV or Parquet file (or a folder or glob of Parquet files, or a Delta table), in chunks of
    ``chunk_rows``."""
    globbed = bool(set("*?[") & set(str(path)))
    if not path.exists() and not globbed:
        raise UserError(f"{path} does not exist", hint="give a CSV or Parquet file of raw rows with --data")
    name = display_path(path, Path.cwd()) if not globbed else str(path)
    if is_parquet_input(path):  # pieces of chunk_rows rows: the same batches here and on Dask's workers
        planned = parquet_input(path, name, chunk_rows)
        chunks = (piece_chunk(piece, schema, name) for piece in planned.pieces)
        return Window(f"{name} ({planned.rows:,} rows)", planned.rows, _prefetched(chunks), planned.pieces, name)
    return _file_chunks(path, name, schema, config, chunk_rows)


def _file_chunks(path: Path, name: str, schema: ModelSchema, config: Config | None, chunk_rows: int) -> Window:
    """A CSV or Parquet file in chunks of ``chunk_rows``."""
    data = config.data if config else None
    options = ReadOptions(
        format=None, delimiter=data.delimiter if data else ",", encoding=data.encoding if data else "utf-8",
        null_values=tuple(data.null_values) if data and data.null_values else None,
        text_columns=tuple(c for c, s in schema.columns.items() if s.dtype == "str"),
        expected_columns=None,
    )
    total = count_rows(path, options)
    batches = iter_file_batches(path, name, options, chunk_rows, columns=list(schema.inputs),
                                text_as_dictionary=True)
    chunks = (_typed(batch, schema, name) for batch in _prefetched(batches))
    return Window(f"{name} ({total:,} rows)" if total is not None else name, total, chunks, source=name)


def _parse(value: Any, dtype: str) -> Any:
    if dtype in ("datetime", "date") and isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value


def audit_window(store: Store, info: VersionInfo, schema: ModelSchema, since: datetime | None,
                 until: datetime | None, chunk_rows: int) -> Window:
    """The inputs of the successful prediction requests to ``info`` between ``since`` and ``until``."""
    selection: dict[str, Any] = dict(since=since, until=until, model=f"{info.name}/{info.version}", endpoint="/predict",
                     status=200)
    span = f"{since.isoformat() if since else 'the start'} to {until.isoformat() if until else 'now'}"
    description = f"the audit log of {info.name}/{info.version}, {span}"
    dtypes = {name: schema.columns[name].dtype for name in schema.inputs}
    # a first pass over one small column counts the rows (for the progress bar and the minimum window);
    # the second streams the inputs and outputs: the log is never held whole
    # records arrive as JSON and become Python dicts: chunks of 20,000 keep them small (a larger chunk is
    # no faster, the work is per record)
    step = min(chunk_rows, 20_000)
    requests = rows = 0
    for batch in store.audit.scan(**selection, columns=["rows"]):
        requests += batch.num_rows
        rows += int(sum(v or 0 for v in batch.column(0).to_pylist()))

    def chunks() -> Iterator[Chunk]:
        records: list[dict] = []
        scores: list[float] = []
        for batch in store.audit.scan(**selection, columns=["inputs", "outputs"]):
            for inputs, outputs in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                request = json.loads(inputs) if inputs else []
                request = request if isinstance(request, list) else [request]
                records += [{k: _parse(r.get(k), dtypes[k]) for k in schema.inputs} for r in request]
                out = json.loads(outputs) if outputs else {}
                if out.get("probabilities") or out.get("predictions") is not None:
                    scores.extend(answer_scores(out.get("predictions"), out.get("probabilities"), schema).tolist())
                if len(records) >= step:
                    yield _chunk(records, scores)
                    records, scores = [], []
        if records:
            yield _chunk(records, scores)

    def _chunk(records: list[dict], scores: list[float]) -> Chunk:
        values = np.asarray(scores, dtype=np.float64) if len(scores) == len(records) else None
        return Chunk(records_table(records, schema), scores=values)

    return Window(description + f" ({rows:,} rows in {requests:,} requests)", rows, chunks())
