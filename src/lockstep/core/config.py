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

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from lockstep.core.errors import ConfigError, ProjectError
from lockstep.core.sections import (
    DATABASE_SCHEMES,
    DEFAULT_PRIMARY,
    SERVER_SCHEMES,
    STORE_SCHEMES,
    ColumnSchema,
    ComputeConfig,
    DataConfig,
    FeaturesConfig,
    LineageConfig,
    MonitorConfig,
    ProjectSection,
    RegistryConfig,
    ServeConfig,
    SplitConfig,
    TrainConfig,
    _Section,
    suggest,
    task_metrics,
    uri_scheme,
)

__all__ = ["CONFIG_FILE", "Config", "check_locations", "expand_variables", "load_config", "parse_config",
           "parse_recorded_config"]

CONFIG_FILE = "lockstep.toml"

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
    compute: ComputeConfig = ComputeConfig()
    lineage: LineageConfig = LineageConfig()

    _project_dir: Path | None = PrivateAttr(default=None)
    #: The text of values that named environment variables (``${NAME}``), by key path, as the file has them.
    _templates: dict[tuple[str, ...], str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_cross(self) -> Config:
        schema = self.data.columns
        if self.split.by == "time":
            col = self.split.time_column
            if col not in schema:
                raise ValueError(f"split.time_column '{col}' is not in [data.schema]{suggest(col, list(schema))}")
            if schema[col].dtype not in ("datetime", "date"):
                raise ValueError(f"split.time_column '{col}' must have dtype 'datetime' or 'date'")
            if schema[col].nullable:
                raise ValueError(f"split.time_column '{col}' cannot be nullable: every row needs a time")
        for col in self.features.columns or []:
            if col not in schema:
                raise ValueError(f"features.columns names '{col}', which is not in [data.schema]"
                                 f"{suggest(col, list(schema))}")
        _check_locations(self.project, self.registry)
        known = task_metrics(self.data.task)
        if self.train is not None:
            for metric in [*(self.train.metrics or []), *([self.train.primary_metric] if self.train.primary_metric
                                                          else [])]:
                if metric not in known:
                    raise ValueError(f"train: metric '{metric}' is not computed for {self.data.task}"
                                     f"{suggest(metric, list(known))}; choose from {', '.join(known)}")
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
    def store_remote(self) -> bool:
        """Whether the store is in an object store (``s3://...``) rather than a folder."""
        return uri_scheme(self.project.store) in STORE_SCHEMES

    @property
    def store_location(self) -> str:
        """Where the store is: ``s3://BUCKET/PREFIX``, or the folder resolved against the project folder."""
        if self.store_remote:
            return self.project.store.rstrip("/")
        return str((self.project_dir / self.project.store).resolve())

    @property
    def store_path(self) -> Path:
        """The store folder, resolved against the project folder (a local store's; see :attr:`store_location`)."""
        if self.store_remote:
            raise ConfigError(f"{self.config_path}: the store is {self.project.store}, not a folder",
                              hint="this command needs a local store")
        return (self.project_dir / self.project.store).resolve()

    def normalized(self) -> dict[str, Any]:
        """The configuration as plain JSON-ready data, keys sorted, defaults filled in.

        Values of ``[project]`` and ``[registry]`` that came from environment
        variables keep their ``${NAME}`` form: the configuration is recorded
        with every version, and a password or key must not be.
        """
        plain: dict[str, Any] = json.loads(json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True))
        for keys, text in self._templates.items():
            if keys[0] not in ("project", "registry"):
                continue
            node = plain
            for key in keys[:-1]:
                node = node.get(key) if isinstance(node, dict) else None  # type: ignore[assignment]
            if isinstance(node, dict) and keys[-1] in node:
                node[keys[-1]] = text
        return plain


def _check_locations(project: ProjectSection, registry: RegistryConfig) -> None:
    check_locations(project.store, registry.tracking_uri, registry.artifacts)


def check_locations(store: str, tracking_uri: str | None, artifacts: str | None,
                    names: tuple[str, str, str] = ("project.store", "registry.tracking_uri",
                                                   "registry.artifacts")) -> None:
    """Where the store and registry are must make sense together: a store in S3 needs a shared registry, and a
    registry in a database needs its files somewhere every machine reaches.

    Raises
    ------
    ValueError
        Naming the settings (``names``: the store's, the tracking URI's, the artifacts') and how to fix them.
    """
    store_key, tracking_key, artifacts_key = names
    remote = uri_scheme(store) in STORE_SCHEMES
    tracking = uri_scheme(tracking_uri or "")
    if remote and not tracking_uri:
        raise ValueError(f"{store_key} is {store}, but the registry would be a SQLite file in no folder: "
                         f"set {tracking_key} (postgresql://... or http://...) and, for a database, "
                         f"{artifacts_key} = \"s3://BUCKET/PREFIX\"")
    if tracking in SERVER_SCHEMES and artifacts:
        raise ValueError(f"{artifacts_key} only applies with a database {tracking_key}: an MLflow tracking server "
                         f"keeps the files where its --artifacts-destination says; remove {artifacts_key}")
    if remote and tracking in DATABASE_SCHEMES and not artifacts:
        raise ValueError(f"{tracking_key} is a database and the store is in S3: set {artifacts_key} = "
                         "\"s3://BUCKET/PREFIX\" so that every machine reaches the model files")


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_variables(raw: Any, source: str, keys: tuple[str, ...] = ()) -> tuple[Any, dict[tuple[str, ...], str]]:
    """``raw`` with every ``${NAME}`` in its strings replaced by the environment variable ``NAME``.

    Returns the expanded data and, by key path, the strings as they were
    written. ``$${`` stands for a literal ``${``.

    Raises
    ------
    ConfigError
        Naming the key and the variable, when a variable is not set.
    """
    templates: dict[tuple[str, ...], str] = {}
    if isinstance(raw, dict):
        out = {}
        for key, value in raw.items():
            out[key], found = expand_variables(value, source, (*keys, str(key)))
            templates.update(found)
        return out, templates
    if isinstance(raw, list):
        items = []
        for i, value in enumerate(raw):
            item, found = expand_variables(value, source, (*keys, str(i)))
            items.append(item)
            templates.update(found)
        return items, templates
    if not isinstance(raw, str) or "${" not in raw:
        return raw, templates

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{source}: {'.'.join(keys)} uses ${{{name}}}, but the environment variable {name} "
                              "is not set", hint=f"set {name} (export {name}=...) or write the value in the file")
        return os.environ[name]

    parts = raw.split("$${")
    expanded = "${".join(_VARIABLE.sub(lookup, part) for part in parts)
    templates[keys] = raw
    return expanded, templates


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
    raw, templates = expand_variables(raw, str(path))
    config = parse_config(raw, source=str(path))
    config._project_dir = project_dir.resolve()
    config._templates = templates
    return config


#: Keys that say where one machine kept its artifacts: they shape no model, and may hold ``${NAME}`` templates.
_LOCATION_KEYS = {"project": ("store", "storage_options"), "registry": ("tracking_uri", "artifacts")}


def parse_recorded_config(raw: dict[str, Any], *, source: str) -> Config:
    """A configuration recorded with a model version (its ``config.json``), validated.

    The store and registry locations it records are where the training
    machine kept things, as written (``s3://${BUCKET}/...``); they shape no
    model, and the project asking decides where things are now. They are
    left out, so that a record whose locations named environment variables
    reads anywhere, without them.
    """
    raw = {section: (dict(value) if isinstance(value, dict) else value) for section, value in raw.items()}
    for section, keys in _LOCATION_KEYS.items():
        for key in keys:
            if isinstance(raw.get(section), dict):
                raw[section].pop(key, None)
    return parse_config(raw, source=source)


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
        return f"unknown key '{name}' in {where}{suggest(name, allowed)}; allowed: {', '.join(allowed)}"
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

