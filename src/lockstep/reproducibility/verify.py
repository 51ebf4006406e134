"""``lockstep verify``: rebuild a registered model from its lineage and compare, stage by stage.

1. **data**: the raw snapshot still exists (time travel) and its rows still
   have the recorded fingerprint;
2. **environment**: the current environment against the recorded one, each
   difference with a severity (:mod:`lockstep.reproducibility.envdiff`);
3. **code**: the project's code against the recorded file fingerprints,
   naming the changed functions; with ``recorded_code`` the rebuild uses the
   copy of the code stored with the model instead;
4. **features**: recomputed from the snapshot with the recorded
   configuration: the feature table's fingerprint;
5. **model**: refitted with the recorded configuration, best parameters and
   primary seed (the search is repeated only with ``full``): the
   fingerprint of the whole registered pipeline;
6. **predictions**: the rebuilt model's outputs on the test split, bit for
   bit against those stored at training.

A stage that cannot run (its input is missing) is SKIPPED with the reason.
Environment differences that can change numbers make the environment stage
WARN, not FAIL, unless ``strict_env``: what decides is whether the rebuild
gives the same bits. When a stage fails the report names the likeliest
cause: data, code, environment, the thread count, or nondeterminism.
"""

from __future__ import annotations

import ast
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lockstep._version import __version__
from lockstep.core.compare import compare_outputs
from lockstep.core.environment import capture, core_fingerprint
from lockstep.core.errors import LockstepError, NotFoundError
from lockstep.core.fingerprint import fingerprint_json, fingerprint_table
from lockstep.core.frames import feature_frame
from lockstep.core.model_fingerprint import model_fingerprint
from lockstep.core.requirements import model_distributions
from lockstep.core.usercode import code_identity, load_object
from lockstep.features.build import feature_table, transform_raw
from lockstep.registry.refs import ModelRef
from lockstep.reproducibility.codediff import diff_module
from lockstep.reproducibility.envdiff import diff_environments, summarize
from lockstep.reproducibility.lineage import load_lineage
from lockstep.training.assembly import assemble_pipeline, check_model, fit_seed, search_best_params

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.reproducibility.envdiff import EnvDifference
    from lockstep.reproducibility.lineage import Lineage
    from lockstep.store import Store

__all__ = ["STAGES", "Stage", "VerifyReport", "verification_key", "verify"]

STAGES = ("data", "environment", "code", "features", "model", "predictions")
Progress = Callable[[str], None]


@dataclass
class Stage:
    """One stage of a verification."""

    name: str
    status: str  # PASS, FAIL, WARN or SKIPPED
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail, "seconds": round(self.seconds, 3),
                **({"data": self.data} if self.data else {})}


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`."""

    model: str
    version: int
    fingerprint: str
    stages: list[Stage]
    cause: str | None
    options: dict[str, Any]
    environment: list[EnvDifference]
    seconds: float
    key: str
    time: str

    @property
    def reproduced(self) -> bool:
        return all(s.status != "FAIL" for s in self.stages)

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def to_dict(self) -> dict:
        return {
            "model": self.model, "version": self.version, "fingerprint": self.fingerprint,
            "reproduced": self.reproduced, "cause": self.cause,
            "stages": [s.to_dict() for s in self.stages],
            "environment": [d.to_dict() for d in self.environment],
            "options": self.options, "seconds": round(self.seconds, 3), "key": self.key, "time": self.time,
            "lockstep_version": __version__,
        }

    def summary(self) -> dict:
        """What is kept on the model version's tag."""
        return {"reproduced": self.reproduced, "cause": self.cause, "time": self.time, "key": self.key,
                "options": self.options, "stages": {s.name: s.status for s in self.stages},
                "seconds": round(self.seconds, 3), "lockstep_version": __version__}


class _Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


def _short(fingerprint: str | None) -> str:
    return (fingerprint or "-")[:12]


# ---------------------------------------------------------------------------------------------- stages


def _data_stage(store: Store, lineage: Lineage):
    timer = _Timer()
    version = lineage.raw_version
    try:
        snapshot = store.snapshots.info(version)
    except NotFoundError as exc:
        return Stage("data", "FAIL", f"raw snapshot version {version} no longer exists: {exc.message}",
                     seconds=timer()), None, None
    if snapshot.fingerprint != lineage.raw_fingerprint:
        return Stage("data", "FAIL", f"raw snapshot {version} is recorded with fingerprint "
                     f"{_short(snapshot.fingerprint)}, the model with {_short(lineage.raw_fingerprint)}: "
                     "the store was replaced", seconds=timer()), None, None
    try:
        raw = store.snapshots.read(version, text_as_dictionary=True)
    except Exception as exc:  # noqa: BLE001 - a missing or damaged file is the finding
        return Stage("data", "FAIL", f"raw snapshot {version} cannot be read: {type(exc).__name__}: {exc}",
                     seconds=timer()), None, None
    actual = fingerprint_table(raw)
    if actual != lineage.raw_fingerprint:
        return Stage("data", "FAIL", f"raw snapshot {version} was modified: its rows hash to {_short(actual)}, "
                     f"recorded {_short(lineage.raw_fingerprint)}",
                     {"recorded": lineage.raw_fingerprint, "actual": actual}, timer()), raw, snapshot
    return Stage("data", "PASS", f"raw snapshot {version}: {raw.num_rows:,} rows, fingerprint {_short(actual)} "
                 "recomputed and equal", {"fingerprint": actual, "rows": raw.num_rows}, timer()), raw, snapshot


def model_modules(lineage: Lineage) -> list[str]:
    """Top-level modules the model's classes and the recorded code come from (besides the project's)."""
    modules = {t.split(".")[0] for t in lineage.trusted_types}
    for relative in lineage.code_files:
        source = lineage.code.read(relative)
        if source is None:
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    project = {Path(r).parts[0].removesuffix(".py") for r in lineage.code_files}
    return sorted(modules - project - {"builtins"})


def _environment_stage(lineage: Lineage, strict: bool):
    timer = _Timer()
    diffs = diff_environments(lineage.environment, capture(),
                              model_packages=model_distributions(model_modules(lineage)))
    high = [d for d in diffs if d.severity == "high"]
    if not diffs:
        return Stage("environment", "PASS", "identical to the recorded environment", seconds=timer()), diffs
    status = "PASS" if not high else ("FAIL" if strict else "WARN")
    detail = summarize(diffs)
    if high and not strict:
        detail += " (differences that can change numbers; the rebuild below decides)"
    return Stage("environment", status, detail, {"differences": len(diffs), "high": len(high)}, timer()), diffs


def _config_differences(current: Config | None, lineage: Lineage) -> list[str]:
    """Dotted keys of the configuration that shape the model and differ from the recorded ones."""
    if current is None:
        return []
    old, new = lineage.config.normalized(), current.normalized()
    keys = []
    for section in ("data", "split", "features", "train"):
        a, b = old.get(section) or {}, new.get(section) or {}
        for key in sorted(set(a) | set(b)):
            if key in ("parity_rows", "candidates", "source", "null_values", "delimiter", "encoding", "format",
                       "sql"):
                continue
            if a.get(key) != b.get(key):
                keys.append(f"{section}.{key}")
    return keys


def _code_stage(config: Config, lineage: Lineage, recorded_code: bool):
    """Returns the stage and the folder the rebuild imports code from (None: no usable code)."""
    timer = _Timer()
    project_dir = config.project_dir
    refs = [lineage.model_ref] + ([lineage.config.features.pipeline] if lineage.config.features.pipeline else [])
    current: dict[str, str] = {}
    problem = None
    for ref in refs:
        try:
            current.update(code_identity(ref, project_dir).files)
        except LockstepError as exc:
            problem = exc.message
    recorded = lineage.code_files
    changes = []
    for relative in sorted(set(recorded) | set(current)):
        if relative not in current:
            if problem is None:
                changes.append(f"{relative}: no longer imported by the configured code")
            continue
        if relative not in recorded:
            changes.append(f"{relative}: newly imported by the configured code")
            continue
        if recorded[relative] != current[relative]:
            old = lineage.code.read(relative) or b""
            changes.append(diff_module(relative, old, (project_dir / relative).read_bytes()).describe())
    if problem is not None:
        changes.insert(0, problem)
    config_keys = _config_differences(config, lineage)
    notes = ([f"lockstep.toml differs from the recorded configuration in {', '.join(config_keys)}; the rebuild "
              "uses the recorded configuration"] if config_keys else [])
    data = {"changes": changes, "config_differences": config_keys, "files": sorted(recorded)}
    if recorded_code:
        try:
            lineage.code.check()
        except LockstepError as exc:
            return Stage("code", "FAIL", exc.message, data, timer()), None
        moved = ("; the project's code has moved on since: " + "; ".join(changes)) if changes else ""
        return Stage("code", "PASS", f"rebuilding with the code stored with the model ({len(recorded)} file(s), "
                     "fingerprints equal)" + moved + "".join("; " + n for n in notes), data, timer()), \
            lineage.code.root
    if changes:
        usable = project_dir if problem is None else None
        return Stage("code", "FAIL", "changed since training: " + "; ".join(changes)
                     + (" (rebuilding with the current code;" if usable else " (")
                     + " --recorded-code rebuilds with the code stored with the model)"
                     + "".join("; " + n for n in notes), data, timer()), usable
    return Stage("code", "PASS", f"{len(recorded)} file(s) identical to the recorded fingerprints"
                 + "".join("; " + n for n in notes), data, timer()), project_dir


def _first_differing_columns(stored, rebuilt) -> list[str]:
    if stored is None:
        return []
    out = []
    for name in rebuilt.column_names:
        if name not in stored.column_names:
            out.append(f"{name} (new)")
        elif not stored.column(name).equals(rebuilt.column(name).cast(stored.column(name).type, safe=False)
                                            if stored.column(name).type != rebuilt.column(name).type
                                            else rebuilt.column(name)):
            out.append(name)
    out += [f"{name} (missing)" for name in stored.column_names if name not in rebuilt.column_names]
    return out


def _features_stage(store: Store, lineage: Lineage, raw, snapshot, code_root: Path):
    timer = _Timer()
    config = lineage.config_for(code_root)
    ref = config.features.pipeline
    try:
        factory = load_object(ref, code_root) if ref else None
        frame, features = transform_raw(config, raw, factory, ref or "(identity: the raw columns)")
        output, _dtypes, _codes = feature_table(config, raw, features, snapshot.id_column, snapshot.target,
                                                ref or "(identity: the raw columns)")
    except LockstepError as exc:
        return Stage("features", "FAIL", f"the feature pipeline no longer runs: {exc.message}",
                     seconds=timer()), None
    actual = fingerprint_table(output)
    built = {"config": config, "factory": factory, "frame": frame, "output": output}
    if actual == lineage.features_fingerprint:
        return Stage("features", "PASS", f"{output.num_rows:,} rows x {len(features.columns)} features, fingerprint "
                     f"{_short(actual)} recomputed and equal", {"fingerprint": actual}, timer()), built
    try:
        stored = store.features(config.features.name).read(lineage.features_version)
    except Exception:  # noqa: BLE001 - the stored version is only used to name the columns
        stored = None
    columns = _first_differing_columns(stored, output)
    where = f"; differing columns: {', '.join(columns[:8])}" if columns else ""
    return Stage("features", "FAIL", f"recomputed features hash to {_short(actual)}, recorded "
                 f"{_short(lineage.features_fingerprint)}{where}",
                 {"recorded": lineage.features_fingerprint, "actual": actual, "columns": columns}, timer()), built


def _model_stage(lineage: Lineage, built: dict, code_root: Path, threads: int, full: bool, step: Progress):
    timer = _Timer()
    config = built["config"]
    task = config.data.task
    frame = feature_frame(built["output"])
    columns = [c for c in built["output"].column_names if c not in (lineage.config.data.id_column,
                                                                    lineage.config.data.target, "split")]
    splits = frame["split"].to_numpy()
    masks = {name: splits == name for name in ("train", "valid", "test")}
    X, y = frame[columns], frame[lineage.config.data.target].to_numpy()
    try:
        factory = load_object(lineage.model_ref, code_root)
        check_model(factory(), task, lineage.model_ref)
        best_params = lineage.best_params
        notes = []
        if full and lineage.search is not None:
            step("repeating the search")
            best_params, _ = search_best_params(config, factory, lineage.search, X[masks["train"]],
                                                y[masks["train"]], threads=threads)
            same = best_params == lineage.best_params
            notes.append("the search chose the recorded parameters again" if same else
                         f"the search chose {best_params}, recorded {lineage.best_params}")
        step(f"refitting with seed {lineage.seed} and {threads} thread(s)")
        model, evaluated, _ = fit_seed(factory, lineage.model_ref, best_params, lineage.seed, threads, X, y, masks,
                                       task, evaluate=("test",))
        outputs = evaluated["test"]
        full_model = assemble_pipeline(built["factory"], config.features.pipeline, built["frame"][masks["train"]],
                                       model)
    except LockstepError as exc:
        return Stage("model", "FAIL", f"the model could not be refitted: {exc.message}", seconds=timer()), None
    actual = model_fingerprint(full_model)
    ids = frame.loc[masks["test"], lineage.config.data.id_column].to_numpy()
    result = {"outputs": outputs, "ids": ids}
    params = f"best parameters {best_params}" if best_params else "no search"
    extra = "".join("; " + n for n in notes)
    if actual == lineage.info.fingerprint:
        return Stage("model", "PASS", f"refitted ({params}, seed {lineage.seed}, {threads} thread(s)): fingerprint "
                     f"{_short(actual)} equal{extra}", {"fingerprint": actual}, timer()), result
    recorded_step = (lineage.training.get("per_seed") or [{}])[0].get("fingerprint")
    step_same = recorded_step is not None and model_fingerprint(model) == recorded_step
    which = ("the fitted estimator is identical, the feature step differs" if step_same else
             "the fitted model itself differs")
    return Stage("model", "FAIL", f"refitted ({params}, seed {lineage.seed}, {threads} thread(s)): fingerprint "
                 f"{_short(actual)}, recorded {_short(lineage.info.fingerprint)}: {which}{extra}",
                 {"recorded": lineage.info.fingerprint, "actual": actual, "estimator_identical": step_same},
                 timer()), result


def _artifact_check(registry: Registry, lineage: Lineage) -> tuple[bool, str]:
    """Is the registered model file what was registered? Its hash, its trusted types, its stored code and its
    loaded fingerprint, against those recorded at registration (the model stage compares the rebuild with the
    same recorded fingerprint, so a passing stage means rebuild, record and artifact are one model).

    Returns whether it is, and a sentence saying what was found.
    """
    info = lineage.info
    try:
        loaded = registry.load(ModelRef(info.name, version=info.version))
    except LockstepError as exc:
        return False, f"the registered model file is not what was registered: {exc.message}"
    actual = model_fingerprint(loaded.model)
    if actual != info.fingerprint:  # load checks it already; kept for a version registered without one
        return False, (f"the registered model file loads to fingerprint {_short(actual)}, recorded "
                       f"{_short(info.fingerprint)}")
    return True, "the registered model file has its recorded hash and loads to the recorded fingerprint"


def stored_test_outputs(registry: Registry, lineage: Lineage):
    """The test split's outputs stored at training: ids, labels, probabilities (or None)."""
    table = registry.artifact_table(lineage.info, "predictions.parquet").to_pandas()
    table = table[table["split"] == "test"]
    proba_columns = [c for c in table.columns if c.startswith("proba_")]
    return (table[lineage.config.data.id_column].to_numpy(), table["prediction"].to_numpy(),
            table[proba_columns].to_numpy() if proba_columns else None)


def _predictions_stage(registry: Registry, lineage: Lineage, result: dict):
    timer = _Timer()
    ids, labels, proba = stored_test_outputs(registry, lineage)
    outputs = result["outputs"]
    if not np.array_equal(np.asarray(ids, dtype=object), np.asarray(result["ids"], dtype=object)):
        return Stage("predictions", "FAIL", "the rebuilt test split does not hold the rows the model was "
                     "evaluated on", seconds=timer())
    new_labels = outputs.y_pred
    if labels.dtype == object:  # stored as text
        new_labels = np.asarray([str(v) for v in new_labels], dtype=object)
    regression = lineage.config.data.task == "regression"
    comparison = compare_outputs(labels, proba, new_labels, outputs.proba, regression=regression)
    what = "values" if regression else "labels and probabilities"
    if comparison.identical:
        return Stage("predictions", "PASS", f"{comparison.rows:,} test rows: {what} bitwise equal to those stored "
                     "at training", comparison.to_dict(), timer())
    return Stage("predictions", "FAIL", f"{comparison.rows:,} test rows: {comparison.label_mismatches} differing "
                 f"{'values' if regression else 'labels'}, largest difference {comparison.max_abs_diff:.3g}",
                 comparison.to_dict(), timer())


def _with_artifact(stage: Stage, ok: bool, detail: str) -> Stage:
    """The model stage with the registered artifact's check added: a bad artifact fails the stage."""
    data = {**stage.data, "artifact": {"ok": ok, "detail": detail}}
    if ok:
        return Stage(stage.name, stage.status, f"{stage.detail}; {detail}", data, stage.seconds)
    return Stage(stage.name, "FAIL", f"{detail}; {stage.detail}", data, stage.seconds)


# ---------------------------------------------------------------------------------------------- verdict


def _cause(stages: dict[str, Stage], diffs: list[EnvDifference], threads: int, lineage: Lineage) -> str | None:
    failed = [s for s in STAGES if stages[s].status == "FAIL"]
    if not failed:
        return None
    if "data" in failed:
        return "data: the raw snapshot the model was trained on is gone or was modified"
    artifact = stages["model"].data.get("artifact") or {}
    if artifact and not artifact.get("ok"):
        return ("artifact: " + artifact["detail"] + " (the store was modified; restore the model's files or "
                "retrain it)")
    if "code" in failed:
        changes = stages["code"].data.get("changes") or []
        return "code: " + ("; ".join(changes) if changes else stages["code"].detail)
    if failed == ["environment"]:  # only with strict_env
        return "environment: " + stages["environment"].detail
    first = next(s for s in ("features", "model", "predictions") if s in failed)
    if threads != lineage.threads and first in ("model", "predictions"):
        return (f"thread count: the model was trained with {lineage.threads} thread(s) and refitted with {threads}; "
                "this estimator's result depends on the number of threads (see docs/training.md)")
    if first == "model" and stages["model"].data.get("estimator_identical"):
        return ("feature step: the fitted estimator is identical but the fitted feature pipeline differs (the "
                "columns it was fitted on, their order or its parameters)")
    high = [d.describe() for d in diffs if d.severity == "high"]
    if high:
        return "environment: " + "; ".join(high[:5])
    where = "feature pipeline" if first == "features" else "model pipeline"
    return (f"nondeterminism: with the same data, code, configuration, seed and environment the {first} differ; "
            f"something in the {where} is random without a seed (for example np.random.default_rng() or "
            "random.random() without a seed) or depends on time or on the order of a set")


def verification_key(config: Config, lineage: Lineage, options: dict[str, Any], artifact: str | None) -> str:
    """What a verification depends on: the model and its stored file (``artifact``, the file's current hash),
    its snapshot, the current code and numerical environment, the options and lockstep's version.
    ``lockstep run`` skips a verification whose key was verified before."""
    refs = [lineage.model_ref] + ([lineage.config.features.pipeline] if lineage.config.features.pipeline else [])
    code: dict[str, Any] = {}
    for ref in refs:
        try:
            code[ref] = code_identity(ref, config.project_dir).fingerprint
        except LockstepError as exc:
            code[ref] = exc.message
    return fingerprint_json({"model": lineage.info.fingerprint, "artifact": artifact,
                             "raw": lineage.raw_fingerprint, "code": code,
                             "environment": core_fingerprint(), "options": options, "lockstep": __version__})


def verify(config: Config, store: Store, registry: Registry, ref: ModelRef, *, recorded_code: bool = False,
           full: bool = False, threads: int | None = None, strict_env: bool = False,
           progress: Progress | None = None, record: bool = True) -> VerifyReport:
    """Rebuild a registered version from its lineage and compare every stage.

    Parameters
    ----------
    config : Config
        The project's current configuration (its folder holds the current code).
    store : Store
    registry : Registry
    ref : ModelRef
    recorded_code : bool, default False
        Rebuild with the copy of the code stored with the model.
    full : bool, default False
        Repeat the hyperparameter search too.
    threads : int, optional
        Refit with this many BLAS/OpenMP threads instead of the recorded number.
    strict_env : bool, default False
        Fail the environment stage on differences that can change numbers.
    progress : callable, optional
    record : bool, default True
        Keep the report with the model version in the registry.

    Returns
    -------
    VerifyReport
    """
    step = progress or (lambda _name: None)
    started = _Timer()
    info = registry.version(ref)
    lineage = load_lineage(registry, info, config.project_dir)
    used_threads = threads if threads is not None else lineage.threads
    stages, diffs = _stages(config, store, registry, lineage, recorded_code=recorded_code, threads=used_threads,
                            full=full, strict_env=strict_env, step=step)
    options = {"recorded_code": recorded_code, "full": full, "threads": used_threads, "strict_env": strict_env}
    key = verification_key(config, lineage, options, registry.model_file_digest(info))
    report = VerifyReport(
        model=info.name, version=info.version, fingerprint=info.fingerprint,
        stages=[stages[name] for name in STAGES], cause=_cause(stages, diffs, used_threads, lineage),
        options=options, environment=diffs, seconds=started(), key=key,
        time=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if record:
        registry.record_check(info, "verify", report.to_dict(), report.summary())
    return report


def _stages(config: Config, store: Store, registry: Registry, lineage: Lineage, *, recorded_code: bool,
            threads: int, full: bool, strict_env: bool, step: Progress) -> tuple[dict[str, Stage], list[Any]]:
    """Every stage of a verification, in order, and the environment's differences."""
    stages: dict[str, Stage] = {}
    step("checking the raw snapshot")
    stages["data"], raw, snapshot = _data_stage(store, lineage)
    step("comparing the environment")
    stages["environment"], diffs = _environment_stage(lineage, strict_env)
    step("comparing the code")
    stages["code"], code_root = _code_stage(config, lineage, recorded_code)
    # with --recorded-code, the rebuild imports the stored modules from their checked bytes, and nothing else
    imports = lineage.code.importable() if recorded_code and code_root is not None else contextlib.nullcontext()
    with imports:
        stages, _built, result = _rebuild(store, lineage, raw, snapshot, code_root, recorded_code, threads, full,
                                          stages, step)
    step("checking the registered model file")
    stages["model"] = _with_artifact(stages["model"], *_artifact_check(registry, lineage))
    if result is None:
        stages["predictions"] = Stage("predictions", "SKIPPED", "no rebuilt model")
    else:
        step("comparing the test predictions")
        stages["predictions"] = _predictions_stage(registry, lineage, result)
    return stages, diffs


def _rebuild(store: Store, lineage: Lineage, raw, snapshot, code_root: Path | None, recorded_code: bool,
             threads: int, full: bool, stages: dict[str, Stage], step: Progress):
    """The features and model stages: the stages, the rebuilt features and the rebuilt model's outputs."""
    built = result = None
    if raw is None:
        stages["features"] = Stage("features", "SKIPPED", "no raw snapshot to rebuild from")
    elif code_root is None:
        stages["features"] = Stage("features", "SKIPPED", "the feature code cannot be imported"
                                   + ("" if recorded_code else "; --recorded-code uses the code stored with the "
                                      "model"))
    else:
        step("recomputing the features")
        stages["features"], built = _features_stage(store, lineage, raw, snapshot, code_root)
    if built is None or code_root is None:
        stages["model"] = Stage("model", "SKIPPED", "no features to fit on")
    else:
        stages["model"], result = _model_stage(lineage, built, code_root, threads, full, step)
    return stages, built, result
