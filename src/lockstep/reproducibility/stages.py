"""The stages of ``lockstep verify``: each recomputes one thing from the lineage and compares it with the record.

data (the raw snapshot's fingerprint), environment (packages, platform,
BLAS), code (the files the model was trained with), features (the feature
set rebuilt with the recorded code), model (refitted with the recorded seed
and threads, and the registered file checked), predictions (the test
outputs, bit for bit). :mod:`lockstep.reproducibility.verify` runs them in
order and says which one failed first and why.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lockstep.compute import Compute
from lockstep.core.compare import compare_outputs
from lockstep.core.environment import capture
from lockstep.core.errors import LockstepError, NotFoundError
from lockstep.core.fingerprint import fingerprint_table
from lockstep.core.frames import feature_frame
from lockstep.core.model_fingerprint import model_fingerprint
from lockstep.core.requirements import model_distributions
from lockstep.core.usercode import code_identity, load_object
from lockstep.features.table import IDENTITY, feature_table, transform_raw
from lockstep.registry.refs import ModelRef
from lockstep.reproducibility.codediff import diff_module
from lockstep.reproducibility.envdiff import diff_environments, summarize
from lockstep.training.assembly import assemble_pipeline, check_model, fit_seed, search_best_params

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.reproducibility.lineage import Lineage
    from lockstep.store import Store

__all__ = ["Stage", "Timer", "artifact_check", "code_stage", "data_stage", "environment_stage", "features_stage",
           "model_modules", "model_stage", "predictions_stage", "stored_test_outputs", "with_artifact"]

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


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


def _short(fingerprint: str | None) -> str:
    return (fingerprint or "-")[:12]


# ---------------------------------------------------------------------------------------------- stages


def data_stage(store: Store, lineage: Lineage):
    timer = Timer()
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


def environment_stage(lineage: Lineage, strict: bool):
    timer = Timer()
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


def code_stage(config: Config, lineage: Lineage, recorded_code: bool):
    """Returns the stage and the folder the rebuild imports code from (None: no usable code)."""
    timer = Timer()
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


def features_stage(store: Store, lineage: Lineage, raw, snapshot, code_root: Path):
    timer = Timer()
    config = lineage.config_for(code_root)
    ref = config.features.pipeline
    try:
        factory = load_object(ref, code_root) if ref else None
        frame, features = transform_raw(config, raw, factory, ref or IDENTITY)
        output, _dtypes, _codes = feature_table(config, raw, features, snapshot.id_column, snapshot.target,
                                                ref or IDENTITY)
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


def model_stage(lineage: Lineage, built: dict, code_root: Path, threads: int, full: bool, step: Progress,
                compute: Compute | None = None):
    timer = Timer()
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
            step("repeating the search" + (f" on {compute.workers} Dask worker(s)" if compute and compute.distributed
                                           else ""))
            best_params, _ = search_best_params(config, factory, lineage.search, X[masks["train"]],
                                                y[masks["train"]], threads=threads, compute=compute)
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


def artifact_check(registry: Registry, lineage: Lineage) -> tuple[bool, str]:
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


def predictions_stage(registry: Registry, lineage: Lineage, result: dict):
    timer = Timer()
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


def with_artifact(stage: Stage, ok: bool, detail: str) -> Stage:
    """The model stage with the registered artifact's check added: a bad artifact fails the stage."""
    data = {**stage.data, "artifact": {"ok": ok, "detail": detail}}
    if ok:
        return Stage(stage.name, stage.status, f"{stage.detail}; {detail}", data, stage.seconds)
    return Stage(stage.name, "FAIL", f"{detail}; {stage.detail}", data, stage.seconds)


# ---------------------------------------------------------------------------------------------- verdict


