"""Registering a trained model: the pipeline assembled and checked end to end, its artifacts and its lineage.

Given the fitted seeds, :func:`register` builds the registered pipeline
(feature pipeline + the primary seed's model), checks that it reproduces on
raw rows what was evaluated on stored features, makes the run's artifacts
(predictions, plots, reference profile, golden sample, input schema) and
its tags (every input's fingerprint), and logs it all as one MLflow run
with its registered version: through a forked helper that has imported
MLflow meanwhile, when training started one (:func:`_log`), else here.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pickle
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from lockstep._version import __version__
from lockstep.compute import fork
from lockstep.core.environment import git_state
from lockstep.core.errors import LockstepError, PipelineError
from lockstep.core.frames import raw_frame
from lockstep.core.model_fingerprint import model_fingerprint
from lockstep.core.prediction import model_outputs, outputs_table
from lockstep.core.schema import ModelSchema
from lockstep.core.usercode import load_module, load_object
from lockstep.evaluation import render
from lockstep.evaluation.metrics import Outputs, summarize_seeds
from lockstep.evaluation.plots import confusion_table, plot_data
from lockstep.profiles.profile import reference_profile
from lockstep.profiles.scores import model_scores
from lockstep.registry.skops_import import skops_io
from lockstep.registry.versions import TAG, TrainingRecord
from lockstep.training.assembly import SeedResult, assemble_pipeline
from lockstep.training.saveable import unreachable_parts

if TYPE_CHECKING:  # pragma: no cover

    from lockstep.core.config import Config
    from lockstep.core.sections import SearchConfig
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.versions import VersionInfo
    from lockstep.store import FeatureInfo, Store

__all__ = ["golden_sample", "register"]

Progress = Callable[[str], None]

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "lockstep.", "builtins.", "collections.")
#: Single types trusted as well: skops checks the function a partial wraps as a type of its own.
TRUSTED_TYPES = ("functools.partial",)
#: Packages pinned in a registered model's requirements.
REQUIRED_PACKAGES = ("scikit-learn", "numpy", "pandas", "scipy", "pyarrow", "skops", "mlflow", "lockstep")
#: A training record larger than this (pickled) is logged here: copies of it in two processes would cost more
#: memory than the second or so the helper saves is worth, next to a training that made that much.
HELPER_BYTES = 256 * 2**20
#: The tag of a run logged by a helper: an id of its own for each training.
HELPER_TAG = f"{TAG}.logged_by_helper"


def register(config: Config, store: Store, registry: Registry, feature: FeatureInfo, fingerprints: dict,
              model_ref: str, candidate: str | None, search: SearchConfig | None, frame, masks,
              result: dict[str, Any], step: Progress, writer: fork.Helper | None = None) -> tuple[VersionInfo, dict]:
    """Assemble the registered pipeline, make its artifacts and register it with its lineage (logged by
    ``writer``, a helper made ready for it, if there is one)."""
    per_seed: list[SeedResult] = result["per_seed"]
    primary = per_seed[0]
    step("building the registered pipeline (features + model)")
    full, raw, raw_X = _registered_pipeline(config, store, feature, frame, masks, primary)
    fingerprint = model_fingerprint(full)
    summaries = {name: summarize_seeds([s.metrics[name] for s in per_seed]) for name in primary.metrics}

    step("evaluating: predictions, plots, reference profile")
    plots = render.start(plot_data(primary.outputs["test"], config.training.positive_class, config.data.task))
    try:
        return _logged(config, registry, feature, fingerprints, model_ref, candidate, search, frame, masks,
                       result, (full, raw, raw_X, fingerprint, summaries), plots, step, writer or fork.Helper.here())
    finally:
        plots.close()  # a helper still drawing when something failed


def _logged(config: Config, registry: Registry, feature: FeatureInfo, fingerprints: dict, model_ref: str,
            candidate: str | None, search: SearchConfig | None, frame, masks, result: dict[str, Any],
            built: tuple, plots: render.Rendering, step: Progress, writer: fork.Helper) -> tuple[VersionInfo, dict]:
    """The training record of the registered pipeline ``built``, logged with the plots being drawn."""
    full, raw, raw_X, fingerprint, summaries = built
    per_seed: list[SeedResult] = result["per_seed"]
    primary = per_seed[0]
    confusion = plots.data.get("confusion_matrix")  # the table of the plot's counts, computed once
    tables = {"confusion_matrix.csv": confusion_table(confusion)} if confusion else {}
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
    # where the work ran: recorded, never fingerprinted (a result is the same on either backend)
    tags.update({f"{TAG}.compute.{key}": value for key, value in result.get("compute", {}).items()})
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
        images=plots.images,
    )
    step("logging to MLflow and registering the model")
    version = _log(registry, record, writer, (config.project_dir, user_modules))
    return version, {"thread_invariant": result["thread_invariant"]}


def _log(registry: Registry, record: TrainingRecord, writer: fork.Helper, project: tuple[Path, list[str]],
         ) -> VersionInfo:
    """Log ``record``: by ``writer``'s child, which has imported MLflow while the model fitted, else here.

    The record goes to the child pickled, and its plots after it, when they are drawn (the child logs them
    last). Its model refers to classes and functions of the project's modules (``project``: the folder and
    the modules' names), which the child imports the way this process did before it unpickles the record
    (MLflow's skops check imports them by name too). A record of more than :data:`HELPER_BYTES`, and
    whatever keeps the child from logging it (see :meth:`lockstep.compute.fork.Helper.run`), mean that it is
    logged here.
    """
    if not writer.forked:
        return registry.log_training(record)
    images = functools.cache(record.images or dict)  # drawn once, whoever logs them
    here = dataclasses.replace(record, images=images)
    logged_by = uuid.uuid4().hex  # the helper's run says so: if it dies while logging, what it left is found
    try:
        # in the child, the plots are what this process sends last (typing: sent_later gives what it was sent)
        travelling = dataclasses.replace(record, images=fork.sent_later,  # type: ignore[arg-type]
                                         tags={**record.tags, HELPER_TAG: logged_by})
        pickled = pickle.dumps(travelling, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - it cannot travel: logged here
        pickled = None
    if pickled is None or len(pickled) > HELPER_BYTES:
        writer.cancel()
        return registry.log_training(here)
    work = functools.partial(_log_pickled, registry, project, pickled)
    return writer.run(work, here=functools.partial(_log_here, registry, here, logged_by), later=images)


def _log_here(registry: Registry, record: TrainingRecord, logged_by: str) -> VersionInfo:
    """Log ``record`` here, when the helper could not: if it died after it had started, the version it registered
    for a run it finished is the result; a run it left unfinished is marked FAILED, its version removed."""
    recovered = registry.recover_training(HELPER_TAG, logged_by)
    return recovered if recovered is not None else registry.log_training(record)


def _log_pickled(registry: Registry, project: tuple[Path, list[str]], pickled: bytes) -> VersionInfo:
    """In the helper: the project's modules imported, the record unpickled and checked to hold the very model
    trained (its fingerprint), then logged."""
    folder, modules = project
    try:
        for name in modules:
            load_module(name, folder)
    except LockstepError as exc:  # imported in the parent: not the user's to fix, and logged there instead
        raise RuntimeError(f"the helper could not import {exc}") from exc
    record = pickle.loads(pickled)  # noqa: S301 - this process's own record, sent by its parent
    if model_fingerprint(record.model) != record.tags[f"{TAG}.model.fingerprint"]:
        raise RuntimeError("the model changed on its way to the helper")  # not lockstep's error: logged here
    return registry.log_training(record)


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


def _trusted_types(model: Any, user_modules: list[str], extra: list[str]) -> list[str]:
    """The types skops will trust when loading: those of trusted packages and the project's modules. A function or
    class skops could not load back by its name (a lambda, a closure) is refused first."""
    unreachable = unreachable_parts(model)
    if unreachable:
        listed = "; ".join(f"'{name}' holds {what}" for name, what in unreachable[:3])
        raise PipelineError(f"the model cannot be saved to be loaded again: {listed}",
                            hint="skops saves a function or class by its module and name: define it with def "
                                 "(or class) at the top level of a module of the project, and use it by name")
    sio = skops_io()
    untrusted = sio.get_untrusted_types(data=sio.dumps(model))
    prefixes = TRUSTED_PREFIXES + tuple(f"{m}." for m in user_modules)
    trusted = [t for t in untrusted if t.startswith(prefixes) or t in TRUSTED_TYPES or t in extra]
    refused = sorted(set(untrusted) - set(trusted))
    if refused:
        raise PipelineError(f"the model contains types lockstep does not trust by default: {', '.join(refused)}",
                            hint="if you trust them, list them in [registry] trusted_types in lockstep.toml")
    return sorted(trusted)
