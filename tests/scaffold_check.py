"""A new user's first ten minutes on a data set: `lockstep init` + `lockstep run`, no edits, and what follows.

:func:`check_dataset` does, in a fresh folder, what a user would: write the
data as a CSV, run ``lockstep init DATA --target T --id row_id`` and
``lockstep run`` (real processes), then

* compares the champion's test metric with a default histogram gradient
  boosting model fitted on the same training rows (the project's own
  features, text as ordinal codes);
* runs ``lockstep run`` again, which must skip every step without importing
  MLflow, scikit-learn or a table library (:func:`skipped_run`);
* monitors a random sample of the training rows (this must never be drift);
* copies the project and moves it, and predicts and verifies in both.

It returns a record of what happened; ``bench/init_corpus.py`` prints it for
the whole corpus and ``tests/test_scaffold_corpus.py`` asserts on it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .corpus import Dataset

__all__ = ["HEAVY", "check_dataset", "skipped_run"]

LOCKSTEP = str(Path(sys.executable).with_name("lockstep"))


def _run(*args: str, timeout: float = 1800) -> tuple[int, str, str]:
    done = subprocess.run([LOCKSTEP, *args], capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


#: What deciding that every step is up to date must not import: it reads fingerprints and the registry's database.
HEAVY = frozenset({"mlflow", "sklearn", "skops.io", "scipy", "pipeline", "pyarrow", "numpy", "pandas"})


def skipped_run(folder: Path) -> tuple[dict[str, str], list[str]]:
    """``lockstep run`` in ``folder``, a process of its own: each step's status, and what of :data:`HEAVY` (MLflow,
    scikit-learn, skops, a table library, the project's ``pipeline`` module) it imported (``-X importtime``)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "lockstep", "run", "--project", str(folder),
                           "--json"], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise AssertionError(f"lockstep run exited {done.returncode}: {done.stderr[-2000:]}")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time")}
    if "lockstep.cli" not in imported:
        raise AssertionError("-X importtime listed no import")
    return {s["name"]: s["status"] for s in json.loads(done.stdout)["steps"]}, sorted(imported & HEAVY)


def _json(*args: str) -> tuple[int, Any, str]:
    code, out, err = _run(*args, "--json")
    try:
        return code, json.loads(out), err
    except json.JSONDecodeError:
        return code, None, err or out


def baseline_metric(project_dir: Path) -> tuple[str, float]:
    """The primary metric on the test split of a default HistGradientBoosting* fitted on the training split.

    Its input is the project's latest feature set (the features the scaffolded model reads), text columns as
    ordinal codes; nothing is tuned.
    """
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.preprocessing import OrdinalEncoder

    from lockstep import Project
    from lockstep.core.frames import feature_frame
    from lockstep.core.prediction import model_outputs
    from lockstep.evaluation.metrics import Outputs, compute_metrics

    project = Project(project_dir)
    info = project.feature_info()
    frame = feature_frame(project.read_features(info.version))
    X = frame[info.columns].copy()
    text = [c for c in X.columns if X[c].dtype == object or str(X[c].dtype).startswith(("string", "category"))]
    if text:
        X[text] = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1).fit(
            X.loc[frame["split"] == "train", text].astype(object)).transform(X[text].astype(object))
    y = frame[info.label_column].to_numpy()
    train, test = (frame["split"] == "train").to_numpy(), (frame["split"] == "test").to_numpy()
    keep = ~frame[info.label_column].isna().to_numpy()
    task = project.config.data.task
    model = (HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor)(
        random_state=0)
    model.fit(X[train & keep], y[train & keep])
    labels, proba = model_outputs(model, X[test & keep], task)
    classes = list(model.classes_) if task == "classification" else None
    metric = project.config.primary_metric
    out = Outputs(np.asarray(y[test & keep]), labels, proba, classes)
    return metric, compute_metrics(task, [metric], out, project.config.train.positive_class)[metric]


def _monitor_training_sample(project_dir: Path, sample: Path, rows: int = 2000) -> tuple[int, Any]:
    """Monitor a random sample of the training rows: the code and the report."""
    import numpy as np

    from lockstep import Project

    project = Project(project_dir)
    info = project.feature_info()
    split = np.asarray(project.read_features(info.version).column("split").to_pylist(), dtype=object)
    raw = project.read_snapshot(info.raw_version).to_pandas()
    train = raw[split == "train"]
    train.sample(n=min(rows, len(train)), random_state=1).to_csv(sample, index=False)
    code, payload, _err = _json("monitor", "--data", str(sample), "--project", str(project_dir))
    return code, payload


def check_dataset(data: Dataset, folder: Path, *, relocate: bool = True) -> dict[str, Any]:
    """Everything a new user would do with ``data``; a record of exit codes, verdicts and metrics."""
    record: dict[str, Any] = {"data": data.key, "task": data.task}
    project = folder / data.key
    csv = data.write_csv(project / "data" / f"{data.key}.csv")
    record["rows"] = sum(1 for _ in csv.open()) - 1

    code, out, err = _run("init", str(csv), "--target", data.target, "--id", "row_id", "--project", str(project))
    record["init"] = code
    if code:
        record["error"] = err.strip()[-800:]
        return record
    started = time.perf_counter()
    code, report, err = _json("run", "--project", str(project))
    record["run"], record["run_seconds"] = code, round(time.perf_counter() - started, 1)
    if code or report is None:
        record["error"] = err.strip()[-800:]
        return record
    record["reproduced"], record["identical"] = report["reproduced"], report["identical"]
    champion = report["champion"] or {}
    record["metric"], record["value"] = champion.get("metric"), champion.get("mean")
    _metric, record["baseline"] = baseline_metric(project)
    steps, record["heavy_imports_of_a_second_run"] = skipped_run(project)
    record["second_run_skipped"] = set(steps.values()) == {"skipped"}

    code, payload = _monitor_training_sample(project, project / "training-sample.csv")
    record["monitor"] = code
    record["drifted"] = [d["name"] for d in (payload or {}).get("drifted", [])]

    if relocate:
        copy = folder / f"{data.key}-copy"
        shutil.copytree(project, copy)
        moved = folder / f"{data.key}-moved"
        shutil.move(str(project), str(moved))
        outcomes = []
        for where in (copy, moved):
            predict = _run("predict", "--input", str(where / "data" / csv.name), "--output",
                           str(where / "predictions.parquet"), "--project", str(where))[0]
            verify = _run("verify", "--project", str(where))[0]
            outcomes.append(predict == 0 and verify == 0)
        record["copied"], record["moved"] = outcomes
    return record
