"""``lockstep train``: a feature version in, a registered model out, computed at most once.

1. fingerprint the inputs (feature version, the code of the model and of the
   feature pipeline, the configuration, the numerical environment,
   lockstep's version); a finished run with the same inputs means the model
   is up to date;
2. check the model callable returns a Pipeline ending in an estimator of the
   task, and that the search space names real parameters;
3. search on cross-validation folds of the training split (seeded), then fit
   the final model once per seed under the determinism guard, and evaluate
   each on valid and test;
4. build the registered model, the feature pipeline and the primary seed's
   model pipeline in one Pipeline from raw columns to prediction, and check
   that it reproduces the evaluated test predictions bit for bit;
5. log everything to MLflow and register the model as ``challenger``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import skops.io as sio

from lockstep._version import __version__
from lockstep.core.environment import capture, core_fingerprint, git_state
from lockstep.core.errors import ConfigError, PipelineError
from lockstep.core.fingerprint import fingerprint_json
from lockstep.core.frames import feature_frame, raw_frame
from lockstep.core.model_fingerprint import model_fingerprint
from lockstep.core.prediction import model_outputs, outputs_table
from lockstep.core.schema import ModelSchema
from lockstep.core.usercode import code_identity, load_object
from lockstep.evaluation.metrics import Outputs, compute_metrics, summarize_seeds
from lockstep.evaluation.plots import classification_figures, confusion_table, regression_figures
from lockstep.profiles.profile import reference_profile
from lockstep.profiles.scores import model_scores
from lockstep.registry.refs import ModelRef
from lockstep.registry.versions import TAG, TrainingRecord
from lockstep.training.assembly import (
    assemble_pipeline,
    call_factory,
    check_model,
    check_primary_metric,
    fit_model,
    fit_seed,
    search_best_params,
)
from lockstep.training.determinism import deterministic
from lockstep.training.search import check_space

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.core.sections import SearchConfig
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.versions import VersionInfo
    from lockstep.store import FeatureInfo, Store

__all__ = ["TrainResult", "train"]

Progress = Callable[[str], None]

#: Packages whose classes a saved model may contain without being listed in [registry] trusted_types.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "lockstep.", "builtins.", "collections.")
#: Single types trusted as well: skops checks the function a partial wraps as a type of its own.
TRUSTED_TYPES = ("functools.partial",)
#: Packages pinned in a registered model's requirements.
REQUIRED_PACKAGES = ("scikit-learn", "numpy", "pandas", "scipy", "pyarrow", "skops", "mlflow", "lockstep")


@dataclass
class SeedResult:
    """One seed's fitted model and its evaluation."""

    seed: int
    model: Any
    fingerprint: str
    metrics: dict[str, dict[str, float]]
    outputs: dict[str, Outputs]
    record: dict[str, Any]


@dataclass
class TrainResult:
    """The outcome of :func:`train`.

    Attributes
    ----------
    version : VersionInfo
        The registered version (new, or the one up to date).
    skipped : bool
        True when a finished run had exactly these inputs.
    """

    version: VersionInfo
    skipped: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        info = self.version
        return {
            "run_id": info.run_id,
            "model": info.name,
            "version": info.version,
            "fingerprint": info.fingerprint,
            "aliases": info.aliases,
            "metrics": {k: {"mean": v.get("mean"), "std": v.get("std"), "ci_low": v.get("ci_low"),
                            "ci_high": v.get("ci_high")} for k, v in info.metric_summary("test").items()},
            "valid_metrics": {k: {"mean": v.get("mean"), "std": v.get("std")}
                              for k, v in info.metric_summary("valid").items()},
            "skipped": self.skipped,
            "candidate": info.tags.get("lockstep.candidate"),
            "features_version": _int(info.tags.get("lockstep.features.version")),
            "best_params": info.params.get("best_params"),
            "thread_invariant": info.tags.get("lockstep.thread_invariant"),
            **self.details,
        }


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _resolve(config: Config, candidate: str | None) -> tuple[str, SearchConfig | None]:
    train = config.train
    if train is None:
        raise ConfigError(f"{config.config_path}: there is no [train] section",
                          hint="add [train] with model = \"pipeline:model\" (see docs/configuration.md)")
    if candidate is None:
        return train.model, train.search
    if candidate not in train.candidates:
        known = ", ".join(train.candidates) or "none"
        raise ConfigError(f"{config.config_path}: no [train.candidates.{candidate}] (candidates: {known})")
    chosen = train.candidates[candidate]
    return chosen.model, chosen.search


def training_inputs(config: Config, feature: FeatureInfo, model_ref: str, search: SearchConfig | None,
                    candidate: str | None) -> dict[str, Any]:
    """Every input of a training run, fingerprinted; ``inputs`` is the cache key."""
    model_code = code_identity(model_ref, config.project_dir)
    feature_code = (code_identity(config.features.pipeline, config.project_dir)
                    if config.features.pipeline else None)
    files = {**model_code.files, **(feature_code.files if feature_code else {})}
    normalized = config.normalized()
    train = {k: v for k, v in normalized["train"].items() if k not in ("candidates", "model", "search")}
    config_part = {
        "model": model_ref, "search": search.model_dump(mode="json") if search else None, "candidate": candidate,
        "train": train, "metrics": config.metrics, "primary_metric": config.primary_metric,
        "registry": normalized["registry"]["model"] or config.project.name,
        "data": {k: normalized["data"][k] for k in ("id", "target", "task", "schema")},
        "features": {k: v for k, v in normalized["features"].items() if k != "parity_rows"},
        "inputs": config.feature_inputs,
    }
    environment = capture()
    parts = {
        "features": feature.fingerprint,
        "code": fingerprint_json(files),
        "config": fingerprint_json(config_part),
        "environment": core_fingerprint(environment),
        "lockstep": __version__,
    }
    return {"files": files, "feature_code": feature_code, "environment": environment, "parts": parts,
            "inputs": fingerprint_json(parts)}


def train(config: Config, store: Store, registry: Registry, *, features_version: int | None = None,
          candidate: str | None = None, force: bool = False, progress: Progress | None = None) -> TrainResult:
    """Train, one training at a time per store: a second waits, then finds the first's run up to date.

    See :func:`_train` for the parameters.
    """
    if not store.exists():  # no feature set: the error says so without creating the store
        return _train(config, store, registry, features_version=features_version, candidate=candidate, force=force,
                      progress=progress)
    with store.lock("train", "training"):
        return _train(config, store, registry, features_version=features_version, candidate=candidate, force=force,
                      progress=progress)


def _train(config: Config, store: Store, registry: Registry, *, features_version: int | None = None,
           candidate: str | None = None, force: bool = False, progress: Progress | None = None) -> TrainResult:
    """Train, evaluate, track and register a model (or find it up to date).

    Parameters
    ----------
    config : Config
    store : Store
    registry : Registry
    features_version : int, optional
        The feature set version to train on (default: the latest).
    candidate : str, optional
        Train ``[train.candidates.<candidate>]`` instead of ``[train] model``.
    force : bool, default False
        Train even when a finished run had the same inputs.
    progress : callable, optional

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError, CodeError, PipelineError, NotFoundError
        Nothing is registered in any of these cases.
    """
    step = progress or (lambda _name: None)
    model_ref, search = _resolve(config, candidate)
    task = config.data.task
    feature_table = store.features(config.features.name)
    feature = feature_table.info(features_version)

    step("fingerprinting the inputs")
    fingerprints = training_inputs(config, feature, model_ref, search, candidate)
    feature_code = fingerprints["feature_code"]
    if (feature_code.fingerprint if feature_code else None) != (feature.code.get("fingerprint")
                                                                if feature.code.get("ref") else None):
        raise PipelineError(
            f"the feature code changed since feature set version {feature.version} was built",
            hint="run `lockstep features` first, so that the model is trained on features made by the current code")
    if not force:
        hit = registry.find_run(fingerprints["inputs"])
        if hit is not None:
            return TrainResult(version=registry.version(ModelRef(hit["name"], version=hit["version"])), skipped=True)

    step("importing the model code")
    factory = _checked_factory(config, model_ref, search, candidate)
    step(f"reading feature set version {feature.version}")
    frame = feature_frame(feature_table.read(feature.version))
    X, y, masks = _split(frame, feature, task)

    result = _fit_and_evaluate(config, factory, model_ref, search, X, y, masks, step)
    registered, details = _register(config, store, registry, feature, fingerprints, model_ref, candidate, search,
                                    frame, masks, result, step)
    return TrainResult(version=registered, skipped=False, details=details)


def _checked_factory(config: Config, model_ref: str, search: SearchConfig | None, candidate: str | None) -> Any:
    """The model's factory, imported, with what it makes checked: an estimator of the task, the primary metric
    computable from it, the search space's parameters its own."""
    factory = load_object(model_ref, config.project_dir)
    check_model(call_factory(factory, model_ref), config.data.task, model_ref)
    check_primary_metric(call_factory(factory, model_ref), config.primary_metric, model_ref)
    if search is not None:
        where = f"[train.candidates.{candidate}.search]" if candidate else "[train.search]"
        check_space(call_factory(factory, model_ref), search.space, f"{config.config_path.name} {where}")
    return factory


def _split(frame: pd.DataFrame, feature: FeatureInfo, task: str,
           ) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray]]:
    """Features, labels and a mask per split; refused without train or test rows, or with one class to learn."""
    splits = frame["split"].to_numpy()
    X, y = frame[feature.columns], frame[feature.label_column].to_numpy()
    masks = {name: splits == name for name in ("train", "valid", "test")}
    for name in ("train", "test"):
        if not masks[name].any():
            raise PipelineError(f"feature set version {feature.version} has no {name} rows",
                                hint="check [split] fractions")
    if task == "classification" and len(set(y[masks["train"]])) < 2:
        raise PipelineError("the training split has a single class; nothing to learn")
    return X, y, masks


def _fit_and_evaluate(config: Config, factory: Any, model_ref: str, search: SearchConfig | None, X, y, masks,
                      step: Progress) -> dict[str, Any]:
    train_cfg = config.training
    task, seeds = config.data.task, train_cfg.seeds
    positive = train_cfg.positive_class
    X_train, y_train = X[masks["train"]], y[masks["train"]]
    best_params: dict[str, Any] = {}
    search_table = None
    if search is not None:
        step(f"searching {search.kind} on {search.cv} folds")
        best_params, searcher = search_best_params(config, factory, search, X_train, y_train)
        search_table = pd.DataFrame(searcher.cv_results_)
        search_table = search_table.drop(columns=[c for c in search_table.columns if c == "params"])

    per_seed: list[SeedResult] = []
    for seed in seeds:
        step(f"fitting seed {seed} ({len(per_seed) + 1} of {len(seeds)})")
        model, outputs, record = fit_seed(factory, model_ref, best_params, seed, train_cfg.threads, X, y, masks, task)
        metrics = {name: compute_metrics(task, config.metrics, out, positive) for name, out in outputs.items()}
        per_seed.append(SeedResult(seed, model, model_fingerprint(model), metrics, outputs, record))

    thread_invariant = None
    if train_cfg.thread_check:
        other = 2 if train_cfg.threads == 1 else 1
        step(f"refitting with {other} thread(s) to check thread invariance")
        with deterministic(seeds[0], other):
            model = fit_model(factory, model_ref, best_params, seeds[0], X_train, y_train)
        thread_invariant = model_fingerprint(model) == per_seed[0].fingerprint
    return {"per_seed": per_seed, "best_params": best_params, "search_table": search_table,
            "thread_invariant": thread_invariant}


def _register(config: Config, store: Store, registry: Registry, feature: FeatureInfo, fingerprints: dict,
              model_ref: str, candidate: str | None, search: SearchConfig | None, frame, masks,
              result: dict[str, Any], step: Progress) -> tuple[VersionInfo, dict]:
    """Assemble the registered pipeline, make its artifacts and register it with its lineage."""
    per_seed: list[SeedResult] = result["per_seed"]
    primary = per_seed[0]
    step("building the registered pipeline (features + model)")
    full, raw, raw_X = _registered_pipeline(config, store, feature, frame, masks, primary)
    fingerprint = model_fingerprint(full)
    summaries = {name: summarize_seeds([s.metrics[name] for s in per_seed]) for name in primary.metrics}

    step("evaluating: predictions, plots, reference profile")
    figures, tables = _figures(primary, config.training.positive_class, config.data.task)
    train_features = frame.loc[masks["train"], feature.columns]
    profile = reference_profile(raw_X[masks["train"]], train_features,
                                _score(primary.model, train_features, config.data.task))
    if result["search_table"] is not None:
        tables["search/results.csv"] = result["search_table"]
    schema = _input_schema(config, primary.model)
    tables["golden/inputs.parquet"], tables["golden/outputs.parquet"] = golden_sample(
        full, schema, raw, masks["test"], config.registry.golden_rows)
    tables["predictions.parquet"] = _predictions_table(frame, feature, masks, primary, config.data.task)

    files = fingerprints["files"]
    tags = _lineage_tags(config, feature, fingerprints, model_ref, candidate, fingerprint, primary,
                         result["thread_invariant"])
    search_record = search.model_dump(mode="json") if search else None
    params = {
        "model": model_ref, "candidate": candidate or "default", "best_params": result["best_params"],
        "seeds": config.training.seeds, "threads": config.training.threads, "features_version": feature.version,
        "raw_version": feature.raw_version, "primary_metric": config.primary_metric, "search": search_record,
    }
    packages = fingerprints["environment"]["packages"]
    user_modules = sorted({rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for rel in files})
    record = TrainingRecord(
        run_name=f"{config.model_name}-{candidate or 'default'}",
        model_name=config.model_name, model=full, params=params, metrics=_flat_metrics(summaries, per_seed),
        tags=tags, version_tags=_version_tags(tags, summaries),
        code_paths=sorted({config.project_dir / rel.split("/")[0] for rel in files}),
        pip_requirements=[f"{name}=={packages[name]}" for name in REQUIRED_PACKAGES if packages.get(name)],
        trusted_types=_trusted_types(full, user_modules, config.registry.trusted_types),
        input_example=raw_X.head(5),
        signature=_signature_spec(config, frame[feature.label_column]),
        json_artifacts={"training.json": _training_record(per_seed, summaries, result, fingerprint),
                        "environment.json": fingerprints["environment"],
                        "input_schema.json": schema.to_dict(), "reference_profile.json": profile,
                        "config.json": _config_record(config, model_ref, candidate, search_record),
                        "lineage.json": {"features": feature.to_dict(), "code_files": files}},
        table_artifacts=tables,
        figures=figures,
    )
    step("logging to MLflow and registering the model")
    try:
        version = registry.log_training(record)
    finally:
        for figure in figures.values():
            figure.clear()
    return version, {"thread_invariant": result["thread_invariant"]}


def _training_record(per_seed: list[SeedResult], summaries: dict[str, Any], result: dict[str, Any],
                     fingerprint: str) -> dict[str, Any]:
    """``training.json``: each seed's fingerprint, metrics and determinism record, and their summary."""
    return {
        "per_seed": [{"seed": s.seed, "fingerprint": s.fingerprint, "metrics": s.metrics, "determinism": s.record}
                     for s in per_seed],
        "summary": summaries, "best_params": result["best_params"], "thread_invariant": result["thread_invariant"],
        "registered_fingerprint": fingerprint, "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _version_tags(tags: dict[str, str], summaries: dict[str, Any]) -> dict[str, str]:
    """The registered version's tags: the run's, without the long ones, and the metrics' summaries."""
    out = {k: v for k, v in tags.items() if not k.endswith((".files", ".inputs"))}
    out[f"{TAG}.metrics"] = json_dumps({s: {m: {k: v for k, v in st.items() if k != "values"}
                                            for m, st in sm.items()} for s, sm in summaries.items()})
    return out


def _config_record(config: Config, model_ref: str, candidate: str | None, search: dict[str, Any] | None,
                   ) -> dict[str, Any]:
    """``config.json``: the configuration the version was trained with, which verify rebuilds from."""
    return {"config": config.normalized(), "model": model_ref, "schema_order": list(config.data.columns),
            "candidate": candidate, "search": search}


def _registered_pipeline(config: Config, store: Store, feature: FeatureInfo, frame: pd.DataFrame,
                         masks: dict[str, np.ndarray], primary: SeedResult) -> tuple[Any, pa.Table, pd.DataFrame]:
    """The registered pipeline (feature pipeline + the primary seed's model), checked end to end on the raw test
    rows; with the raw snapshot and its model inputs."""
    raw = store.snapshots.read(feature.raw_version, text_as_dictionary=True)
    if raw.column(feature.id_column).to_pylist() != frame[feature.id_column].tolist():
        raise PipelineError(f"raw snapshot {feature.raw_version} and feature set version {feature.version} "
                            "do not hold the same rows in the same order")
    raw_X = raw_frame(raw, config.data.columns, config.feature_inputs)
    feature_factory = load_object(config.features.pipeline, config.project_dir) if config.features.pipeline else None
    full = assemble_pipeline(feature_factory, config.features.pipeline, raw_X[masks["train"]], primary.model)
    _check_end_to_end(full, raw_X[masks["test"]], primary.outputs["test"], config.data.task)
    return full, raw, raw_X


def _flat_metrics(summaries: dict[str, Any], per_seed: list[SeedResult]) -> dict[str, float]:
    """MLflow's flat metrics: ``<split>_<metric>_<mean|std|ci_low|ci_high>`` and ``..._seed<seed>``."""
    flat: dict[str, float] = {}
    for split_name, summary in summaries.items():
        for metric, stats in summary.items():
            for stat in ("mean", "std", "ci_low", "ci_high"):
                flat[f"{split_name}_{metric}_{stat}"] = stats[stat]
            for seed, value in zip((s.seed for s in per_seed), stats["values"]):
                flat[f"{split_name}_{metric}_seed{seed}"] = value
    return flat


def _lineage_tags(config: Config, feature: FeatureInfo, fingerprints: dict, model_ref: str, candidate: str | None,
                  fingerprint: str, primary: SeedResult, thread_invariant: bool | None) -> dict[str, str]:
    """The run's tags: every input's fingerprint and version, the code, the seeds and the environment."""
    git = git_state(config.project_dir)
    parts = fingerprints["parts"]
    tags = {
        f"{TAG}.inputs": fingerprints["inputs"],
        f"{TAG}.version": __version__,
        f"{TAG}.project": config.project.name,
        f"{TAG}.task": config.data.task,
        f"{TAG}.candidate": candidate or "default",
        f"{TAG}.model.ref": model_ref,
        f"{TAG}.model.fingerprint": fingerprint,
        f"{TAG}.features.name": feature.name,
        f"{TAG}.features.version": str(feature.version),
        f"{TAG}.features.fingerprint": feature.fingerprint,
        f"{TAG}.raw.version": str(feature.raw_version),
        f"{TAG}.raw.fingerprint": feature.raw_fingerprint,
        f"{TAG}.code.fingerprint": parts["code"],
        f"{TAG}.code.files": json_dumps(fingerprints["files"]),
        f"{TAG}.config.fingerprint": parts["config"],
        f"{TAG}.environment.fingerprint": parts["environment"],
        f"{TAG}.seeds": json_dumps(config.training.seeds),
        f"{TAG}.threads": str(config.training.threads),
        f"{TAG}.pythonhashseed": str(primary.record.get("pythonhashseed")),
        f"{TAG}.primary_metric": config.primary_metric,
        f"{TAG}.git.commit": git.get("commit", ""),
        f"{TAG}.git.dirty": str(git.get("dirty", "")),
    }
    if thread_invariant is not None:
        tags[f"{TAG}.thread_invariant"] = str(thread_invariant).lower()
    return tags


def _input_schema(config: Config, model: Any):
    classes = list(model.classes_) if config.data.task == "classification" else None
    return ModelSchema.from_config(config, classes)


def golden_sample(model: Any, schema: Any, raw: Any, test_mask: Any, rows: int):
    """The golden sample: the first ``rows`` test rows (raw, as Arrow) and the model's outputs on them.

    ``lockstep check`` predicts them again with the registered model and
    requires the very same bits. The outputs are computed the way batch
    prediction and the service compute them, on the whole sample at once.
    """
    indices = np.flatnonzero(np.asarray(test_mask))[:rows]
    names = list(dict.fromkeys([*([schema.id_column] if schema.id_column else []), *schema.inputs]))
    sample = raw.select(names).take(pa.array(indices, pa.int64()))
    sample = pa.table([c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in sample.columns],
                      names=sample.column_names)
    labels, proba = model_outputs(model, schema.frame(sample), schema.task)
    outputs = outputs_table(labels, proba, schema.classes, schema.task)
    return sample, outputs.add_column(0, "row", pa.array(np.arange(len(indices)), pa.int64()))


def _signature_spec(config: Config, labels) -> dict[str, Any]:
    """The model's input signature, from the raw schema (the types :func:`raw_frame` gives), and its output type."""
    inputs = []
    for name in config.feature_inputs:
        spec = config.data.columns[name]
        if spec.dtype == "int":
            kind = "double" if spec.nullable else "long"
        elif spec.dtype == "bool":
            kind = "double" if spec.nullable else "boolean"
        else:
            kind = {"float": "double", "str": "string", "datetime": "datetime", "date": "datetime"}[spec.dtype]
        inputs.append((name, kind, not spec.nullable))
    if config.data.task == "regression":
        output = "double"
    elif pd.api.types.is_bool_dtype(labels.dtype):
        output = "boolean"
    elif pd.api.types.is_integer_dtype(labels.dtype):
        output = "long"
    else:
        output = "string"
    return {"inputs": inputs, "output": output}


def json_dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def _check_end_to_end(full: Any, raw_test: pd.DataFrame, evaluated: Outputs, task: str) -> None:
    """The registered pipeline on raw rows must give exactly the predictions that were evaluated."""
    predicted, proba = model_outputs(full, raw_test, task)
    same = np.array_equal(np.asarray(predicted), np.asarray(evaluated.y_pred))
    if same and evaluated.proba is not None:
        same = np.array_equal(proba, evaluated.proba)
    if not same:
        raise PipelineError(
            "the registered pipeline (feature pipeline + model) does not reproduce, on raw rows, the predictions "
            "evaluated on the stored features",
            hint="the feature pipeline's output may not round-trip through the feature table exactly; "
            "check its dtypes (for example float32 or categorical columns)")


def _score(model: Any, X: pd.DataFrame, task: str):
    return model_scores(model, X, task, list(model.classes_) if task == "classification" else None)


def _predictions_table(frame, feature, masks, primary: SeedResult, task: str):
    parts = []
    for name, out in primary.outputs.items():
        part = pd.DataFrame({
            feature.id_column: frame.loc[masks[name], feature.id_column].to_numpy(),
            "split": name,
            "truth": out.y_true,
            "prediction": out.y_pred,
        })
        if out.proba is not None:
            for i, cls in enumerate(out.classes or []):
                part[f"proba_{cls}"] = out.proba[:, i]
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    for column in ("truth", "prediction"):
        if table[column].dtype == object:
            table[column] = table[column].astype(str)
    return table


def _figures(primary: SeedResult, positive: Any, task: str):
    out = primary.outputs["test"]
    tables = {}
    if task == "classification":
        figures = classification_figures(out, positive, "test")
        tables["confusion_matrix.csv"] = confusion_table(out)
    else:
        figures = regression_figures(out, "test")
    return {f"plots/{name}.png": fig for name, fig in figures.items()}, tables


def _trusted_types(model: Any, user_modules: list[str], extra: list[str]) -> list[str]:
    """The types skops will trust when loading: those of trusted packages and the project's modules."""
    untrusted = sio.get_untrusted_types(data=sio.dumps(model))
    prefixes = TRUSTED_PREFIXES + tuple(f"{m}." for m in user_modules)
    trusted = [t for t in untrusted if t.startswith(prefixes) or t in TRUSTED_TYPES or t in extra]
    refused = sorted(set(untrusted) - set(trusted))
    if refused:
        raise PipelineError(f"the model contains types lockstep does not trust by default: {', '.join(refused)}",
                            hint="if you trust them, list them in [registry] trusted_types in lockstep.toml")
    return sorted(trusted)
