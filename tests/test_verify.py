"""lockstep verify: a model rebuilt from its lineage, and broken on purpose at each stage.

Every test trains a real model (the telco sample, MLflow on SQLite), then
changes one thing (a data cell, a helper function, an unseeded estimator,
the thread count) and checks that verify fails at the right stage and names
the right cause.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from lockstep import Project
from lockstep.cli import app
from lockstep.reproducibility.codediff import diff_module
from lockstep.reproducibility.envdiff import diff_environments

from .serving import make_trained_project

pytestmark = [pytest.mark.slow, pytest.mark.integration]

runner = CliRunner()


def verify_cli(project: Path, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["verify", *args, "--project", str(project), "--json"])
    return result.exit_code, json.loads(result.stdout)


def stages(payload: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in payload["stages"]}


@pytest.fixture
def trained(tmp_path: Path) -> Project:
    return make_trained_project(tmp_path / "telco")


def test_verify_reproduces_a_model_bit_for_bit(trained: Project) -> None:
    code, payload = verify_cli(trained.path)
    assert code == 0, payload
    assert payload["reproduced"] is True and payload["cause"] is None
    assert [s["name"] for s in payload["stages"]] == ["data", "environment", "code", "features", "model",
                                                      "predictions"]
    assert set(stages(payload).values()) == {"PASS"}
    info = trained.model_version("churn-serve@champion")
    model_stage = payload["stages"][4]
    assert model_stage["data"]["fingerprint"] == info.fingerprint
    assert payload["stages"][5]["data"]["label_mismatches"] == 0
    # the result is kept with the version
    summary = json.loads(trained.model_version("churn-serve@champion").tags["lockstep.verify"])
    assert summary["reproduced"] is True and summary["stages"]["model"] == "PASS"


def test_full_repeats_the_search(trained: Project) -> None:
    toml = trained.path / "lockstep.toml"
    toml.write_text(toml.read_text().replace('model = "pipeline:model"\n', 'model = "pipeline:model"\nsearch = '
                                             '{ kind = "grid", cv = 3, space = { "estimator__C" = [0.1, 1.0] } }\n'))
    version = Project(trained.path).train().version
    code, payload = verify_cli(trained.path, f"churn-serve/{version.version}", "--full")
    assert code == 0, payload
    assert payload["options"]["full"] is True
    assert "the search chose the recorded parameters again" in payload["stages"][4]["detail"]
    assert "estimator__C" in payload["stages"][4]["detail"]


def test_a_changed_data_cell_fails_the_data_stage(trained: Project) -> None:
    raw_dir = trained.store.root / "raw"
    (part,) = [p for p in raw_dir.glob("*.parquet")]
    table = pq.read_table(part)
    tenure = table.column("tenure").to_pylist()
    tenure[3] += 1
    table = table.set_column(table.schema.get_field_index("tenure"), "tenure", pa.array(tenure, pa.int64()))
    pq.write_table(table, part)
    # a damaged file: the Delta log still gives the old size
    code, payload = verify_cli(trained.path)
    assert code == 3 and payload["reproduced"] is False
    assert stages(payload)["data"] == "FAIL" and "cannot be read" in payload["stages"][0]["detail"]
    assert payload["cause"].startswith("data:")
    # a file rewritten together with its log entry: readable, but not the same rows
    log = raw_dir / "_delta_log" / f"{0:020d}.json"
    actions = [json.loads(line) for line in log.read_text().splitlines()]
    for action in actions:
        if "add" in action and action["add"]["path"] == part.name:
            action["add"]["size"] = part.stat().st_size
            action["add"].pop("stats", None)
    log.write_text("\n".join(json.dumps(a) for a in actions) + "\n")
    code, payload = verify_cli(trained.path)
    assert code == 3
    assert stages(payload)["data"] == "FAIL" and "was modified" in payload["stages"][0]["detail"]
    assert payload["cause"].startswith("data:")
    # the rebuild still runs on the modified rows, and shows what they change
    assert stages(payload)["features"] == "FAIL"


def test_a_missing_snapshot_fails_the_data_stage_and_skips_the_rebuild(trained: Project) -> None:
    import shutil

    shutil.rmtree(trained.store.root / "raw")
    code, payload = verify_cli(trained.path)
    assert code == 3
    assert stages(payload) == {"data": "FAIL", "environment": "PASS", "code": "PASS", "features": "SKIPPED",
                               "model": "SKIPPED", "predictions": "SKIPPED"}
    assert "no longer exists" in payload["stages"][0]["detail"]


def test_a_changed_helper_fails_the_code_stage_and_recorded_code_still_reproduces(trained: Project) -> None:
    source = trained.path / "pipeline.py"
    text = source.read_text()
    # a helper the feature pipeline uses, changed: the features change with it
    changed = text.replace('mapping={"no internet service": "no", "no phone service": "no"}',
                           'mapping={"no internet service": "none", "no phone service": "no"}')
    assert changed != text
    source.write_text(changed)
    code, payload = verify_cli(trained.path)
    assert code == 3
    got = stages(payload)
    assert got["code"] == "FAIL" and got["features"] == "FAIL"
    assert "pipeline.py: changed features" in payload["stages"][2]["detail"]
    assert payload["cause"].startswith("code: pipeline.py: changed features")
    # the code stored with the model rebuilds it exactly
    code, payload = verify_cli(trained.path, "--recorded-code")
    assert code == 0, payload
    assert set(stages(payload).values()) == {"PASS"}
    assert "moved on" in payload["stages"][2]["detail"]


UNSEEDED = '''

class Jitter(TransformerMixin, BaseEstimator):
    """Add noise drawn from an unseeded generator: a bug verify must catch."""

    def fit(self, X, y=None):
        self.offset_ = np.random.default_rng().normal(size=X.shape[1]) * 1e-3
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) + self.offset_


def jittery_model():
    pipe = model()
    return Pipeline([("preprocess", pipe.named_steps["preprocess"]), ("jitter", Jitter()),
                     ("estimator", pipe.named_steps["estimator"])])
'''


def test_an_unseeded_estimator_fails_the_model_stage_as_nondeterminism(trained: Project) -> None:
    path = trained.path
    source = path / "pipeline.py"
    source.write_text(source.read_text() + UNSEEDED)  # the example imports numpy, BaseEstimator, TransformerMixin
    toml = path / "lockstep.toml"
    toml.write_text(toml.read_text().replace('model = "pipeline:model"', 'model = "pipeline:jittery_model"'))
    project = Project(path)
    project.build_features()  # the module changed: the feature set is rebuilt (same features)
    version = project.train().version
    code, payload = verify_cli(path, f"churn-serve/{version.version}")
    assert code == 3
    got = stages(payload)
    assert got["features"] == "PASS" and got["model"] == "FAIL"
    assert payload["cause"].startswith("nondeterminism:")
    assert "model pipeline" in payload["cause"]
    # lockstep run promotes it (any improvement accepted here), verifies it and exits 3
    toml.write_text(toml.read_text().replace('[registry]', '[registry]\nimprovement = -1.0'))
    result = runner.invoke(app, ["run", "--no-parity", "--project", str(path), "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 3 and report["ok"] is False and report["reproduced"] is False
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["promote"]["status"] == "done" and steps["verify"]["status"] == "failed"
    assert "nondeterminism" in steps["verify"]["detail"]


def test_a_thread_dependent_estimator_fails_with_another_thread_count(trained: Project) -> None:
    # logistic regression gives the same model with 2 threads ...
    code, payload = verify_cli(trained.path, "--threads", "2")
    assert code == 0 and payload["options"]["threads"] == 2
    # ... histogram gradient boosting does not (its OpenMP reductions depend on the thread count)
    toml = trained.path / "lockstep.toml"
    toml.write_text(toml.read_text().replace('model = "pipeline:model"', 'model = "pipeline:boosted_model"'))
    project = Project(trained.path)
    version = project.train().version
    ref = f"churn-serve/{version.version}"
    code, payload = verify_cli(trained.path, ref)
    assert code == 0, payload  # with the recorded thread count it reproduces
    code, payload = verify_cli(trained.path, ref, "--threads", "2")
    assert code == 3
    assert stages(payload)["model"] == "FAIL"
    assert payload["cause"].startswith("thread count: the model was trained with 1 thread(s) and refitted with 2")


HASHED = '''

class CityHash(TransformerMixin, BaseEstimator):
    """A feature from Python's hash(): it differs between processes unless PYTHONHASHSEED is fixed."""

    def fit(self, X, y=None):
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X):
        out = X.copy()
        out["contract_hash"] = [float(hash(v) % 1000) for v in X["contract"]]
        return out

    def get_feature_names_out(self, input_features=None):
        return np.asarray([*self.feature_names_in_, "contract_hash"], dtype=object)


def hashed_features():
    return make_pipeline(features(), CityHash()).set_output(transform="pandas")


def hashed_model():
    pipe = model()
    pre = pipe.named_steps["preprocess"]
    pre.transformers[0] = ("numeric", pre.transformers[0][1], NUMERIC_FEATURES + ["contract_hash"])
    return pipe
'''


def test_a_process_dependent_feature_breaks_parity_and_verify(tmp_path: Path, monkeypatch) -> None:
    """hash() of a string differs between processes: the paths that run in another process disagree."""
    project = make_trained_project(tmp_path / "telco")
    path = project.path
    source = path / "pipeline.py"
    source.write_text(source.read_text() + HASHED)
    toml = path / "lockstep.toml"
    toml.write_text(toml.read_text().replace('pipeline = "pipeline:features"', 'pipeline = "pipeline:hashed_features"')
                    .replace('model = "pipeline:model"', 'model = "pipeline:hashed_model"'))
    project = Project(path)
    project.build_features()
    version = project.train().version
    ref = f"churn-serve/{version.version}"
    monkeypatch.setenv("PYTHONHASHSEED", "random")  # every process its own hash seed
    report = project.parity(ref, rows=50)
    paths = {p.name: p.status for p in report.paths}
    assert paths["in-process"] == "PASS" and paths["registry"] == "PASS"  # this process: the same hashes
    assert paths["predict"] == "FAIL" and paths["http"] == "FAIL"
    assert not report.identical
    # verify in a new process recomputes other features
    exe = [sys.executable, "-m", "lockstep", "verify", ref, "--project", str(path), "--json"]
    done = subprocess.run(exe, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "random"},
                          timeout=300)
    payload = json.loads(done.stdout)
    assert done.returncode == 3
    assert stages(payload)["features"] == "FAIL"
    assert payload["cause"].startswith("nondeterminism:") and "feature pipeline" in payload["cause"]


def test_verify_user_errors_exit_2(trained: Project) -> None:
    result = runner.invoke(app, ["verify", "churn-serve/99", "--project", str(trained.path)])
    assert result.exit_code == 2 and "no version 99" in result.stderr
    result = runner.invoke(app, ["verify", "--threads", "0", "--project", str(trained.path)])
    assert result.exit_code == 2
    # a version registered without its recorded configuration (an older lockstep)
    info = trained.model_version("churn-serve@champion")
    trained.registry._artifact_path(info.run_id, "config.json").unlink()
    result = runner.invoke(app, ["verify", "--project", str(trained.path)])
    assert result.exit_code == 2 and "config.json" in result.stderr and "train it again" in result.stderr


def test_diff_module_names_changed_added_and_removed_definitions() -> None:
    old = ("X = 1\n\ndef a():\n    return 1\n\n\nclass C:\n    def m(self):\n        return 1\n\n\n"
           "def gone():\n    pass\n")
    new = "X = 1\n\n# a comment\ndef a():\n    return 2\n\n\nclass C:\n    def m(self):\n        return 1\n\n" \
          "def fresh():\n    pass\n"
    change = diff_module("p.py", old, new)
    assert change.changed == ["a"] and change.added == ["fresh"] and change.removed == ["gone"]
    assert change.describe() == "p.py: changed a; added fresh; removed gone"
    moved = diff_module("p.py", old, "\n\n" + old)  # blank lines only
    assert moved.describe() == "p.py: changed (comments or formatting only)"
    assert diff_module("p.py", old, "def (:").unparsable


def test_environment_differences_have_severities() -> None:
    base = {"python": {"version": "3.11.7", "implementation": "CPython"},
            "platform": {"system": "Linux", "machine": "x86_64", "release": "6.1"},
            "cpu": {"count": 2, "byteorder": "little"},
            "packages": {"numpy": "2.4.6", "rich": "15.0.0", "mlflow": "3.17.2", "lightgbm": "4.0"},
            "threadpools": [{"user_api": "blas", "internal_api": "openblas", "prefix": "libopenblas",
                             "version": "0.3.30"}],
            "variables": {"PYTHONHASHSEED": None, "OMP_NUM_THREADS": None}}
    assert diff_environments(base, base) == []
    other = json.loads(json.dumps(base))
    other["python"]["version"] = "3.11.9"
    other["cpu"]["count"] = 8
    other["packages"].update(numpy="2.5.0", rich="16.0.0", mlflow="3.18.0", lightgbm="4.1")
    other["threadpools"][0]["version"] = "0.3.31"
    other["variables"]["OMP_NUM_THREADS"] = "4"
    severity = {d.name: d.severity for d in diff_environments(base, other, model_packages={"lightgbm"})}
    assert severity == {"python": "medium", "cpu count": "low", "numpy": "high", "rich": "low", "mlflow": "medium",
                        "lightgbm": "high", "blas library libopenblas": "high", "OMP_NUM_THREADS": "low"}
    other["python"]["version"] = "3.12.1"
    assert {d.name: d.severity for d in diff_environments(base, other)}["python"] == "high"


def test_a_corrupted_or_replaced_model_file_fails_the_model_stage(trained: Project) -> None:
    """The rebuild can match the record while the stored artifact does not: verify checks the artifact too."""
    info = trained.model_version("churn-serve@champion")
    model_file = trained.registry._version_dir(info) / "model.skops"
    original = model_file.read_bytes()
    try:
        flipped = bytearray(original)
        flipped[len(flipped) // 2] ^= 0x01
        model_file.write_bytes(bytes(flipped))
        code, payload = verify_cli(trained.path)
        assert code == 3
        assert stages(payload)["model"] == "FAIL" and stages(payload)["predictions"] == "PASS"
        assert payload["cause"].startswith("artifact:") and "changed since it was registered" in payload["cause"]
        assert payload["stages"][4]["data"]["artifact"]["ok"] is False

        # another version's file in its place: a valid model, not the registered one
        other = trained.train(force=True).version
        model_file.write_bytes((trained.registry._version_dir(other) / "model.skops").read_bytes())
        code, payload = verify_cli(trained.path, f"churn-serve/{info.version}")
        assert code == 3 and stages(payload)["model"] == "FAIL" and payload["cause"].startswith("artifact:")
    finally:
        model_file.write_bytes(original)
    code, payload = verify_cli(trained.path, f"churn-serve/{info.version}")
    assert code == 0 and payload["stages"][4]["data"]["artifact"]["ok"] is True


def test_lockstep_run_does_not_skip_verify_when_the_model_file_changed(trained: Project) -> None:
    """A verification recorded as passed is reused only while the stored file is the same."""
    first = trained.run(parity=False)
    assert first.reproduced is True
    again = trained.run(parity=False)
    assert {s.name: s.status for s in again.steps}["verify"] == "skipped"
    info = trained.model_version("churn-serve@champion")
    model_file = trained.registry._version_dir(info) / "model.skops"
    original = model_file.read_bytes()
    try:
        model_file.write_bytes(original[:-1] + bytes([original[-1] ^ 0x01]))
        broken = trained.run(parity=False)
        verify_step = {s.name: s for s in broken.steps}["verify"]
        assert verify_step.status == "failed" and "artifact" in verify_step.detail
        assert broken.reproduced is False
    finally:
        model_file.write_bytes(original)


def test_a_verification_with_other_options_does_not_make_run_verify_again(trained: Project) -> None:
    """`lockstep verify` by hand (the current code, two threads) records its result too; the next `lockstep run`
    still finds its own (the recorded code, the training's threads) and skips."""
    first = trained.run(parity=False)
    assert {s.name: s.status for s in first.steps}["verify"] == "done"
    code, payload = verify_cli(trained.path, "--threads", "2")
    assert code == 0 and payload["options"]["threads"] == 2
    info = trained.model_version("churn-serve@champion")
    assert json.loads(info.tags["lockstep.verify"])["time"] == payload["time"]  # the latest, as models show says
    again = trained.run(parity=False)
    assert {s.name: s.status for s in again.steps}["verify"] == "skipped"
    assert trained.registry.check_result(info, "verify")["key"] == payload["key"]


def test_run_after_a_code_edit_verifies_the_champion_against_its_own_code(trained: Project) -> None:
    """The champion stays (the edited model fails a gate); `lockstep run` verifies it with the code it was
    trained with and says the project's code moved on, instead of failing to reproduce it."""
    first = runner.invoke(app, ["run", "--project", str(trained.path), "--no-parity", "--json"])
    assert first.exit_code == 0, first.output
    pipeline = trained.path / "pipeline.py"
    pipeline.write_text(pipeline.read_text().replace("LogisticRegression(max_iter=2000)",
                                                     "LogisticRegression(max_iter=2000, C=0.01)"))
    toml = trained.path / "lockstep.toml"
    toml.write_text(toml.read_text().replace("[registry]", "[registry]\ngates = { min_roc_auc = 0.9999 }"))
    second = runner.invoke(app, ["run", "--project", str(trained.path), "--no-parity", "--json"])
    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["promote"]["status"] == "refused"
    assert steps["verify"]["status"] == "done" and report["reproduced"] is True
    assert "the project's code changed since it was trained" in steps["verify"]["detail"]
    assert "pipeline.py" in steps["verify"]["detail"]
