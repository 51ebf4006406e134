"""The ``lockstep.toml`` model: what a project is.

The file is read once, validated strictly (unknown keys and wrong types are
errors that name the file and the key) and passed explicitly to the layers
that need it; nothing else reads configuration.

Examples
--------
>>> from lockstep.core.config import Config
>>> cfg = Config.model_validate({
...     "project": {"name": "demo"},
...     "data": {"source": "raw.csv", "id": "id", "target": "y",
...              "task": "classification",
...              "schema": {"id": {"dtype": "int"}, "y": {"dtype": "str"},
...                         "x": {"dtype": "float", "nullable": True}}},
... })
>>> cfg.data.feature_columns
['x']
"""

from __future__ import annotations

import codecs
import difflib
import json
import re
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from lockstep.core.errors import ConfigError, ProjectError

__all__ = [
    "CLASSIFICATION_METRICS",
    "CONFIG_FILE",
    "REF_PATTERN",
    "REGRESSION_METRICS",
    "RegistryConfig",
    "SearchConfig",
    "ServeConfig",
    "TrainConfig",
    "task_metrics",
    "ColumnSchema",
    "Config",
    "DataConfig",
    "DerivedId",
    "FeaturesConfig",
    "ProjectSection",
    "SplitConfig",
    "load_config",
]

CONFIG_FILE = "lockstep.toml"

#: ``"module:callable"``, as [features] pipeline and [train] model name code.
REF_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")

#: Name of the id column lockstep derives when ``[data] id`` is not set.
DerivedId = "_row_id"

Dtype = Literal["int", "float", "bool", "str", "datetime", "date"]
Number = StrictInt | StrictFloat
Bound = StrictInt | StrictFloat | datetime | date | StrictStr
Category = StrictStr | StrictInt | StrictBool


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, frozen=True)


class ColumnSchema(_Section):
    """The declared schema of one raw column.

    Attributes
    ----------
    dtype : {"int", "float", "bool", "str", "datetime", "date"}
        Logical type. Values are converted to it; values that do not convert
        are schema failures.
    nullable : bool
        Whether missing values are allowed.
    min, max : number or datetime, optional
        Inclusive bounds (numbers, or ISO dates for datetime and date columns).
    allowed : list, optional
        The allowed values (categories) for ``str``, ``int`` and ``bool`` columns.
    description : str, optional
        Free text, carried into generated documentation.
    """

    dtype: Dtype
    nullable: StrictBool = False
    min: Bound | None = None
    max: Bound | None = None
    allowed: list[Category] | None = None
    description: StrictStr | None = None

    @model_validator(mode="after")
    def _check_rules(self) -> ColumnSchema:
        if (self.min is not None or self.max is not None) and self.dtype in ("bool", "str"):
            raise ValueError(f"min/max do not apply to dtype '{self.dtype}'")
        if self.allowed is not None:
            if self.dtype not in ("str", "int", "bool"):
                raise ValueError(f"allowed values do not apply to dtype '{self.dtype}'")
            if not self.allowed:
                raise ValueError("allowed must list at least one value")
        for name in ("min", "max"):
            value = getattr(self, name)
            if value is None:
                continue
            if self.dtype in ("int", "float") and not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number for dtype '{self.dtype}'")
            if self.dtype in ("datetime", "date"):
                _as_datetime(value, name)
        if self.min is not None and self.max is not None and _order_key(self.min) > _order_key(self.max):
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


def _as_datetime(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name} must be an ISO date or datetime, got {value!r}") from None
    raise ValueError(f"{name} must be a date or datetime, got {value!r}")


def _order_key(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return _as_datetime(value, "bound")


class ProjectSection(_Section):
    """``[project]``: the project's name and where its store lives."""

    name: StrictStr = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")
    description: StrictStr | None = None
    store: StrictStr = ".lockstep"


class DataConfig(_Section):
    """``[data]``: the raw data source, the id, the target and the raw schema.

    Exactly one of ``source`` (a CSV or Parquet file, or a glob of them,
    relative to the project folder) and ``sql`` (a DuckDB query over files)
    must be set. When ``id`` is not set, lockstep derives a stable row id
    named ``_row_id`` from the content of each row (see the documentation).
    """

    source: StrictStr | None = None
    sql: StrictStr | None = None
    format: Literal["csv", "parquet"] | None = None
    delimiter: StrictStr = ","
    encoding: StrictStr = "utf-8"
    null_values: list[StrictStr] | None = None
    id: StrictStr | None = None
    target: StrictStr
    task: Literal["classification", "regression"]
    columns: dict[str, ColumnSchema] = Field(alias="schema", min_length=1)

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError(f"delimiter must be a single character, got {v!r}")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown encoding {v!r} (for example 'utf-8', 'latin-1', 'cp1252')") from None
        return v

    @model_validator(mode="after")
    def _check_columns(self) -> DataConfig:
        if (self.source is None) == (self.sql is None):
            raise ValueError("set exactly one of 'source' (a file or glob) and 'sql' (a DuckDB query)")
        names = list(self.columns)
        if self.target not in self.columns:
            raise ValueError(f"target column '{self.target}' is not in [data.schema]{_suggest(self.target, names)}")
        if self.id is not None:
            if self.id not in self.columns:
                raise ValueError(f"id column '{self.id}' is not in [data.schema]{_suggest(self.id, names)}")
            if self.columns[self.id].nullable:
                raise ValueError(f"id column '{self.id}' cannot be nullable")
            if self.columns[self.id].dtype not in ("int", "str"):
                raise ValueError(f"id column '{self.id}' must have dtype 'int' or 'str'")
            if self.id == self.target:
                raise ValueError("the id column and the target cannot be the same column")
        if DerivedId in self.columns:
            raise ValueError(f"'{DerivedId}' is reserved for the derived row id; rename that column")
        if self.task == "regression" and self.columns[self.target].dtype not in ("int", "float"):
            raise ValueError(f"a regression target must be numeric; '{self.target}' has dtype "
                             f"'{self.columns[self.target].dtype}'")
        return self

    @property
    def id_column(self) -> str:
        """The id column of the snapshots: ``id``, or the derived ``_row_id``."""
        return self.id if self.id is not None else DerivedId

    @property
    def feature_columns(self) -> list[str]:
        """The raw columns other than the id and the target, in schema order."""
        return [c for c in self.columns if c not in (self.id, self.target)]

    @property
    def snapshot_columns(self) -> list[str]:
        """The columns of a snapshot: the id (derived or not) first when derived, then the schema's."""
        return ([DerivedId] if self.id is None else []) + list(self.columns)


class SplitConfig(_Section):
    """``[split]``: how rows are assigned to train, valid and test.

    With ``by = "hash"`` (the default) a row's split is decided by a hash of
    its id and ``salt``, so it never changes when rows are added. With
    ``by = "content"``, by a hash of the values of the model's raw inputs and
    ``salt``: rows with identical inputs share a split, so none can leak
    between splits (``lockstep init`` writes this). With ``by = "time"``,
    rows before ``valid_from`` are train, rows from ``valid_from`` to before
    ``test_from`` are valid, the rest test. ``max_shared_fraction`` is the
    largest fraction of valid or test rows that may be identical (in every
    column but the id) to a train row.
    """

    by: Literal["hash", "content", "time"] = "hash"
    valid: Number = 0.15
    test: Number = 0.15
    salt: StrictStr = "lockstep"
    time_column: StrictStr | None = None
    valid_from: datetime | date | StrictStr | None = None
    test_from: datetime | date | StrictStr | None = None
    max_shared_fraction: Number = 0.0

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        for name in ("valid", "test"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be at least 0 and below 1, got {value}")
        if not 0 <= self.max_shared_fraction <= 1:
            raise ValueError(f"max_shared_fraction must be between 0 and 1, got {self.max_shared_fraction}")
        if self.by in ("hash", "content") and self.valid + self.test >= 1:
            raise ValueError(f"valid + test must be below 1 (got {self.valid} + {self.test}); "
                             "the rest is the training split")
        if self.by == "time":
            if not self.time_column or self.valid_from is None or self.test_from is None:
                raise ValueError("by = 'time' needs time_column, valid_from and test_from")
            if _as_datetime(self.valid_from, "valid_from") > _as_datetime(self.test_from, "test_from"):
                raise ValueError("valid_from must not be later than test_from")
        return self

    def cutoffs(self) -> tuple[datetime, datetime]:
        """The time split's cut-offs as datetimes."""
        return _as_datetime(self.valid_from, "valid_from"), _as_datetime(self.test_from, "test_from")


class FeaturesConfig(_Section):
    """``[features]``: the feature pipeline.

    ``pipeline`` names a callable, ``"module:callable"`` in the project
    folder, that returns a stateless scikit-learn transformer; without it the
    raw columns pass through unchanged. ``columns`` are the raw columns it
    reads (default: every raw column but the id and the target). ``name``
    names the feature set (and its table in the store). ``parity_rows`` rows
    are transformed one at a time on every run to check that the pipeline is
    stateless.
    """

    name: StrictStr = Field(default="features", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    pipeline: StrictStr | None = None
    columns: list[StrictStr] | None = None
    parity_rows: StrictInt = Field(default=100, ge=1, le=100_000)

    @field_validator("pipeline")
    @classmethod
    def _reference(cls, v: str | None) -> str | None:
        if v is not None and not REF_PATTERN.match(v):
            raise ValueError(f"pipeline must look like 'module:callable' (for example 'pipeline:features'), got {v!r}")
        return v


#: Metrics lockstep computes, by task, with whether higher is better.
CLASSIFICATION_METRICS = {"accuracy": True, "balanced_accuracy": True, "precision": True, "recall": True,
                          "f1": True, "roc_auc": True, "log_loss": False, "brier_score": False}
REGRESSION_METRICS = {"rmse": False, "mae": False, "r2": True, "mape": False}
DEFAULT_PRIMARY = {"classification": "roc_auc", "regression": "rmse"}


def task_metrics(task: str) -> dict[str, bool]:
    """Metric name to "higher is better" for a task."""
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS


class Distribution(_Section):
    """A distribution to sample a hyperparameter from in a random search.

    ``dist`` is ``"uniform"`` or ``"loguniform"`` (floats between ``low`` and
    ``high``) or ``"randint"`` (integers from ``low`` to ``high - 1``).
    """

    dist: Literal["uniform", "loguniform", "randint"]
    low: Number
    high: Number

    @model_validator(mode="after")
    def _check(self) -> Distribution:
        if self.high <= self.low:
            raise ValueError(f"high ({self.high}) must be above low ({self.low})")
        if self.dist == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs low > 0")
        return self


SpaceValue = list[StrictStr | StrictInt | StrictFloat | StrictBool | None] | Distribution


class SearchConfig(_Section):
    """A hyperparameter search on cross-validation folds of the training split.

    ``space`` maps ``step__param`` names of the model pipeline to a list of
    values (or, for ``kind = "random"``, a distribution).
    """

    kind: Literal["grid", "random"] = "grid"
    space: dict[str, SpaceValue] = Field(min_length=1)
    cv: StrictInt = Field(default=5, ge=2, le=100)
    n_iter: StrictInt = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _check(self) -> SearchConfig:
        for name, value in self.space.items():
            if isinstance(value, Distribution) and self.kind == "grid":
                raise ValueError(f"space.{name}: a grid search needs a list of values, not a distribution")
            if isinstance(value, list) and not value:
                raise ValueError(f"space.{name}: the list of values is empty")
        return self


class _ModelChoice(_Section):
    """A model (``"module:callable"``) and its hyperparameter search: what ``[train]`` and a candidate share."""

    model: StrictStr
    search: SearchConfig | None = None

    @field_validator("model")
    @classmethod
    def _reference(cls, v: str) -> str:
        if not REF_PATTERN.match(v):
            raise ValueError(f"model must look like 'module:callable' (for example 'pipeline:model'), got {v!r}")
        return v


class CandidateConfig(_ModelChoice):
    """Another model to train with ``lockstep train --candidate NAME``: its own model and search."""


class TrainConfig(_ModelChoice):
    """``[train]``: the model pipeline, the search, seeds, threads and metrics.

    ``model`` names a callable returning a scikit-learn Pipeline whose last
    step is an estimator of the task. The final model is fitted once per seed
    in ``seeds``; the first seed's model is the one registered.
    """

    candidates: dict[str, CandidateConfig] = Field(default_factory=dict)
    seeds: list[StrictInt] = Field(default_factory=lambda: [0], min_length=1)
    threads: StrictInt = Field(default=1, ge=1, le=256)
    thread_check: StrictBool = False
    n_jobs: StrictInt = Field(default=1, ge=1, le=256)
    metrics: list[StrictStr] | None = None
    primary_metric: StrictStr | None = None
    positive_class: StrictStr | StrictInt | StrictBool | None = None

    @field_validator("seeds")
    @classmethod
    def _unique(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct, got {v}")
        if any(s < 0 or s >= 2**32 for s in v):
            raise ValueError("seeds must be between 0 and 2**32 - 1")
        return v


class RegistryConfig(_Section):
    """``[registry]``: the registered model's name and the promotion gates.

    ``gates`` holds absolute thresholds, ``min_<metric>`` or
    ``max_<metric>`` on the test split's mean. ``improvement`` is the rule
    against the champion's primary metric: ``"bootstrap"`` (the default: the
    challenger must not be worse than the champion beyond the sampling noise
    of a paired bootstrap of both on the challenger's test rows), ``"std"``
    (it must beat the champion by more than the larger of the two
    seed-to-seed standard deviations) or a number (by more than that).
    ``trusted_types`` lists extra classes (``"package.module.Class"``) that
    the saved model may contain, beyond those of scikit-learn, NumPy, SciPy,
    lockstep and the project's own modules, which are trusted automatically.
    ``golden_rows`` is the size of the golden sample stored with every
    version (the first test rows and the model's outputs on them), which
    ``lockstep check`` predicts again. ``public_key`` (a path relative to the
    project folder) makes every version signed at registration, with the
    private key the environment variable ``LOCKSTEP_SIGNING_KEY`` names, and
    verified on every load; unsigned or wrongly signed versions are refused.
    """

    model: StrictStr | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    gates: dict[str, Number] = Field(default_factory=dict)
    improvement: Literal["bootstrap", "std"] | Number = "bootstrap"
    trusted_types: list[StrictStr] = Field(default_factory=list)
    golden_rows: StrictInt = Field(default=100, ge=1, le=100_000)
    public_key: StrictStr | None = None


class ServeConfig(_Section):
    """``[serve]``: the HTTP service.

    ``token_env`` names the environment variable holding the bearer token
    (default ``LOCKSTEP_API_TOKEN``); when it is set, every endpoint but
    ``/health`` requires ``Authorization: Bearer <token>``. With
    ``poll_seconds`` above 0 the service checks the model alias that often and
    switches to a new version when the alias moves.
    """

    model: StrictStr = "@champion"
    host: StrictStr = "127.0.0.1"
    port: StrictInt = Field(default=8000, ge=0, le=65535)
    runtime: Literal["sklearn", "onnx"] = "sklearn"
    workers: StrictInt = Field(default=1, ge=1, le=64)
    max_batch: StrictInt = Field(default=1000, ge=1)
    max_body_bytes: StrictInt = Field(default=1_000_000, ge=1024)
    allow_unknown_fields: StrictBool = False
    token_env: StrictStr = "LOCKSTEP_API_TOKEN"
    poll_seconds: Number = Field(default=0, ge=0)
    audit: StrictBool = True


class MonitorConfig(_Section):
    """``[monitor]``: the thresholds of drift monitoring.

    A feature drifts when any of its statistics crosses its threshold:
    ``psi`` (population stability index, numbers and categories; above
    ``psi_warning`` it is a warning), ``ks`` (Kolmogorov-Smirnov distance,
    numbers, when its p-value is also below ``ks_pvalue``), ``wasserstein``
    (in reference standard deviations, numbers), ``chi2`` (Cramér's V,
    categories, when its p-value is also below ``chi2_pvalue``),
    ``jensen_shannon`` (distance, categories), ``unseen`` (share of values the
    reference never had, categories), ``missing`` (absolute change of the
    missing rate, when its binomial test's p-value is below
    ``missing_pvalue``). PSI, Wasserstein and Jensen-Shannon count only when
    the column's two-sample test (KS or chi-square) is significant too.
    With ``pvalue_correction = "bonferroni"`` (the default) the p-value
    thresholds are divided by the number of columns monitored together.
    ``min_rows`` is the smallest window worth judging,
    ``window`` the number of recent requests behind the service's PSI gauges,
    ``bootstrap`` the resamples behind the confidence interval of live metrics.
    """

    psi: Number = Field(default=0.25, gt=0)
    psi_warning: Number = Field(default=0.1, gt=0)
    ks: Number = Field(default=0.1, gt=0, le=1)
    ks_pvalue: Number = Field(default=0.01, gt=0, le=1)
    wasserstein: Number = Field(default=0.1, gt=0)
    chi2: Number = Field(default=0.1, gt=0, le=1)
    chi2_pvalue: Number = Field(default=0.01, gt=0, le=1)
    jensen_shannon: Number = Field(default=0.1, gt=0, le=1)
    unseen: Number = Field(default=0.01, ge=0, le=1)
    missing: Number = Field(default=0.05, ge=0, le=1)
    missing_pvalue: Number = Field(default=0.01, gt=0, le=1)
    pvalue_correction: Literal["bonferroni", "none"] = "bonferroni"
    min_rows: StrictInt = Field(default=100, ge=1)
    window: StrictInt = Field(default=1000, ge=10, le=1_000_000)
    bootstrap: StrictInt = Field(default=200, ge=10, le=100_000)

    @model_validator(mode="after")
    def _check(self) -> MonitorConfig:
        if self.psi_warning > self.psi:
            raise ValueError("monitor.psi_warning must not be above monitor.psi")
        return self


class Config(_Section):
    """The whole ``lockstep.toml``.

    Use :func:`load_config` to read it from a project folder; the folder is
    then available as :attr:`project_dir`.
    """

    project: ProjectSection
    data: DataConfig
    split: SplitConfig = SplitConfig()
    features: FeaturesConfig = FeaturesConfig()
    train: TrainConfig | None = None
    registry: RegistryConfig = RegistryConfig()
    serve: ServeConfig = ServeConfig()
    monitor: MonitorConfig = MonitorConfig()

    _project_dir: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_cross(self) -> Config:
        schema = self.data.columns
        if self.split.by == "time":
            col = self.split.time_column
            if col not in schema:
                raise ValueError(f"split.time_column '{col}' is not in [data.schema]{_suggest(col, list(schema))}")
            if schema[col].dtype not in ("datetime", "date"):
                raise ValueError(f"split.time_column '{col}' must have dtype 'datetime' or 'date'")
            if schema[col].nullable:
                raise ValueError(f"split.time_column '{col}' cannot be nullable: every row needs a time")
        for col in self.features.columns or []:
            if col not in schema:
                raise ValueError(f"features.columns names '{col}', which is not in [data.schema]"
                                 f"{_suggest(col, list(schema))}")
        known = task_metrics(self.data.task)
        if self.train is not None:
            for metric in [*(self.train.metrics or []), *([self.train.primary_metric] if self.train.primary_metric
                                                          else [])]:
                if metric not in known:
                    raise ValueError(f"train: metric '{metric}' is not computed for {self.data.task}"
                                     f"{_suggest(metric, list(known))}; choose from {', '.join(known)}")
            if self.train.metrics and self.primary_metric not in self.train.metrics:
                raise ValueError(f"train.primary_metric '{self.primary_metric}' must be one of train.metrics")
            if self.train.positive_class is not None and self.data.task != "classification":
                raise ValueError("train.positive_class only applies to classification")
        for gate in self.registry.gates:
            kind, _, metric = gate.partition("_")
            if kind not in ("min", "max") or metric not in known:
                raise ValueError(f"registry.gates: '{gate}' is not min_<metric> or max_<metric> for a "
                                 f"{self.data.task} metric ({', '.join(known)})")
        return self

    @property
    def metrics(self) -> list[str]:
        """The metrics to compute: ``[train] metrics``, or all of the task's."""
        if self.train is not None and self.train.metrics:
            return list(self.train.metrics)
        return list(task_metrics(self.data.task))

    @property
    def training(self) -> TrainConfig:
        """The ``[train]`` section; a :class:`ConfigError` naming the file when there is none."""
        if self.train is None:
            raise ConfigError(f"{self.config_path}: there is no [train] section, so there is no model to train",
                              hint="add [train] with model = \"pipeline:model\" (see docs/configuration.md)")
        return self.train

    @property
    def primary_metric(self) -> str:
        """``[train] primary_metric``, or ROC AUC (classification) / RMSE (regression)."""
        if self.train is not None and self.train.primary_metric:
            return self.train.primary_metric
        return DEFAULT_PRIMARY[self.data.task]

    @property
    def model_name(self) -> str:
        """The registered model's name: ``[registry] model``, or the project's name."""
        return self.registry.model or self.project.name

    @property
    def feature_inputs(self) -> list[str]:
        """The raw columns the feature pipeline reads."""
        return list(self.features.columns) if self.features.columns is not None else self.data.feature_columns

    @property
    def project_dir(self) -> Path:
        """The folder that holds ``lockstep.toml`` (the current folder if not loaded from disk)."""
        return self._project_dir if self._project_dir is not None else Path.cwd()

    @property
    def config_path(self) -> Path:
        return self.project_dir / CONFIG_FILE

    @property
    def public_key(self) -> Path | None:
        """``[registry] public_key``, resolved against the project folder."""
        key = self.registry.public_key
        return (self.project_dir / key).resolve() if key else None

    @property
    def store_path(self) -> Path:
        """The store folder, resolved against the project folder."""
        return (self.project_dir / self.project.store).resolve()

    def normalized(self) -> dict[str, Any]:
        """The configuration as plain JSON-ready data, keys sorted, defaults filled in."""
        plain: dict[str, Any] = json.loads(json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True))
        return plain


def load_config(project_dir: str | Path = ".") -> Config:
    """Read and validate ``lockstep.toml`` in ``project_dir``.

    Parameters
    ----------
    project_dir : str or Path
        The project folder.

    Returns
    -------
    Config

    Raises
    ------
    ProjectError
        If the folder or its ``lockstep.toml`` does not exist.
    ConfigError
        If the file is not valid TOML or breaks the configuration model; the
        message names the file and every key at fault.
    """
    project_dir = Path(project_dir)
    if project_dir.is_file() and project_dir.name == CONFIG_FILE:
        project_dir = project_dir.parent  # the project's lockstep.toml was given: its folder is meant
    elif project_dir.exists() and not project_dir.is_dir():
        raise ProjectError(f"{project_dir} is a file, not a project folder",
                           hint=f"pass the folder that holds {CONFIG_FILE} (--project DIR)")
    elif not project_dir.exists():
        raise ProjectError(f"project folder {project_dir} does not exist",
                           hint=f"pass the folder that holds {CONFIG_FILE} (--project DIR)")
    path = project_dir / CONFIG_FILE
    if not path.is_file():
        raise ProjectError(
            f"no {CONFIG_FILE} in {project_dir.resolve()}",
            hint="run `lockstep init DATA_FILE --target COLUMN` to create a project, "
            "or pass --project DIR",
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    config = parse_config(raw, source=str(path))
    config._project_dir = project_dir.resolve()
    return config


def parse_config(raw: dict[str, Any], *, source: str = CONFIG_FILE) -> Config:
    """Validate an already-parsed configuration mapping, with lockstep's error messages."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = _merge_union_errors([(_key(tuple(err.get("loc", ()))), err) for err in exc.errors()], raw)
        lines = [f"{source}: invalid configuration ({len(problems)} problem(s)):"]
        lines += [f"  - {p}" for p in problems]
        raise ConfigError("\n".join(lines), hint="see docs/configuration.md for every key") from None


def _merge_union_errors(errors: list[tuple[str, Any]], raw: dict[str, Any]) -> list[str]:
    """One line per key: a value that fits no member of a union is one problem, not one per member."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for key, err in errors:
        grouped.setdefault(key, []).append(err)
    out = []
    for key, errs in grouped.items():
        types = [e for e in errs if e.get("type") in _TYPE_WORDS]
        if len(types) > 1 and len(types) == len(errs):
            words = list(dict.fromkeys(_TYPE_WORDS[e["type"]] for e in types))
            got = _lookup(raw, tuple(types[0].get("loc", ())))
            expected = ", ".join(words[:-1]) + " or " + words[-1]
            out.append(f"{key}: expected {expected}, got {got!r} ({type(got).__name__})")
        else:
            out += [_describe(e, raw) for e in errs]
    return out


_TYPE_WORDS = {
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "datetime_type": "a datetime",
}


def _key(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not _is_union_tag(p)]
    return ".".join(parts) if parts else "(top level)"


def _is_union_tag(part: Any) -> bool:
    # Pydantic adds the member type of a union to the location (e.g. 'int',
    # 'function-after[...]'); those are not keys of the file.
    return isinstance(part, str) and (
        part in {"int", "float", "str", "bool", "datetime", "date", "list[...]"}
        or "[" in part
    )


def _lookup(raw: Any, loc: tuple[Any, ...]) -> Any:
    node = raw
    for part in loc:
        if _is_union_tag(part):
            continue
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def _describe(err: dict[str, Any], raw: dict[str, Any]) -> str:
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        parent, name = loc[:-1], str(loc[-1])
        allowed = _allowed_keys(parent)
        where = f"[{_key(parent)}]" if parent else "the top level"
        return f"unknown key '{name}' in {where}{_suggest(name, allowed)}; allowed: {', '.join(allowed)}"
    key = _key(loc)
    if kind == "missing":
        return f"{key}: required key is missing"
    got = _lookup(raw, loc)
    got_text = f"{got!r} ({type(got).__name__})"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{key}: expected one of {expected}, got {got_text}"
    if kind in _TYPE_WORDS:
        return f"{key}: expected {_TYPE_WORDS[kind]}, got {got_text}"
    if kind == "value_error":
        msg = err.get("msg", "").removeprefix("Value error, ")
        return f"{key}: {msg}" if loc else msg
    return f"{key}: {err.get('msg', 'invalid value')}, got {got_text}"


def _allowed_keys(parent: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] | None = Config
    for part in parent:
        if model is DataConfig and part == "schema":
            # [data.schema.<column>]: the keys of one column's schema
            model = ColumnSchema
            break
        field = _field_by_name(model, str(part)) if model is not None else None
        model = _submodel(field.annotation) if field is not None else None
        if model is None:
            return []
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _field_by_name(model: type[BaseModel], name: str) -> Any:
    for field_name, field in model.model_fields.items():
        if name in (field_name, field.alias):
            return field
    return None


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _suggest(name: str | None, candidates: list[str]) -> str:
    if not name:
        return ""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
