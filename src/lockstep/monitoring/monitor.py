"""``lockstep monitor``: a window of rows against the model's reference profile, in one pass.

For every chunk of the window (:mod:`lockstep.monitoring.window`): the raw
inputs are summarized on the reference's grids and categories; unless
``inputs_only``, the registered feature step turns them into the features
the model sees (summarized too), and the model's scores are computed (or
taken from the audit log, which recorded them). Memory holds one chunk and
the summaries, never the window. Then every column's statistics
(:mod:`lockstep.profiles.stats`) are judged against ``[monitor]``
(:mod:`lockstep.monitoring.drift`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockstep.compute import Compute, Shipped, compute_session, reach, received, ship
from lockstep.core.errors import NotFoundError, UserError
from lockstep.monitoring.drift import ColumnDrift, DriftReport, judge_column
from lockstep.monitoring.window import Chunk, Window, audit_window, file_window, piece_chunk
from lockstep.profiles.profile import PROFILE_VERSION
from lockstep.profiles.scores import model_scores
from lockstep.profiles.stats import categorical_stats, numeric_stats
from lockstep.profiles.summary import arrow_category_values, arrow_numeric_values, numeric_values, summary_from_dict
from lockstep.store import InputPiece

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.refs import ModelRef
    from lockstep.registry.versions import LoadedModel
    from lockstep.store import Store

__all__ = ["monitor", "reference_of"]

Progress = Callable[[int, "int | None"], None]


def reference_of(registry: Registry, info) -> dict[str, Any]:
    """A version's reference profile, checked to be of the current format."""
    profile = registry.run_json(info, "reference_profile.json")
    if profile.get("version") != PROFILE_VERSION:
        raise NotFoundError(f"{info.name}/{info.version} has a reference profile of an older format",
                            hint="train it again with this version of lockstep (lockstep train --force, then promote) "
                                 "to monitor it")
    return profile


def _summaries(group: dict[str, dict]) -> dict[str, Any]:
    return {name: summary_from_dict(raw) for name, raw in group.items()}


def _update(summary: Any, series) -> None:
    if summary.kind == "numeric":
        summary.update(numeric_values(series))
    else:
        summary.update(series)


def _update_arrow(summary: Any, column, dtype: str) -> None:
    """Add a typed raw Arrow column, read the way the raw frame reads it (without building the frame)."""
    if summary.kind == "numeric":
        summary.update(arrow_numeric_values(column, dtype))
    else:
        summary.add_counts(*arrow_category_values(column, dtype), rows=len(column))


def monitor(config: Config, store: Store, registry: Registry, ref: ModelRef, *, data: Path | None = None,
            since: datetime | None = None, until: datetime | None = None, inputs_only: bool = False,
            chunk_rows: int = 250_000, progress: Progress | None = None, loaded: LoadedModel | None = None,
            compute: str | None = None) -> DriftReport:
    """Compare a window with the reference profile of a model version.

    Parameters
    ----------
    config : Config
    store : Store
    registry : Registry
    ref : ModelRef
    data : Path, optional
        A CSV or Parquet file of raw rows; otherwise the audit log between
        ``since`` and ``until``.
    inputs_only : bool, default False
        Only the raw inputs: no features, no predictions (the fastest).
    chunk_rows : int
    progress : callable, optional
        Called with ``(rows done, total rows or None)``.
    compute : {"local", "dask"}, optional
        Where the window is summarized (default: ``[compute] backend``); the statistics are the same.

    Returns
    -------
    DriftReport
    """
    started = time.perf_counter()
    if data is not None and (since is not None or until is not None):
        raise UserError("give either --data or a time window (--since/--until), not both")
    reach(config.compute, compute)
    loaded = loaded or registry.load(ref)
    info, schema = loaded.info, loaded.schema
    profile = reference_of(registry, info)
    if data is not None:
        window = file_window(Path(data), schema, config, chunk_rows)
    else:
        window = audit_window(store, info, schema, since, until, chunk_rows)
    references = {group: _summaries(profile[group]) for group in ("raw", "features", "prediction")}
    current = {group: {name: s.empty_like() for name, s in summaries.items()}
               for group, summaries in references.items()}
    with compute_session(config.compute, compute, threads=1) as session:
        rows, invalid = _summarize(window, current, loaded, inputs_only, progress, session)
    if rows == 0:
        raise UserError(f"{window.description}: no rows to monitor",
                        hint="widen the time window (--since/--until) or give a file with --data")

    cfg = config.monitor
    columns = _judged(references, current, ("raw",) if inputs_only else ("raw", "features", "prediction"), cfg)
    return DriftReport(model=info.name, version=info.version, fingerprint=info.fingerprint,
                       window=window.description, rows=rows, invalid=invalid, columns=columns,
                       thresholds=cfg.model_dump(mode="json"), time=datetime.now(UTC).isoformat(timespec="seconds"),
                       seconds=time.perf_counter() - started, min_rows=cfg.min_rows, compute=session.record())


def _summarize(window: Window, current: dict[str, dict[str, Any]], loaded: LoadedModel, inputs_only: bool,
               progress: Progress | None, compute: Compute) -> tuple[int, int]:
    """Add every chunk of the window to the current summaries (raw inputs, features, scores); rows and invalid.

    Here, each chunk is added as it is read. On Dask, each worker summarizes its pieces (or the chunks read
    here) on the reference's grids, and the summaries are merged here in the window's order: the sums are
    exact and the counts integers, so the result is the one of a single pass.
    """
    rows = invalid = 0
    if compute.distributed:
        model = compute.client.scatter(ship(loaded, loaded.code_modules), broadcast=True, hash=False)
        empty = {group: {name: s.empty_like() for name, s in summaries.items()} for group, summaries in current.items()}
        items = window.pieces if window.pieces is not None else window.chunks
        parts = compute.ordered(_summarized_at, items, model, empty, inputs_only, window.source,
                                name="lockstep-monitor")
    else:
        parts = (_summarized(chunk, loaded, current, inputs_only) for chunk in window.chunks)
    for summaries, done, bad in parts:
        if summaries is not current:
            for group, columns in summaries.items():
                for name, summary in columns.items():
                    current[group][name].merge(summary)
        rows += done
        invalid += bad
        if progress:
            progress(rows, window.total)
    return rows, invalid


def _summarized_at(item: InputPiece | Chunk, model: Shipped, empty: dict[str, dict[str, Any]], inputs_only: bool,
                   source: str) -> tuple[dict[str, dict[str, Any]], int, int]:
    """On a worker: the summaries of one piece (read here) or chunk."""
    loaded: LoadedModel = received(model)
    chunk = piece_chunk(item, loaded.schema, source) if isinstance(item, InputPiece) else item
    return _summarized(chunk, loaded, copy.deepcopy(empty), inputs_only)


def _summarized(chunk: Chunk, loaded: LoadedModel, current: dict[str, dict[str, Any]],
                inputs_only: bool) -> tuple[dict[str, dict[str, Any]], int, int]:
    """``current`` updated with one chunk, its rows and invalid values."""
    if chunk.table.num_rows == 0:
        return current, 0, 0
    schema, model = loaded.schema, loaded.model
    for name, summary in current["raw"].items():
        if name in chunk.table.column_names:
            _update_arrow(summary, chunk.table.column(name), schema.columns[name].dtype)
    if not inputs_only:
        features = model[:-1].transform(schema.frame(chunk.table))
        for name, summary in current["features"].items():
            if name in features.columns:
                _update(summary, features[name])
        scores = chunk.scores if chunk.scores is not None else model_scores(model[-1], features, schema.task,
                                                                            schema.classes)
        current["prediction"]["prediction"].update(scores)
    return current, chunk.table.num_rows, chunk.invalid


def _judged(references: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]], groups: tuple[str, ...],
            cfg: Any) -> list[ColumnDrift]:
    """Each column's drift statistics and verdict, the tests' p-values corrected for their number."""
    tests = sum(len(references[group]) for group in groups)
    columns = []
    for group in groups:
        for name, reference in references[group].items():
            window_summary = current[group][name]
            stats = (numeric_stats(reference, window_summary) if reference.kind == "numeric"
                     else categorical_stats(reference, window_summary))
            columns.append(ColumnDrift(group, name, reference.kind,
                                       judge_column(reference.kind, stats, cfg, window_summary.present, tests),
                                       reference, window_summary))
    return columns
