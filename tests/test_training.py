"""lockstep train / promote / models on a real MLflow store: determinism, caching, gates, bad input."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import importlib_metadata  # MLflow's, to check it is not walked
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lockstep import Project
from lockstep.cli import app
from lockstep.core.errors import CodeError, ConfigError, IntegrityError, NotFoundError, PipelineError

pytestmark = [pytest.mark.slow]

runner = CliRunner()

FAST_TRAIN = '''
[train]
model = "pipeline:model"
seeds = [0, 1]
threads = 1
primary_metric = "roc_auc"
search = { kind = "grid", cv = 3, space = { "estimator__C" = [0.3, 1.0] } }

[train.candidates.boosted]
model = "pipeline:boosted_model"
search = { kind = "random", n_iter = 2, cv = 3, space = { "estimator__learning_rate" = { dist = "loguniform", \
low = 0.05, high = 0.2 } } }

[registry]
model = "churn-test"
gates = { min_roc_auc = 0.70 }
improvement = "std"
'''


def run(*args: str):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def project(telco_featured: Path) -> Project:
    """The telco sample with features built and a fast [train] section."""
    text = (telco_featured / "lockstep.toml").read_text()
    (telco_featured / "lockstep.toml").write_text(text[: text.index("# Training:")] + FAST_TRAIN)
    return Project(telco_featured)


def test_train_registers_a_challenger_with_everything_recorded(project: Project, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written to ./mlruns of the current folder
    walks = []  # MLflow's requirement check lists every installed file (0.3 s) for a warning nobody sees
    walk = importlib_metadata.packages_distributions
    monkeypatch.setattr(importlib_metadata, "packages_distributions", lambda: walks.append(1) or walk())
    code, out, err = run("train", "--project", str(project.path), "--json")
    assert code == 0, err
    assert walks == []
    payload = json.loads(out)
    assert isinstance(payload["run_id"], str) and payload["model"] == "churn-test"
    assert payload["version"] == 1 and payload["skipped"] is False
    assert len(payload["fingerprint"]) == 64
    assert set(payload["metrics"]) == {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc",
                                       "log_loss", "brier_score"}
    assert {"mean", "std"} <= set(payload["metrics"]["roc_auc"])
    assert 0.5 < payload["metrics"]["roc_auc"]["mean"] <= 1
    assert not (tmp_path / "mlruns").exists()

    info = Project(project.path).model_version()
    assert info.aliases == ["challenger"]
    tags = info.tags
    assert tags["lockstep.features.version"] == "0" and tags["lockstep.raw.version"] == "0"
    assert tags["lockstep.features.fingerprint"] == project.feature_info().fingerprint
    assert tags["lockstep.raw.fingerprint"] == project.snapshot().fingerprint
    assert json.loads(tags["lockstep.seeds"]) == [0, 1]
    for key in ("lockstep.code.fingerprint", "lockstep.config.fingerprint", "lockstep.environment.fingerprint",
                "lockstep.git.commit", "lockstep.threads", "lockstep.pythonhashseed"):
        assert key in tags
    assert info.metrics["test_roc_auc_seed0"] == info.metrics["test_roc_auc_seed1"]  # logistic: no randomness
    registry = Project(project.path).registry
    with registry._mlflow() as mlflow:  # the metrics are the logged model's too (MLflow 3's model page)
        logged = registry._client(mlflow).get_run(info.run_id)
        model_id = logged.outputs.model_outputs[0].model_id
        linked = {m.key: m.value for m in registry._client(mlflow).get_logged_model(model_id).metrics}
    assert linked and linked == dict(logged.data.metrics)
    for artifact in ("plots/roc_curve.png", "plots/confusion_matrix.png", "plots/precision_recall.png",
                     "plots/calibration.png", "predictions.parquet", "confusion_matrix.csv",
                     "search/results.csv", "environment.json", "reference_profile.json", "training.json"):
        assert registry._artifact_path(info.run_id, artifact).stat().st_size > 0, artifact
    assert registry.artifact_files(info, "plots")["roc_curve.png"][:4] == b"\x89PNG"
    predictions = registry.artifact_table(info, "predictions.parquet").to_pandas()
    assert set(predictions["split"]) == {"valid", "test"}
    assert {"rownames", "truth", "prediction", "proba_No", "proba_Yes"} <= set(predictions.columns)
    profile = json.loads(registry.artifact_bytes(info, "reference_profile.json"))
    assert profile["raw"]["tenure"]["kind"] == "numeric" and sum(profile["raw"]["tenure"]["counts"]) > 0
    assert profile["features"]["contract"]["kind"] == "categorical"
    environment = json.loads(registry._artifact_path(info.run_id, "environment.json").read_text())
    assert environment["packages"]["scikit-learn"]
    requirements = (registry._version_dir(info) / "requirements.txt").read_text().splitlines()
    assert f"scikit-learn=={environment['packages']['scikit-learn']}" in requirements


def test_training_twice_gives_the_same_model_and_bitwise_equal_predictions(project: Project) -> None:
    first = project.train()
    second = project.train(force=True)
    assert second.version.version == first.version.version + 1
    assert first.version.fingerprint == second.version.fingerprint
    registry = project.registry
    a = pd.read_parquet(registry._artifact_path(first.version.run_id, "predictions.parquet"))
    b = pd.read_parquet(registry._artifact_path(second.version.run_id, "predictions.parquet"))
    assert a["proba_Yes"].to_numpy().tobytes() == b["proba_Yes"].to_numpy().tobytes()
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_training_in_two_processes_gives_the_same_fingerprint(project: Project) -> None:
    exe = str(Path(sys.executable).with_name("lockstep"))
    fingerprints = []
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        out = subprocess.run([exe, "train", "--project", str(project.path), "--force", "--json"], env=env,
                             capture_output=True, text=True, check=True)
        fingerprints.append(json.loads(out.stdout)["fingerprint"])
    assert fingerprints[0] == fingerprints[1]


def test_unchanged_inputs_skip_training(project: Project, monkeypatch) -> None:
    first = project.train()
    import lockstep.core.usercode as usercode

    monkeypatch.setattr(usercode, "load_object", lambda *a, **k: pytest.fail("the model code was imported"))
    again = Project(project.path).train()
    assert again.skipped and again.version.version == first.version.version
    assert len(project.model_versions()) == 1


def test_a_changed_feature_version_retrains(project: Project) -> None:
    first = project.train()
    from .conftest import read_rows, write_rows

    header, rows = read_rows(project.path / "data" / "wa_churn.csv")
    write_rows(project.path / "data" / "wa_churn.csv", header, rows[:550])
    project.ingest()
    project.build_features()
    second = project.train()
    assert not second.skipped and second.version.version == 2
    assert second.version.tags["lockstep.features.version"] == "1"
    assert second.version.fingerprint != first.version.fingerprint


def _thread_fingerprints(model_factory, X, y) -> tuple[str, str]:
    from lockstep.core.model_fingerprint import model_fingerprint
    from lockstep.training.determinism import deterministic, seed_estimator

    out = []
    for threads in (1, 2):
        with deterministic(0, threads):
            model = model_factory()
            seed_estimator(model, 0)
            out.append(model_fingerprint(model.fit(X, y)))
    return out[0], out[1]


def test_thread_count_one_against_two(project: Project) -> None:
    """Logistic regression on the telco features is identical with 1 and 2 threads; the run says so."""
    text = (project.path / "lockstep.toml").read_text().replace("threads = 1\n", "threads = 1\nthread_check = true\n")
    (project.path / "lockstep.toml").write_text(text)
    result = Project(project.path).train()
    assert result.version.tags["lockstep.thread_invariant"] == "true"
    from lockstep.core.frames import feature_frame
    from lockstep.core.usercode import load_object

    frame = feature_frame(project.read_features())
    columns = project.feature_info().columns
    one, two = _thread_fingerprints(load_object("pipeline:model", project.path), frame[columns], frame["churn"])
    assert one == two


def test_the_run_reports_a_thread_dependent_estimator_truthfully(tmp_path: Path) -> None:
    """Ridge (Cholesky on BLAS) may differ across thread counts: the recorded flag must match reality."""
    from .conftest import AMES_CSV, EXAMPLES, read_rows, write_rows

    folder = tmp_path / "ames"
    shutil.copytree(EXAMPLES / "ames-housing", folder, ignore=shutil.ignore_patterns(".lockstep", "data"))
    header, rows = read_rows(AMES_CSV)
    write_rows(folder / "data" / "ames.csv", header, rows[:800])
    text = (folder / "lockstep.toml").read_text()
    text = text.replace("seeds = [0, 1, 2]", "seeds = [0]").replace(
        '"estimator__regressor__alpha" = [1.0, 3.0, 10.0, 30.0]', '"estimator__regressor__alpha" = [1.0, 10.0]')
    (folder / "lockstep.toml").write_text(text)
    project = Project(folder)
    project.ingest()
    project.build_features()
    result = project.train()
    recorded = result.version.tags["lockstep.thread_invariant"] == "true"
    from lockstep.core.frames import feature_frame
    from lockstep.core.usercode import load_object

    frame = feature_frame(project.read_features())
    train = frame[frame["split"] == "train"]
    columns = project.feature_info().columns
    factory = load_object("pipeline:model", folder)
    best = json.loads(result.version.params["best_params"])

    def fitted():
        return factory().set_params(**best)

    one, two = _thread_fingerprints(fitted, train[columns], train["Sale_Price"].to_numpy())
    assert recorded == (one == two)
    assert result.to_dict()["metrics"]["rmse"]["mean"] > 0  # regression metrics are there
    registry = project.registry
    for artifact in ("plots/residuals.png", "plots/predicted_vs_actual.png"):
        assert registry._artifact_path(result.version.run_id, artifact).stat().st_size > 0


KNN_MODEL = """

def knn_model():
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    preprocess = ColumnTransformer([("numeric", StandardScaler(), NUMBERS),
                                    ("text", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL + CODES)])
    return Pipeline([("preprocess", preprocess), ("estimator", KNeighborsRegressor(15, weights="distance"))])
"""


def test_a_model_whose_predictions_depend_on_the_thread_count_is_registered(tmp_path: Path) -> None:
    """k nearest neighbours by distance on wages (CPS 1985): its predictions at one OpenMP thread (the training's)
    and at the machine's count can pick other neighbours. Every path now predicts on one thread, so the model is
    registered (it was refused, blaming the feature dtypes), rebuilt bit for bit, and every path agrees."""
    from .conftest import lockstep_here
    from .corpus import INIT_CORPUS

    csv = INIT_CORPUS["cps1985"].write_csv(tmp_path / "cps.csv")
    folder = tmp_path / "wages"
    made = lockstep_here("init", str(csv), "--target", "wage", "--id", "row_id", "--project", str(folder))
    assert made.returncode == 0, made.stderr
    (folder / "pipeline.py").write_text((folder / "pipeline.py").read_text() + KNN_MODEL)
    config = folder / "lockstep.toml"
    config.write_text(config.read_text().replace('model = "pipeline:model"', 'model = "pipeline:knn_model"'))
    project = Project(folder)
    project.ingest()
    project.build_features()
    result = project.train()  # refused before: "does not reproduce, on raw rows, the predictions evaluated"
    assert result.version.tags["lockstep.model.ref"] == "pipeline:knn_model"
    ref = f"{result.version.name}/{result.version.version}"
    verified = project.verify(ref)
    assert verified.reproduced, verified.cause
    report = project.parity(ref)  # every path predicts on one BLAS and one OpenMP thread: all agree
    assert report.identical and all(p.status == "PASS" for p in report.paths if p.name != "onnx"), report.paths


def test_promotion_gates(project: Project) -> None:
    first = project.train()
    promoted = project.promote()
    assert promoted.promoted and promoted.report.passed
    assert Project(project.path).model_version("churn-test@champion").version == first.version.version
    # the same model retrained (equal fingerprints) replaces the champion: no risk in that
    same = project.train(force=True)
    assert same.version.fingerprint == first.version.fingerprint
    again = project.promote()
    rule = next(r for r in again.report.rules if r.rule == "improvement")
    assert again.promoted and rule.passed and "same model" in rule.detail
    # a challenger that is not better than the champion by more than the spread is refused
    toml = project.path / "lockstep.toml"
    toml.write_text(toml.read_text().replace('"estimator__C" = [0.3, 1.0]', '"estimator__C" = [0.0003]'))
    second = Project(project.path).train()
    refused = Project(project.path).promote()
    assert not refused.promoted
    rule = next(r for r in refused.report.rules if r.rule == "improvement")
    assert not rule.passed and "which must exceed the larger seed-to-seed std" in rule.detail
    assert project.model_version("churn-test@champion").version == same.version.version
    code, out, _ = run("promote", f"churn-test/{second.version.version}", "--project", str(project.path), "--json")
    assert code == 3 and json.loads(out)["promoted"] is False
    # an absolute gate the model cannot meet
    text = (project.path / "lockstep.toml").read_text().replace("min_roc_auc = 0.70", "min_roc_auc = 0.999")
    (project.path / "lockstep.toml").write_text(text)
    code, out, _ = run("promote", "churn-test/1", "--project", str(project.path))
    assert code == 3 and "FAIL min_roc_auc" in out and ">= 0.999" in out


def test_models_list_and_show(project: Project) -> None:
    project.train()
    project.promote()
    code, out, _ = run("models", "list", "--project", str(project.path), "--json")
    versions = json.loads(out)
    assert code == 0 and versions[0]["aliases"] == ["challenger", "champion"]
    code, out, _ = run("models", "show", "churn-test@champion", "--project", str(project.path), "--json")
    shown = json.loads(out)
    assert shown["version"] == 1 and shown["lineage"]["raw.version"] == "0"
    assert shown["metrics"]["test"]["roc_auc"]["mean"] > 0.5
    code, out, _ = run("models", "show", "--project", str(project.path))
    assert code == 0 and "Lineage" in out and "raw data" in out
    code, _, err = run("models", "show", "churn-test/9", "--project", str(project.path))
    assert code == 2 and "has no version 9 (versions: 1" in err
    code, _, err = run("models", "show", "nothere@champion", "--project", str(project.path))
    assert code == 2 and "no registered model named 'nothere'" in err


def test_the_registered_model_loads_in_a_fresh_process_from_the_registry_alone(project: Project,
                                                                               tmp_path: Path) -> None:
    result = project.train()
    registry = project.registry
    predictions = pd.read_parquet(registry._artifact_path(result.version.run_id, "predictions.parquet"))
    test_ids = predictions.loc[predictions["split"] == "test", "rownames"].tolist()
    raw = project.read_snapshot().to_pandas()
    rows = raw.set_index("rownames").loc[test_ids].reset_index()
    rows.to_parquet(tmp_path / "rows.parquet")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    script = f"""
import sys, json
import pandas as pd
from lockstep.core.config import load_config
from lockstep.core.frames import raw_frame
from lockstep.registry.mlflow_registry import Registry
from lockstep.registry.refs import ModelRef
import pyarrow as pa
sys.path = [p for p in sys.path if p not in ('', '{project.path}')]
config = load_config('{project.path}')
loaded = Registry(config.store_path, 'telco').load(ModelRef('churn-test', version=1))
table = pa.Table.from_pandas(pd.read_parquet('{tmp_path / "rows.parquet"}'), preserve_index=False)
X = raw_frame(table, config.data.columns, config.feature_inputs)
proba = loaded.model.predict_proba(X)[:, 1]
print(json.dumps({{"proba": proba.tolist(), "module": loaded.model.steps[0][1].steps[1][1].__module__}}))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=moved, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    expected = predictions.loc[predictions["split"] == "test", "proba_Yes"].to_numpy()
    assert np.asarray(payload["proba"]).tobytes() == expected.tobytes()


def test_loading_refuses_a_tampered_model(project: Project) -> None:
    result = project.train()
    registry = project.registry
    model_dir = registry._version_dir(result.version)
    mlmodel = (model_dir / "MLmodel").read_text()
    # an extra trusted type smuggled into the MLmodel file
    smuggled = mlmodel.replace("skops_trusted_types:\n", "skops_trusted_types:\n    - os.system\n")
    (model_dir / "MLmodel").write_text(smuggled)
    with pytest.raises(IntegrityError, match="declares types that were not trusted at registration: os.system"):
        project.load_model("churn-test/1")
    (model_dir / "MLmodel").write_text(mlmodel)
    assert project.load_model("churn-test/1").info.version == 1
    # a changed model file
    skops_file = model_dir / "model.skops"
    original = skops_file.read_bytes()
    skops_file.write_bytes(original + b"\x00")
    with pytest.raises(IntegrityError, match="changed since it was registered"):
        project.load_model("churn-test/1")
    skops_file.write_bytes(original)


def test_an_untrusted_type_is_refused_at_training_unless_listed(project: Project) -> None:
    (project.path / "oddmodel.py").write_text('''
from fractions import Fraction
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
import pipeline

class Keep(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        self.scale_ = Fraction(1, 3)
        return self
    def transform(self, X):
        return X[pipeline.NUMERIC_FEATURES].fillna(0)

def model():
    return Pipeline([("keep", Keep()), ("estimator", LogisticRegression(max_iter=5000))])
''')
    text = (project.path / "lockstep.toml").read_text().replace('model = "pipeline:model"', 'model = "oddmodel:model"')
    text = text.replace('search = { kind = "grid", cv = 3, space = { "estimator__C" = [0.3, 1.0] } }\n', "", 1)
    (project.path / "lockstep.toml").write_text(text)
    with pytest.raises(PipelineError, match="types lockstep does not trust by default: fractions.Fraction"):
        Project(project.path).train()
    assert Project(project.path).model_versions() == []
    text = text.replace('improvement = "std"', 'improvement = "std"\ntrusted_types = ["fractions.Fraction"]')
    (project.path / "lockstep.toml").write_text(text)
    assert Project(project.path).train().version.version == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("def model():\n    from sklearn.linear_model import LogisticRegression\n    return LogisticRegression()\n",
         "returned a LogisticRegression, not a scikit-learn Pipeline"),
        ("def model():\n    from sklearn.pipeline import make_pipeline\n    from sklearn.linear_model import Ridge\n"
         "    return make_pipeline(Ridge())\n", "last step is Ridge, not a classifier"),
    ],
)
def test_a_model_callable_that_breaks_the_contract(project: Project, body: str, message: str) -> None:
    (project.path / "badmodel.py").write_text(body)
    text = (project.path / "lockstep.toml").read_text().replace('model = "pipeline:model"', 'model = "badmodel:model"')
    text = text.replace('search = { kind = "grid", cv = 3, space = { "estimator__C" = [0.3, 1.0] } }\n', "", 1)
    (project.path / "lockstep.toml").write_text(text)
    with pytest.raises(PipelineError, match=message):
        Project(project.path).train()
    code, _, err = run("train", "--project", str(project.path))
    assert code == 2 and "Traceback" not in err
    assert Project(project.path).model_versions() == []


def test_a_search_parameter_that_does_not_exist(project: Project) -> None:
    text = (project.path / "lockstep.toml").read_text().replace('"estimator__C"', '"estimator__Cee"')
    (project.path / "lockstep.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        Project(project.path).train()
    assert "'estimator__Cee' (did you mean 'estimator__C'" in str(info.value)
    assert "[train.search]" in str(info.value)
    assert Project(project.path).model_versions() == []


def test_a_primary_metric_not_computed_for_the_task(project: Project) -> None:
    text = (project.path / "lockstep.toml").read_text().replace('primary_metric = "roc_auc"', 'primary_metric = "rmse"')
    (project.path / "lockstep.toml").write_text(text)
    code, _, err = run("train", "--project", str(project.path))
    assert code == 2 and "metric 'rmse' is not computed for classification" in " ".join(err.split())


def test_a_feature_version_that_does_not_exist(project: Project) -> None:
    with pytest.raises(NotFoundError, match=r"no version 4 \(versions: 0\)"):
        project.train(features_version=4)


def test_missing_train_section_and_unknown_candidate(telco_project: Path) -> None:
    text = (telco_project / "lockstep.toml").read_text()
    (telco_project / "lockstep.toml").write_text(text[: text.index("# Training:")])
    p = Project(telco_project)
    p.ingest()
    p.build_features()
    with pytest.raises(ConfigError, match=r"there is no \[train\] section"):
        p.train()


def test_unknown_candidate(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"no \[train.candidates.nope\] \(candidates: boosted\)"):
        project.train(candidate="nope")


def test_model_code_that_cannot_be_imported(project: Project) -> None:
    text = (project.path / "lockstep.toml").read_text()
    text = text.replace('model = "pipeline:model"', 'model = "pipeline:nomodel"')
    (project.path / "lockstep.toml").write_text(text)
    with pytest.raises(CodeError, match="pipeline has no attribute 'nomodel'"):
        Project(project.path).train()


def test_stale_features_are_refused(project: Project) -> None:
    source = (project.path / "pipeline.py").read_text()
    (project.path / "pipeline.py").write_text(source + "\n# an edit\n")
    with pytest.raises(PipelineError, match="feature code changed since feature set version 0"):
        Project(project.path).train()


def test_boosted_candidate_with_random_search(project: Project) -> None:
    result = project.train(candidate="boosted")
    assert result.version.tags["lockstep.candidate"] == "boosted"
    assert "estimator__learning_rate" in json.loads(result.version.params["best_params"])


def test_ui_serves_the_store_on_localhost(project: Project) -> None:
    import socket
    import time
    import urllib.request

    project.train()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = str(Path(sys.executable).with_name("lockstep"))
    proc = subprocess.Popen([exe, "ui", "--port", str(port), "--project", str(project.path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/registered-models/search",
                                      timeout=5).read().decode()
        assert "churn-test" in body
        # Ctrl-C, or `kill -INT` of this process alone: the UI's server and its workers stop too
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)  # the workers' ends of the pipes closed as well
        assert proc.returncode == 0 and "Stopped" in err.decode(), err.decode()
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_metrics_match_sklearn() -> None:
    from sklearn import metrics as m

    from lockstep.evaluation.metrics import Outputs, compute_metrics, summarize_seeds

    rng = np.random.default_rng(0)
    y = np.where(rng.random(200) > 0.6, "Yes", "No").astype(object)
    p = rng.random(200)
    proba = np.column_stack([1 - p, p])
    pred = np.where(p > 0.5, "Yes", "No").astype(object)
    got = compute_metrics("classification", ["roc_auc", "f1", "log_loss", "brier_score"],
                          Outputs(y, pred, proba, ["No", "Yes"]))
    assert got["roc_auc"] == m.roc_auc_score(y == "Yes", p)
    assert got["f1"] == m.f1_score(y, pred, pos_label="Yes")
    assert got["log_loss"] == m.log_loss(y, proba, labels=["No", "Yes"])
    assert got["brier_score"] == m.brier_score_loss(y == "Yes", p)
    summary = summarize_seeds([{"a": 1.0}, {"a": 2.0}, {"a": 3.0}])["a"]
    assert summary["mean"] == 2.0 and summary["std"] == 1.0
    assert summary["ci_low"] == pytest.approx(2.0 - 4.302652729 / 3 ** 0.5, rel=1e-6)
    assert summarize_seeds([{"a": 0.1 + 0.2}] * 3)["a"]["std"] == 0.0


def test_seed_estimator_reaches_nested_random_states() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import SplineTransformer

    from lockstep.training.determinism import seed_estimator

    pipe = Pipeline([("pre", ColumnTransformer([("s", SplineTransformer(), ["a"])])),
                     ("forest", RandomForestClassifier())])
    names = seed_estimator(pipe, 7)
    assert names == ["forest__random_state"]
    assert pipe.get_params()["forest__random_state"] == 7


def test_model_fingerprint_is_stable_across_processes() -> None:
    script = """
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from lockstep.core.model_fingerprint import model_fingerprint
rng = np.random.default_rng(0)
X = rng.normal(size=(100, 3)); y = (X[:, 0] > 0).astype(int)
print(model_fingerprint(RandomForestClassifier(n_estimators=5, random_state=1).fit(X, y)))
"""
    outs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("3", "4")}
    assert len(outs) == 1 and re.fullmatch(r"[0-9a-f]{64}", outs.pop())


def test_a_probability_metric_needs_a_classifier_with_probabilities(tmp_path: Path) -> None:
    """LinearSVC has no predict_proba: with ROC AUC as the primary metric, training stops before fitting, saying
    why and what to do; with accuracy it trains, and metrics needing probabilities are not defined."""
    from .corpus import CORPUS
    from .model_matrix import Config, matrix_project

    svm = Config("svm", "LinearSVC(random_state=0)")
    folder = matrix_project(tmp_path / "penguins", CORPUS["penguins:species"], [svm])
    project = Project(folder)
    project.ingest()
    project.build_features()
    done = CliRunner().invoke(app, ["train", "--candidate", "svm", "--project", str(folder)])
    assert done.exit_code == 2
    assert "primary metric roc_auc needs class probabilities, and LinearSVC has no predict_proba" in done.stderr
    assert project.model_versions() == []

    text = (folder / "lockstep.toml").read_text().replace('primary_metric = "roc_auc"', 'primary_metric = "accuracy"')
    (folder / "lockstep.toml").write_text(text)
    result = Project(folder).train(candidate="svm")
    metrics = result.version.metric_summary("test")
    assert 0.5 < metrics["accuracy"]["mean"] <= 1.0
    assert "roc_auc" not in metrics and "brier_score" not in metrics  # not defined: not logged


def _module_level(x):
    return x


def _closure():
    def inner(x):
        return x
    return inner


def _local_estimator():
    from sklearn.base import BaseEstimator, TransformerMixin

    class Local(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None):
            return self

        def transform(self, X):
            return X
    return Local()


@pytest.mark.parametrize(("build", "parameter", "described"), [
    (lambda ft, p: p([("odd", ft(lambda x: x))]), "odd__func", "a lambda"),
    (lambda ft, p: p([("odd", ft(_closure()))]), "odd__func", "a function defined inside a function"),
    (lambda ft, p: p([("odd", ft(func=_module_level, inverse_func=functools.partial(lambda x, k: x, k=1)))]),
     "odd__inverse_func", "a lambda"),
    (lambda ft, p: p([("odd", _local_estimator())]), "odd", "an estimator of a class defined inside a function"),
    (lambda ft, p: p([("cols", __import__("sklearn.compose", fromlist=["x"]).ColumnTransformer(
        [("a", ft(lambda x: x), [0])]))]), "cols__a__func", "a lambda"),
])
def test_a_model_skops_could_not_load_back_is_named_by_its_parameter(build, parameter: str, described: str) -> None:
    """A lambda, a closure or a class defined in a function would be saved and fail to load: found among the
    parameters (nested ones too) before anything is logged, by the parameter that holds it."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from lockstep.training.saveable import unreachable_parts

    found = unreachable_parts(build(FunctionTransformer, Pipeline))
    assert [name for name, _ in found] == [parameter]
    assert found[0][1].startswith(described), found


def test_functions_skops_loads_back_by_name_are_not_refused() -> None:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from lockstep.training.saveable import unreachable_parts

    model = Pipeline([("log", FunctionTransformer(np.log1p, inverse_func=np.expm1)),
                      ("same", FunctionTransformer(functools.partial(_module_level))),
                      ("estimator", TransformedTargetRegressor(Ridge(), func=np.log1p, inverse_func=np.expm1))])
    assert unreachable_parts(model) == []


def test_a_lambda_in_the_model_is_refused_before_anything_is_logged(project: Project) -> None:
    (project.path / "lambdamodel.py").write_text('''
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
import pipeline

def model():
    return Pipeline([("keep", FunctionTransformer(lambda X: X[pipeline.NUMERIC_FEATURES].fillna(0))),
                     ("estimator", LogisticRegression(max_iter=5000))])
''')
    text = (project.path / "lockstep.toml").read_text().replace('model = "pipeline:model"',
                                                                'model = "lambdamodel:model"')
    text = text.replace('search = { kind = "grid", cv = 3, space = { "estimator__C" = [0.3, 1.0] } }\n', "", 1)
    (project.path / "lockstep.toml").write_text(text)
    code, _, err = run("train", "--project", str(project.path))
    assert code == 2 and "Traceback" not in err, err
    assert "'model__keep__func' holds a lambda (lambdamodel.model.<locals>.<lambda>)" in err, err
    assert "at the top level of a module" in err
    assert Project(project.path).model_versions() == []
