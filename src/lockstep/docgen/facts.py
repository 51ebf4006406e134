"""The facts a model's documentation states, gathered from the registry, the store and the model itself."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from lockstep.core.errors import NotFoundError
from lockstep.core.values import plain
from lockstep.registry.refs import ModelRef
from lockstep.reproducibility.lineage import load_lineage

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.versions import LoadedModel, VersionInfo
    from lockstep.reproducibility.lineage import Lineage
    from lockstep.store import Store

__all__ = ["ModelFacts", "StepFacts", "describe_steps", "gather"]


@dataclass
class StepFacts:
    """One step of a pipeline: what it is, what it does, what goes in and out."""

    name: str
    cls: str
    purpose: str
    inputs: list[str] | None
    outputs: list[str] | None
    params: dict[str, Any]
    tuned: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelFacts:
    """Everything the generated documentation says about a version."""

    info: VersionInfo
    lineage: Lineage
    loaded: LoadedModel
    feature_steps: list[StepFacts]
    model_steps: list[StepFacts]
    snapshot: dict[str, Any] | None
    features: dict[str, Any]
    per_seed: list[dict[str, Any]]
    figures: dict[str, bytes]
    verify: dict[str, Any] | None
    parity: dict[str, Any] | None
    example_record: dict[str, Any] | None
    example_output: dict[str, Any] | None
    project_name: str


def _purpose(obj: Any) -> str:
    """The first sentence of the docstring of the step (or of the function a FunctionTransformer wraps)."""
    target = getattr(obj, "func", None) if type(obj).__name__ == "FunctionTransformer" else None
    doc = inspect.getdoc(target if target is not None else type(obj)) or ""
    paragraph = doc.strip().split("\n\n")[0].replace("\n", " ").strip()
    if not paragraph:
        return "(no docstring)"
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]




def _changed_params(est: Any) -> dict[str, Any]:
    """Parameters that differ from the class's defaults (all of them if the defaults cannot be read)."""
    try:
        params = est.get_params(deep=False)
    except Exception:  # noqa: BLE001 - not an estimator
        return {}
    try:
        defaults = {n: p.default for n, p in inspect.signature(type(est).__init__).parameters.items()
                    if p.default is not inspect.Parameter.empty}
    except (TypeError, ValueError):
        defaults = {}
    out = {}
    for name, value in params.items():
        if hasattr(value, "get_params") or name in ("steps", "transformers"):
            continue
        default = defaults.get(name, inspect.Parameter.empty)
        try:
            same = default is not inspect.Parameter.empty and bool(default == value)
        except Exception:  # noqa: BLE001 - arrays and the like
            same = False
        if not same:
            out[name] = plain(value, fallback=repr)
    return out


def _names(values: Any) -> list[str] | None:
    if values is None:
        return None
    return [str(v) for v in list(values)]


def _outputs(est: Any) -> list[str] | None:
    try:
        return _names(est.get_feature_names_out())
    except Exception:  # noqa: BLE001 - estimators and steps without names
        if hasattr(est, "classes_"):
            return [f"probability of {c}" for c in est.classes_]
        if hasattr(est, "predict"):
            return ["prediction"]
        return None


def describe_steps(est: Any, name: str) -> list[StepFacts]:
    """Every step of a fitted estimator named ``name``: nested pipelines and column transformers included,
    their steps named ``name.step``."""
    if isinstance(est, Pipeline):
        out = []
        for child, step in est.steps:
            if step is not None and step != "passthrough":
                out += describe_steps(step, f"{name}.{child}")
        return out
    if est == "passthrough":
        return [StepFacts(name, "passthrough", "columns passed through unchanged", None, None, {})]
    cls = f"{type(est).__module__}.{type(est).__qualname__}"
    facts = [StepFacts(name, cls, _purpose(est), _names(getattr(est, "feature_names_in_", None)), _outputs(est),
                       _changed_params(est))]
    if isinstance(est, ColumnTransformer) and hasattr(est, "transformers_"):
        for child, transformer, columns in est.transformers_:
            if isinstance(transformer, str) and transformer == "drop":
                continue
            inner = describe_steps(transformer, f"{name}.{child}")
            for step in inner[:1]:
                if step.inputs is None and not callable(columns):
                    step.inputs = _names(columns)
            facts += inner
    return facts


def _tuned(steps: list[StepFacts], best_params: dict[str, Any], root: str) -> None:
    """Attach ``step__param`` search results to the steps they belong to (names relative to ``root``)."""
    for key, value in best_params.items():
        path, _, param = key.rpartition("__")
        name = f"{root}.{path.replace('__', '.')}" if path else root
        for step in steps:
            if step.name == name or (not path and step is steps[-1]):
                step.tuned[param] = plain(value, fallback=repr)
                break


def gather(config: Config, store: Store, registry: Registry, info: VersionInfo) -> ModelFacts:
    """Collect the facts of a version's documentation."""
    lineage = load_lineage(registry, info, config.project_dir)
    loaded = registry.load(ModelRef(info.name, version=info.version))
    full = loaded.model
    feature_step, model_step = full.steps[0][1], full.steps[-1][1]
    feature_steps = describe_steps(feature_step, "features")
    model_steps = describe_steps(model_step, "model")
    _tuned(model_steps, lineage.best_params, "model")
    snapshot = None
    try:
        snapshot = store.snapshots.info(lineage.raw_version).to_dict()
    except NotFoundError:
        snapshot = None
    features = registry.run_json(info, "lineage.json")["features"]
    figures = registry.artifact_files(info, "plots", suffix=".png")
    example_record = example_output = None
    try:
        inputs = registry.artifact_table(info, "golden/inputs.parquet")
        outputs = registry.artifact_table(info, "golden/outputs.parquet")
        if inputs.num_rows:
            row = inputs.slice(0, 1).to_pylist()[0]
            example_record = {k: plain(row[k], fallback=repr) for k in loaded.schema.inputs if k in row}
            first = outputs.slice(0, 1).to_pylist()[0]
            example_output = {k: plain(v, fallback=repr) for k, v in first.items() if k != "row"}
    except NotFoundError:
        pass
    return ModelFacts(
        info=info, lineage=lineage, loaded=loaded, feature_steps=feature_steps, model_steps=model_steps,
        snapshot=snapshot, features=features, per_seed=list(lineage.training.get("per_seed") or []),
        figures=figures, verify=registry.check_result(info, "verify"), parity=registry.check_result(info, "parity"),
        example_record=example_record, example_output=example_output, project_name=config.project.name,
    )
