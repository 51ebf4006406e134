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

import pyarrow as pa

from lockstep.core.config import CONFIG_FILE, parse_config
from lockstep.core.errors import ConfigError, ProjectError, SchemaValidationError, SourceError
from lockstep.core.sections import ColumnSchema
from lockstep.data.contract import ContractSchema, load_contract, schema_from_contract
from lockstep.data.infer import Draft, infer_draft
from lockstep.data.leakage import duplicate_ids, repeated_inputs
from lockstep.data.schema import validate_table
from lockstep.store import (
    ReadOptions,
    atomic_write_text,
    display_path,
    ensure_line,
    read_file,
    read_text,
    sniff_delimiter,
)

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
    order = ("dtype", "nullable", "min", "max", "allowed", "description")
    parts = [f"{k} = {_toml_value(entry[k])}" for k in order if k in entry and not (k == "nullable" and not entry[k])]
    return "{ " + ", ".join(parts) + " }"


def _schema_line(name: str, entry: dict[str, Any], column: Any) -> str:
    line = f"{_toml_key(name)} = {_inline(entry)}"
    comment = column.observed if column is not None else ""
    if column is not None and column.role == "excluded":
        comment = f"not a model input: {column.reason}" + (f" ({column.observed})" if column.observed else "")
    elif column is not None and column.role == "id":
        comment = "the id"
    return f"{line}  # {comment}" if comment else line


# long: a template, read top to bottom as the file it writes
def render_config(*, name: str, source: str, target: str, id_column: str | None, task: str,
                  schema: dict[str, dict[str, Any]], delimiter: str = ",", rows: int, origin: str,
                  columns: dict[str, Any] | None = None, inputs: list[str] | None = None,
                  repeated: tuple[int, int] = (0, 0), contract: str | None = None) -> str:
    """The text of a commented ``lockstep.toml`` that runs as it is (``[data.schema]`` from ``contract`` if
    given)."""
    columns = columns or {}
    today = datetime.now(UTC).date().isoformat()
    metric = "roc_auc" if task == "classification" else "rmse"
    lines = [
        f"# lockstep project, scaffolded by `lockstep init` on {today} from {origin} ({rows} rows).",
        ("# It runs as it is (`lockstep run`); review [data.schema], which was inferred from the data."
         if contract is None else
         f"# It runs as it is (`lockstep run`); [data.schema] is the data contract {contract} (ODCS)."),
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
        lines.append(f"id = {_toml_value(id_column)}  # unique per row")
    else:
        lines.append("# id: not set, so lockstep derives '_row_id' from each row's content")
        lines.append("# (stable when rows are appended; a row whose values change gets a new id)")
    lines += [
        f"target = {_toml_value(target)}",
        f"task = {_toml_value(task)}  # classification or regression",
        "",
        "# One entry per raw column: dtype (int, float, bool, str, datetime, date), nullable,",
        "# min/max (inclusive), allowed values. The comments say what the data showed; they are",
        "# not limits, because later data may lie outside them (a future date, a new category).",
        "# Add min, max or allowed where a value is impossible: rows breaking a rule are refused",
        "# at ingest (or set aside with `lockstep ingest --quarantine`), predict and serve.",
        "[data.schema]",
    ]
    lines += [_schema_line(col, entry, columns.get(col)) for col, entry in schema.items()]
    lines += [
        "",
        "# Rows are split by a hash of their input values and the salt: rows with identical inputs",
        "# always share a split, so none can leak from training into valid or test, and a row never",
        "# changes split when data is appended. Changing the salt reshuffles every row.",
        "[split]",
        'by = "content"',
        "valid = 0.15",
        "test = 0.15",
        f"salt = {_toml_value(name)}",
    ]
    if any(repeated):
        lines.append(f"# `lockstep init` found {repeated[0]:,} rows whose inputs repeat another row's, in "
                     f"{repeated[1]:,} groups.")
    lines += [
        "",
        "# The feature pipeline: features() in pipeline.py returns a stateless transformer",
        "# (raw columns in, features out, row by row). `lockstep features` checks on every",
        "# run that each row transformed alone equals the row transformed with the table.",
        "[features]",
        f"name = {_toml_value(name + '-features')}",
        'pipeline = "pipeline:features"',
    ]
    left_out = [c for c, column in columns.items() if column.role == "excluded"]
    if inputs is not None and left_out:
        lines.append("# The raw columns the model reads. Left out: " + ", ".join(left_out) + " (see their")
        lines.append("# comments above). Add a column back here, and to pipeline.py, to use it.")
        lines.append(f"columns = {_toml_value(inputs)}")
    lines += [
        "",
        "# Training: model() in pipeline.py, fitted on the training split with the seed below and",
        "# one thread (histogram gradient boosting gives other bits on other thread counts), then",
        "# evaluated on valid and test and registered as the challenger.",
        "[train]",
        'model = "pipeline:model"',
        "seeds = [0]",
        "threads = 1",
        f'primary_metric = "{metric}"',
        "",
        "# Promotion: a challenger becomes the champion unless it is worse than the champion beyond",
        "# the sampling noise of a paired bootstrap on the challenger's test rows. Add absolute",
        '# gates such as gates = { min_roc_auc = 0.8 } (or max_rmse) as you learn what is good.',
        "[registry]",
        'improvement = "bootstrap"',
        "",
    ]
    return "\n".join(lines)


#: Text columns with at most this many categories get the model's native categorical splits; text with more
#: goes in as ordinal codes (alphabetical), which splits like numbers: native splits over many categories
#: overfit (test RMSE 2.4 times the codes' on the loan data of the corpus, where sub-grades A1 .. G5 are ordered).
NATIVE_CATEGORIES = 20


# long: a template, read top to bottom as the file it writes
def render_pipeline(*, name: str, target: str, task: str, numeric: list[str], categorical: list[str],
                    dates: list[str] | None = None, codes: list[str] | None = None) -> str:
    """The text of a commented ``pipeline.py`` for the project: date parts as features, then histogram
    gradient boosting, with native categories for ``categorical`` and ordinal codes for ``codes``."""
    dates, codes = dates or [], codes or []
    estimator = "HistGradientBoostingClassifier" if task == "classification" else "HistGradientBoostingRegressor"

    def listing(cols: list[str]) -> str:
        if not cols:
            return "[]"
        return "[\n" + "".join(f"    {json.dumps(c)},\n" for c in cols) + "]"

    if dates:
        features_body = (
            '    """The feature pipeline: each date becomes its year, month, day and day of week; the other\n'
            '    columns pass through. Add stateless, row-wise steps here."""\n'
            "    return make_pipeline(\n"
            "        DateTimeParts(DATES, parts=DATE_PARTS),\n"
            '    ).set_output(transform="pandas")\n')
    else:
        features_body = (
            '    """The feature pipeline: here the identity; add stateless, row-wise steps."""\n'
            '    return FunctionTransformer(feature_names_out="one-to-one").set_output(transform="pandas")\n')
    return f'''"""The code of the {name} project: its feature pipeline and its model.

lockstep imports the functions below by the names given in lockstep.toml:

features()
    A *stateless* scikit-learn transformer: raw columns in, feature columns out,
    row by row. It learns nothing from data, so it gives the same result for a
    row alone (at serving time) as for the whole table (at training time).
    lockstep checks that on every run.

model()
    A scikit-learn Pipeline fitted on the training split only. Everything that
    learns from data (encoders, imputers, scalers, ...) goes here, before the
    estimator, so that it is fitted on training rows and travels with the model.

The default model is histogram gradient boosting: strong on tabular data
without tuning, missing values and categories handled natively, deterministic
for a given seed and thread count, and exported to ONNX by `lockstep export
onnx`. Any scikit-learn estimator works instead (see lockstep's
docs/training.md for the families checked).

The whole source of this module is fingerprinted: changing any function in it,
helpers included, makes lockstep recompute what depends on it.
"""

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import {estimator}
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from lockstep.features.transformers import DateTimeParts

TARGET = {json.dumps(target)}

# Raw columns by kind, as `lockstep init` found them. Edit freely.
NUMERIC = {listing(numeric)}
# text with few values: the model splits on sets of categories
CATEGORICAL = {listing(categorical)}
# text with many values: alphabetical codes, split like numbers
CODES = {listing(codes)}
DATES = {listing(dates)}
DATE_PARTS = ["year", "month", "day", "dayofweek"]

# The model's numeric inputs: the numbers, and the parts features() makes of each date.
NUMBERS = NUMERIC + [f"{{column}}_{{part}}" for column in DATES for part in DATE_PARTS]


def features():
{features_body}

def text_codes():
    """Text as ordinal codes; an unknown or missing value is -1 (for native categories, -1 means missing)."""
    return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)


def model():
    """The model pipeline: numbers as they are (the trees handle missing values), text as codes, then
    histogram gradient boosting with native categorical splits on CATEGORICAL."""
    preprocess = ColumnTransformer(
        [
            ("numeric", "passthrough", NUMBERS),
            ("categorical", text_codes(), CATEGORICAL),
            ("codes", text_codes(), CODES),
        ]
    )
    categorical = list(range(len(NUMBERS), len(NUMBERS) + len(CATEGORICAL)))
    return Pipeline(
        [("preprocess", preprocess), ("estimator", {estimator}(categorical_features=categorical, random_state=0))]
    )
'''


def _roles(agreed: ContractSchema | None, contract: str | Path | None, target: str | None, id_column: str | None,
           task: str | None) -> tuple[str, str | None, str | None]:
    """Target, id and task: as given, else as the contract records them."""
    if agreed is not None:
        target, task = target or agreed.target, task or agreed.task
        id_column = id_column if id_column is not None else agreed.id_column
    if target is None:
        raise ConfigError("no target: give --target" + (f" (the contract {contract} names none)" if contract else ""))
    return target, id_column, task


def _read_contract(path: str | Path) -> ContractSchema:
    where = str(path)
    return schema_from_contract(load_contract(read_text(path, what="data contract"), where), where)


def _contract_draft(table: pa.Table, agreed: ContractSchema, where: str, shown: str, *, target: str,
                    id_column: str | None, task: str | None) -> Draft:
    """The draft with the contract's schema, inferred (roles, task, notes) from the data typed by the contract.

    Raises
    ------
    ConfigError
        If the contract's columns are not the data's, or a column's rules are not a valid schema entry.
    SchemaValidationError
        If rows of the data break the contract's rules.
    """
    missing = [c for c in agreed.columns if c not in table.column_names]
    extra = [c for c in table.column_names if c not in agreed.columns]
    if missing or extra:
        raise ConfigError(f"the data {shown} and the contract {where} do not have the same columns: "
                          + "; ".join(part for part in (
                              f"not in the data: {', '.join(missing)}" if missing else "",
                              f"not in the contract: {', '.join(extra)}" if extra else "") if part),
                          hint="a contract describes every raw column; export one with `lockstep data contract`")
    specs: dict[str, ColumnSchema] = {}
    for column, entry in agreed.columns.items():
        try:
            specs[column] = ColumnSchema.model_validate(entry)
        except ValueError as exc:
            raise ConfigError(f"{where}: column {column!r} cannot be a [data.schema] entry: "
                              f"{' '.join(str(exc).split())[:300]}") from None
    result = validate_table(table, specs, source=shown)
    if not result.ok:
        raise SchemaValidationError(shown, result.failures(lambda row: f"row {row + 1}"),
                                    hint=f"the data breaks the contract {where}: fix the data or the contract")
    draft = infer_draft(result.table, target=target, id_column=id_column, task=task)
    draft.schema = {column: agreed.columns[column] for column in table.column_names}
    draft.notes = [note for note in draft.notes if not note.startswith("the schema of")]
    draft.notes.insert(0, f"[data.schema] is the contract {where} ({len(specs)} columns); the data keeps "
                          f"its rules")
    return draft


def _project_name(directory: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", directory.resolve().name).strip("-")
    return name or "lockstep-project"


# long: the public entry point's numpydoc docstring is half of it; the body reads as the steps of `lockstep init`
def init_project(data_file: str | Path, *, target: str | None, id_column: str | None = None,
                 task: str | None = None, directory: str | Path = ".", name: str | None = None, force: bool = False,
                 contract: str | Path | None = None) -> InitResult:
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
    contract : str or Path, optional
        An ODCS v3 data contract (YAML) whose schema becomes ``[data.schema]``
        instead of the inferred one; its primary key, target and task are the
        defaults of ``id_column``, ``target`` and ``task``. The data must have
        the contract's columns and keep its rules.

    Returns
    -------
    InitResult

    Raises
    ------
    SourceError
        If the data cannot be read or lacks the target or id column, or the id is not unique.
    ProjectError
        If the folder already has a ``lockstep.toml`` and ``force`` is false.
    ConfigError
        If the contract cannot be read, is not a valid ODCS document, or no target is given or recorded.
    SchemaValidationError
        If the data breaks the contract.
    """
    directory = Path(directory)
    data_path = Path(data_file)
    config_path = directory / CONFIG_FILE
    if config_path.exists() and not force:
        raise ProjectError(f"{config_path} already exists",
                           hint="edit it, or pass --force to replace it with a new draft")
    agreed = _read_contract(contract) if contract is not None else None
    target, id_column, task = _roles(agreed, contract, target, id_column, task)
    table, delimiter = _read_data(data_path, target, id_column)
    columns = table.column_names
    draft = (_contract_draft(table, agreed, str(contract), str(data_path), target=target, id_column=id_column,
                             task=task) if agreed is not None
             else infer_draft(table, target=target, id_column=id_column, task=task))

    project_name = name or _project_name(directory)
    roles = _input_roles(draft)
    inputs = [c for c in columns if c in set(roles["numeric"] + roles["categorical"] + roles["codes"]
                                             + roles["dates"])]
    repeated = _repeated(table, inputs, draft.notes)
    text = _config_text(draft, config_path, data_path, name=project_name, target=target, id_column=id_column,
                        contract=display_path(Path(contract), Path.cwd()) if contract is not None else None,
                        delimiter=delimiter, inputs=inputs, repeated=repeated)

    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_path, text)
    pipeline = render_pipeline(name=project_name, target=target, task=draft.task, **roles)
    pipeline_path, note = _write_pipeline(directory / "pipeline.py", pipeline)
    notes = [*draft.notes, note]
    ensure_line(directory / ".gitignore", ".lockstep/")
    return InitResult(directory=directory.resolve(), config_path=config_path.resolve(),
                      pipeline_path=pipeline_path.resolve() if pipeline_path else None, rows=draft.rows,
                      columns=len(columns), task=draft.task, id_column=id_column, notes=notes)


def _repeated(table: pa.Table, inputs: list[str], notes: list[str]) -> tuple[int, int]:
    """Rows with the same inputs as another row, and their groups; a note for the user when there are any."""
    repeated = repeated_inputs(table, inputs)
    if repeated[0]:
        notes.append(f"{repeated[0]:,} rows have the same inputs as another row ({repeated[1]:,} groups); the "
                     "split by content keeps each group in one split, so none leaks into valid or test")
    return repeated


def _config_text(draft: Any, config_path: Path, data_path: Path, *, name: str, target: str, id_column: str | None,
                 contract: str | None,
                 delimiter: str | None, inputs: list[str], repeated: tuple[int, int]) -> str:
    """The scaffolded ``lockstep.toml``, checked to be a valid configuration before anything is written."""
    source = os.path.relpath(data_path.resolve(), config_path.parent.resolve()).replace(os.sep, "/")
    text = render_config(name=name, source=source, target=target, id_column=id_column, task=draft.task,
                         schema=draft.schema, delimiter=delimiter or ",", rows=draft.rows,
                         origin=display_path(data_path, Path.cwd()), columns=draft.columns, inputs=inputs,
                         repeated=repeated, contract=contract)
    parse_config(tomllib.loads(text), source=str(config_path))  # never write an invalid project
    return text


def _input_roles(draft: Any) -> dict[str, list[str]]:
    """The model's inputs by how the scaffolded pipeline treats them: numbers, native categories (few values),
    ordinal codes (many values) and dates."""
    texts = draft.role("categorical")
    categorical = [c for c in texts if draft.columns[c].distinct <= NATIVE_CATEGORIES]
    return {"numeric": draft.role("numeric"), "categorical": categorical,
            "codes": [c for c in texts if c not in categorical], "dates": draft.role("date")}


def _write_pipeline(path: Path, text: str) -> tuple[Path | None, str]:
    """Write the scaffolded ``pipeline.py`` unless the folder has one; the file written (if any) and a note."""
    if path.exists():
        return None, "pipeline.py exists and was left as it is"
    atomic_write_text(path, text)
    return path, "pipeline.py holds the feature pipeline and the model (histogram gradient boosting): edit them freely"


def _read_data(data_path: Path, target: str, id_column: str | None) -> tuple[pa.Table, str | None]:
    """The data file's rows and its delimiter, refused without the target or id column, or with a repeated id."""
    if not data_path.exists():
        raise SourceError(f"data file {data_path} does not exist")
    shown = str(data_path)
    table = read_file(data_path, shown, ReadOptions(delimiter=None))
    columns = table.column_names
    for role, col in (("target", target), ("id", id_column)):
        if col is not None and col not in columns:
            raise SourceError(f"{shown} has no column '{col}' (given as --{role}); its columns: "
                              f"{', '.join(columns[:30])}{', ...' if len(columns) > 30 else ''}")
    if id_column is not None:
        _check_unique_id(table, id_column, shown)
    if id_column == target:
        raise SourceError("--id and --target name the same column")
    return table, sniff_delimiter(data_path)


def _check_unique_id(table, id_column: str, shown: str) -> None:
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
