"""The sections of ``lockstep.toml``: each table of the file as a validated, frozen model.

:class:`lockstep.core.config.Config` holds one of each; this module holds
their definitions, their defaults and the rules that check them.
"""

from __future__ import annotations

import codecs
import difflib
import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

__all__ = [
    "Bound", "CLASSIFICATION_METRICS", "CandidateConfig", "Category", "ColumnSchema", "DEFAULT_PRIMARY",
    "ComputeConfig", "DataConfig", "DerivedId", "Distribution", "Dtype", "FeaturesConfig", "MonitorConfig", "Number",
    "DATABASE_SCHEMES", "LineageConfig", "ProjectSection", "REF_PATTERN", "REGRESSION_METRICS", "RegistryConfig",
    "SERVER_SCHEMES", "STORE_SCHEMES", "SearchConfig", "ServeConfig",
    "SpaceValue", "SplitConfig", "TrainConfig", "suggest", "task_metrics", "uri_scheme",
]


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


#: The URI schemes a remote store may use.
STORE_SCHEMES = ("s3",)
#: The URI schemes of ``[registry] tracking_uri``: a database, or an MLflow tracking server.
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg2", "mysql", "mysql+pymysql", "mssql")
SERVER_SCHEMES = ("http", "https")


def uri_scheme(value: str) -> str:
    """The scheme of a URI (``"s3"``, ``"postgresql"``), or ``""`` for a plain path."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", value)
    return match.group(1).lower() if match else ""


class ProjectSection(_Section):
    """``[project]``: the project's name and where its store lives.

    ``store`` is a folder (relative to the project folder; ``.lockstep`` by
    default) or ``s3://BUCKET/PREFIX`` for a store on S3 or an S3-compatible
    server. ``storage_options`` passes settings to the object store
    (``aws_endpoint_url``, ``aws_region``, ...); without them the standard
    ``AWS_*`` environment variables apply.
    """

    name: StrictStr = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")
    description: StrictStr | None = None
    store: StrictStr = Field(default=".lockstep", min_length=1)
    storage_options: dict[str, StrictStr] = Field(default_factory=dict)

    @field_validator("store")
    @classmethod
    def _store_location(cls, v: str) -> str:
        scheme = uri_scheme(v)
        if scheme and scheme not in STORE_SCHEMES:
            raise ValueError(f"store {v!r}: {scheme}:// is not supported; use a folder or s3://BUCKET/PREFIX")
        if scheme == "s3" and not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^/]+)*/?$", v):
            raise ValueError(f"store {v!r} is not s3://BUCKET/PREFIX (bucket names are 3 to 63 lowercase letters, "
                             "digits, dots and hyphens)")
        return v


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
            raise ValueError(f"target column '{self.target}' is not in [data.schema]{suggest(self.target, names)}")
        if self.id is not None:
            if self.id not in self.columns:
                raise ValueError(f"id column '{self.id}' is not in [data.schema]{suggest(self.id, names)}")
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

    ``tracking_uri`` puts the runs and the registry on a shared service: a
    database (``postgresql://USER:PASSWORD@HOST:PORT/DB``, with ``artifacts
    = "s3://BUCKET/PREFIX"`` for the model files) or an MLflow tracking
    server (``http://HOST:PORT``, which keeps the files itself). By default
    both live in the store folder (SQLite and local files).
    """

    model: StrictStr | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    gates: dict[str, Number] = Field(default_factory=dict)
    improvement: Literal["bootstrap", "std"] | Number = "bootstrap"
    trusted_types: list[StrictStr] = Field(default_factory=list)
    golden_rows: StrictInt = Field(default=100, ge=1, le=100_000)
    public_key: StrictStr | None = None
    tracking_uri: StrictStr | None = None
    artifacts: StrictStr | None = None

    @field_validator("tracking_uri")
    @classmethod
    def _tracking(cls, v: str | None) -> str | None:
        if v is not None and uri_scheme(v) not in (*DATABASE_SCHEMES, *SERVER_SCHEMES):
            raise ValueError(f"tracking_uri {v!r} is not a database URI (postgresql://USER:PASSWORD@HOST:PORT/DB) "
                             "or an MLflow tracking server (http://HOST:PORT)")
        return v

    @field_validator("artifacts")
    @classmethod
    def _artifacts(cls, v: str | None) -> str | None:
        if v is not None and uri_scheme(v) not in STORE_SCHEMES:
            raise ValueError(f"artifacts {v!r} is not s3://BUCKET/PREFIX")
        return v


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


class ComputeConfig(_Section):
    """``[compute]``: where the heavy work runs.

    ``backend = "local"`` (the default) runs everything in lockstep's own
    process (and the processes ``[train] n_jobs`` asks for);
    ``backend = "dask"`` hands the work to a Dask cluster: the scheduler at
    ``address`` (``tcp://HOST:PORT``), or, without an address, a local
    cluster of ``workers`` processes that lockstep starts and stops. Data
    is cut into partitions of at most ``partition_rows`` rows (inside the
    Parquet row groups of the stored tables), one task each: the memory a
    worker needs is that of a partition, not of the table. The
    backend and the number of workers are recorded with every artifact and
    are never part of a fingerprint: a result is the same on either.
    """

    backend: Literal["local", "dask"] = "local"
    address: StrictStr | None = Field(default=None, pattern=r"^(tcp|tls|inproc|ucx)://\S+$")
    workers: StrictInt = Field(default=2, ge=1, le=1024)
    partition_rows: StrictInt = Field(default=1_000_000, ge=1)

    @model_validator(mode="after")
    def _address_needs_dask(self) -> ComputeConfig:
        if self.address is not None and self.backend != "dask":
            raise ValueError(f"compute.address ({self.address}) is only used with backend = \"dask\"; set "
                             "compute.backend = \"dask\" or remove the address")
        return self


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


class LineageConfig(_Section):
    """``[lineage]``: OpenLineage run events for every step (off by default).

    ``file`` (a path, relative to the project folder) appends one JSON
    event per line; ``url`` (``http://HOST:PORT``, for example Marquez)
    posts each event to ``endpoint`` there. Both may be set. ``namespace``
    is the jobs' namespace; jobs are named ``<project>.<step>``. A lineage
    backend that is down or slow never fails a step: a send gives up after
    ``timeout`` seconds, is reported as a warning, and the backend is not
    tried again by the same command.
    """

    file: StrictStr | None = Field(default=None, min_length=1)
    url: StrictStr | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    endpoint: StrictStr = "api/v1/lineage"
    namespace: StrictStr = Field(default="lockstep", min_length=1)
    timeout: Number = Field(default=1.0, gt=0, le=60)

    @property
    def enabled(self) -> bool:
        return self.file is not None or self.url is not None


def suggest(name: str | None, candidates: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``candidates`` to a misspelled ``name``, or nothing."""
    if not name:
        return ""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
