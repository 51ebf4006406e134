"""``lockstep init``: scaffold a project from a data file.

Reads the data, infers a draft schema (:mod:`lockstep.data.infer`), and
writes ``lockstep.toml``, a commented ``pipeline.py`` template and a
``.gitignore`` entry for the store. The generated configuration is validated
before anything is written, so ``init`` never leaves an invalid project.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lockstep.config import CONFIG_FILE, parse_config
from lockstep.errors import ProjectError, SourceError

__all__ = ["InitResult", "init_project", "render_config", "render_pipeline"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class InitResult:
    """What :func:`init_project` wrote and what the user should review."""

    directory: Path
    config_path: Path
    pipeline_path: Path | None
    rows: int
    columns: int
    task: str
    id_column: str | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "directory": str(self.directory),
            "config": str(self.config_path),
            "pipeline": str(self.pipeline_path) if self.pipeline_path else None,
            "rows": self.rows,
            "columns": self.columns,
            "task": self.task,
            "id": self.id_column,
            "review": self.notes,
        }


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _inline(entry: dict[str, Any]) -> str:
    order = ("dtype", "nullable", "min", "max", "allowed")
    parts = [f"{k} = {_toml_value(entry[k])}" for k in order if k in entry and not (k == "nullable" and not entry[k])]
    return "{ " + ", ".join(parts) + " }"


def render_config(*, name: str, source: str, target: str, id_column: str | None, task: str,
                  schema: dict[str, dict[str, Any]], delimiter: str = ",", rows: int, origin: str,
                  shared: tuple[int, int] = (0, 0)) -> str:
    """The text of a commented ``lockstep.toml``."""
    today = datetime.now(UTC).date().isoformat()
    lines = [
        f"# lockstep project, scaffolded by `lockstep init` on {today} from {origin} ({rows} rows).",
        "# Review [data.schema] before the first `lockstep ingest`: it was inferred from the data.",
        "# Every key is documented in lockstep's docs/configuration.md.",
        "",
        "[project]",
        f"name = {_toml_value(name)}",
        'store = ".lockstep"  # the embedded store: Delta tables and run records (git-ignored)',
        "",
        "[data]",
        f"source = {_toml_value(source)}  # a CSV or Parquet file, or a glob such as \"data/*.csv\"",
    ]
    if delimiter != ",":
        lines.append(f"delimiter = {_toml_value(delimiter)}")
    if id_column is not None:
        lines.append(f"id = {_toml_value(id_column)}  # unique per row; the split is a hash of it")
    else:
        lines.append("# id: not set, so lockstep derives '_row_id' from each row's content")
        lines.append("# (stable when rows are appended; a row whose values change gets a new id)")
    lines += [
        f"target = {_toml_value(target)}",
        f"task = {_toml_value(task)}  # classification or regression",
        "",
        "# One entry per raw column: dtype (int, float, bool, str, datetime, date), nullable,",
        "# min/max (inclusive), allowed values. Rows that break a rule are refused at ingest",
        "# (or set aside with `lockstep ingest --quarantine`).",
        "[data.schema]",
    ]
    lines += [f"{_toml_key(col)} = {_inline(entry)}" for col, entry in schema.items()]
    lines += [
        "",
        "# Rows are split by a hash of the id and the salt: a row never changes split when",
        "# data is appended; changing the salt reshuffles every row.",
        "[split]",
        "valid = 0.15",
        "test = 0.15",
        f"salt = {_toml_value(name)}",
    ]
    if any(shared):
        lines += [
            f"# `lockstep init` found {shared[0]} valid and {shared[1]} test rows identical to a train row",
            "# (every column but the id). Ingest refuses them unless allowed: remove duplicated records,",
            "# or, if they are distinct entities that look alike, raise this limit (e.g. to 0.01).",
            "max_shared_fraction = 0.0",
        ]
    lines += [
        "",
        "# The feature pipeline: features() in pipeline.py returns a stateless transformer",
        "# (raw columns in, features out, row by row). `lockstep features` checks on every",
        "# run that each row transformed alone equals the row transformed with the table.",
        "[features]",
        f"name = {_toml_value(name + '-features')}",
        'pipeline = "pipeline:features"',
        "",
    ]
    return "\n".join(lines)


def render_pipeline(*, name: str, target: str, task: str, numeric: list[str], categorical: list[str]) -> str:
    """The text of a commented ``pipeline.py`` template for the project."""
    estimator = ("LogisticRegression(max_iter=1000)" if task == "classification" else "Ridge(alpha=1.0)")
    estimator_import = ("from sklearn.linear_model import LogisticRegression" if task == "classification"
                        else "from sklearn.linear_model import Ridge")

    def listing(cols: list[str]) -> str:
        if not cols:
            return "[]"
        return "[\n" + "".join(f"    {json.dumps(c)},\n" for c in cols) + "]"

    return f'''"""The code of the {name} project: its feature pipeline and its model.

lockstep imports the functions below by the names given in lockstep.toml:

features()
    A *stateless* scikit-learn transformer: raw columns in, feature columns out,
    row by row. It learns nothing from data, so it gives the same result for a
    row alone (at serving time) as for the whole table (at training time).
    lockstep checks that on every run.

model()
    A scikit-learn Pipeline fitted on the training split only. Everything that
    learns from data (imputers, encoders, scalers, ...) goes here, before the
    estimator, so that it is fitted on training rows and travels with the model.

The whole source of this module is fingerprinted: changing any function in it,
helpers included, makes lockstep recompute what depends on it.
"""

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
{estimator_import}
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

TARGET = {json.dumps(target)}

# Raw columns by kind, as `lockstep init` found them. Edit freely.
NUMERIC = {listing(numeric)}
CATEGORICAL = {listing(categorical)}


def features():
    """The feature pipeline: here the identity; add stateless, row-wise steps."""
    return FunctionTransformer(feature_names_out="one-to-one").set_output(transform="pandas")


def model():
    """The model pipeline: preprocessing fitted on the training split, then the estimator."""
    preprocess = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                CATEGORICAL,
            ),
        ]
    )
    return Pipeline([("preprocess", preprocess), ("estimator", {estimator})])
'''


def _project_name(directory: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", directory.resolve().name).strip("-")
    return name or "lockstep-project"


def init_project(data_file: str | Path, *, target: str, id_column: str | None = None, task: str | None = None,
                 directory: str | Path = ".", name: str | None = None, force: bool = False) -> InitResult:
    """Scaffold a project in ``directory`` for ``data_file``.

    Parameters
    ----------
    data_file : str or Path
        A CSV or Parquet file.
    target : str
        The column to predict.
    id_column : str, optional
        A column that identifies each row (unique, never missing). Without
        it, ids are derived from row content.
    task : {"classification", "regression"}, optional
        Inferred from the target when not given.
    directory : str or Path, default "."
        The project folder; created if needed.
    name : str, optional
        The project's name (default: the folder's name).
    force : bool, default False
        Overwrite an existing ``lockstep.toml``.

    Returns
    -------
    InitResult

    Raises
    ------
    SourceError
        If the data cannot be read or lacks the target or id column, or the id is not unique.
    ProjectError
        If the folder already has a ``lockstep.toml`` and ``force`` is false.
    """
    from lockstep.data.infer import infer_draft
    from lockstep.store import ReadOptions, atomic_write_text, display_path, ensure_line, read_file, sniff_delimiter

    directory = Path(directory)
    data_path = Path(data_file)
    config_path = directory / CONFIG_FILE
    if config_path.exists() and not force:
        raise ProjectError(f"{config_path} already exists",
                           hint="edit it, or pass --force to replace it with a new draft")
    if not data_path.exists():
        raise SourceError(f"data file {data_path} does not exist")
    shown = str(data_path)
    table = read_file(data_path, shown, ReadOptions(delimiter=None))
    delimiter = sniff_delimiter(data_path)
    columns = table.column_names
    for role, col in (("target", target), ("id", id_column)):
        if col is not None and col not in columns:
            raise SourceError(f"{shown} has no column '{col}' (given as --{role}); its columns: "
                              f"{', '.join(columns[:30])}{', ...' if len(columns) > 30 else ''}")
    if id_column is not None:
        _check_unique_id(table, id_column, shown)
    if id_column == target:
        raise SourceError("--id and --target name the same column")
    draft = infer_draft(table, target=target, id_column=id_column, task=task)

    project_name = name or _project_name(directory)
    shared = _shared_rows(table, id_column, project_name)
    if any(shared):
        draft.notes.append(
            f"{shared[0]} valid and {shared[1]} test rows are identical to a train row (every column but the id): "
            "ingest will refuse them until you remove them or raise [split] max_shared_fraction")
    source = os.path.relpath(data_path.resolve(), directory.resolve()).replace(os.sep, "/")
    text = render_config(name=project_name, source=source, target=target, id_column=id_column, task=draft.task,
                         schema=draft.schema, delimiter=delimiter or ",", rows=draft.rows,
                         origin=display_path(data_path, Path.cwd()), shared=shared)
    parse_config(tomllib.loads(text), source=str(config_path))  # never write an invalid project

    feature_cols = [c for c in columns if c not in (target, id_column)]
    numeric = [c for c in feature_cols if draft.schema[c]["dtype"] in ("int", "float", "bool")]
    categorical = [c for c in feature_cols if draft.schema[c]["dtype"] == "str"]
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_path, text)
    pipeline_path: Path | None = directory / "pipeline.py"
    notes = list(draft.notes)
    if pipeline_path.exists():
        notes.append("pipeline.py exists and was left as it is")
        pipeline_path = None
    else:
        atomic_write_text(pipeline_path, render_pipeline(name=project_name, target=target, task=draft.task,
                                                         numeric=numeric, categorical=categorical))
        notes.append("pipeline.py is a template: write your feature pipeline and model there")
    ensure_line(directory / ".gitignore", ".lockstep/")
    return InitResult(directory=directory.resolve(), config_path=config_path.resolve(),
                      pipeline_path=pipeline_path.resolve() if pipeline_path else None, rows=draft.rows,
                      columns=len(columns), task=draft.task, id_column=id_column, notes=notes)


def _shared_rows(table, id_column: str | None, salt: str) -> tuple[int, int]:
    """Valid and test rows identical to a train row, with the split the draft configures."""
    from lockstep.config import DerivedId, SplitConfig
    from lockstep.data.leakage import shared_rows
    from lockstep.data.rows import derive_row_ids
    from lockstep.data.splits import assign_splits

    if id_column is None:
        table = table.add_column(0, DerivedId, derive_row_ids(table))
        id_column = DerivedId
    counts = shared_rows(table, id_column, assign_splits(table, id_column, SplitConfig(salt=salt)))
    return counts.valid_shared, counts.test_shared


def _check_unique_id(table, id_column: str, shown: str) -> None:
    from lockstep.data.leakage import duplicate_ids

    column = table.column(id_column)
    if column.null_count:
        raise SourceError(f"the id column '{id_column}' of {shown} has {column.null_count} missing values",
                          hint="an id must identify every row: choose another column, or omit --id")
    dupes = duplicate_ids(column)
    if dupes:
        shown_ids = ", ".join(repr(k) for k in list(dupes)[:5])
        raise SourceError(f"the id column '{id_column}' of {shown} is not unique: {len(dupes)} value(s) repeat, "
                          f"e.g. {shown_ids}",
                          hint="choose a unique column, or omit --id to derive ids from row content")
