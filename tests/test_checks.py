"""lockstep parity, check, env, docs and docker on a real trained project."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from lockstep import Project
from lockstep.cli import app
from lockstep.core.sections import ColumnSchema
from lockstep.reproducibility.check import feature_changes, schema_changes

from .conftest import read_rows, write_rows
from .serving import free_port, make_trained_project

pytestmark = [pytest.mark.integration]

runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Project:
    """One trained telco sample shared by the read-only tests of this module."""
    return make_trained_project(tmp_path_factory.mktemp("checks") / "telco")


@pytest.fixture
def fresh(tmp_path: Path) -> Project:
    return make_trained_project(tmp_path / "telco")


# ---------------------------------------------------------------------------------------------- parity


def test_parity_every_python_path_is_bitwise_identical_and_onnx_within_tolerance(fresh: Project) -> None:
    path = str(fresh.path)
    code, out, err = cli("export", "onnx", "--project", path)
    assert code == 0, err
    code, out, err = cli("parity", "--project", path, "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["identical"] is True
    paths = {p["name"]: p for p in payload["paths"]}
    assert list(paths) == ["in-process", "training-run", "registry", "predict", "http", "onnx"]
    test_rows = fresh.feature_info().splits["test"]
    assert payload["rows"] == test_rows
    for name in ("training-run", "registry", "predict", "http"):
        assert paths[name]["status"] == "PASS" and paths[name]["identical"] is True, paths[name]
        assert paths[name]["rows"] == test_rows and paths[name]["label_mismatches"] == 0
        assert paths[name]["max_abs_diff"] == 0.0
    assert paths["onnx"]["status"] == "PASS" and paths["onnx"]["tolerance"] == 1e-5
    assert paths["onnx"]["max_abs_diff"] <= 1e-5
    # kept with the version; a part of the test split skips the stored outputs (another batch)
    info = fresh.model_version("churn-serve@champion")
    assert json.loads(info.tags["lockstep.parity"])["identical"] is True
    code, out, _ = cli("parity", "--rows", "7", "--no-http", "--no-batch", "--project", path, "--json")
    paths = {p["name"]: p for p in json.loads(out)["paths"]}
    assert code == 0 and paths["registry"]["rows"] == 7
    assert {paths[n]["status"] for n in ("training-run", "predict", "http")} == {"SKIPPED"}


def test_parity_user_errors(trained: Project) -> None:
    code, _, err = cli("parity", "--rows", "0", "--project", str(trained.path))
    assert code == 2
    code, _, err = cli("parity", "nope@champion", "--project", str(trained.path))
    assert code == 2 and "no registered model named 'nope'" in err


# ---------------------------------------------------------------------------------------------- check


def test_check_passes_on_a_promoted_model(trained: Project) -> None:
    code, out, err = cli("check", "--project", str(trained.path), "--json")
    assert code == 0, out + err
    payload = json.loads(out)
    assert payload["passed"] is True
    got = {(c["check"], c["name"]): c["status"] for c in payload["checks"]}
    assert got == {("golden", "churn-serve/1"): "PASS", ("gates", "churn-serve/1"): "PASS",
                   ("schema", "raw"): "PASS", ("schema", "features"): "PASS"}
    golden = next(c for c in payload["checks"] if c["check"] == "golden")
    test_rows = trained.feature_info().splits["test"]
    assert golden["data"]["rows"] == min(100, test_rows) and golden["data"]["identical"] is True


def test_golden_outputs_that_differ_by_one_ulp_fail(fresh: Project) -> None:
    info = fresh.model_version("churn-serve@champion")
    path = fresh.registry._artifact_path(info.run_id, "golden/outputs.parquet")
    table = pq.read_table(path)
    column = table.column("proba_Yes").to_numpy().copy()
    column[5] = np.nextafter(column[5], 2.0)
    pq.write_table(table.set_column(table.schema.get_field_index("proba_Yes"), "proba_Yes", pa.array(column)), path)
    code, out, _ = cli("check", "--only", "golden", "--project", str(fresh.path), "--json")
    assert code == 3
    (item,) = json.loads(out)["checks"]
    assert item["status"] == "FAIL" and item["data"]["label_mismatches"] == 0
    assert 0 < item["data"]["max_abs_diff"] < 1e-15
    assert "no longer gives the same outputs" in item["detail"]


def test_a_worse_challenger_fails_the_gates_with_the_numbers(fresh: Project) -> None:
    toml = fresh.path / "lockstep.toml"
    # the seed-to-seed rule: a worse model is refused whatever the noise of the test split
    text = toml.read_text().replace('model = "pipeline:model"\n', 'model = "pipeline:model"\nsearch = { kind = '
                                    '"grid", cv = 3, space = { "estimator__C" = [0.0001] } }\n')
    toml.write_text(text.replace('model = "churn-serve"', 'model = "churn-serve"\nimprovement = "std"'))
    Project(fresh.path).train()
    code, out, _ = cli("check", "--only", "gates", "--project", str(fresh.path), "--json")
    assert code == 3
    (item,) = json.loads(out)["checks"]
    assert item["name"] == "churn-serve/2" and item["status"] == "FAIL"
    assert re.search(r"FAIL improvement: roc_auc [0-9.]+ vs champion churn-serve/1 [0-9.]+", item["detail"])
    code, out, _ = cli("check", "--only", "gates", "--project", str(fresh.path))
    assert code == 3 and "1 check(s) failed" in out


def test_schema_changes_that_break_clients_fail(fresh: Project) -> None:
    toml = fresh.path / "lockstep.toml"
    text = toml.read_text()
    text = text.replace('contract = { dtype = "str", allowed = ["Month-to-month", "One year", "Two year"] }',
                        'contract = { dtype = "str", allowed = ["Month-to-month", "One year"] }')
    text = text.replace('tenure = { dtype = "int", min = 0,', 'tenure = { dtype = "int", min = 1,')
    text = text.replace("[data.schema]\n", '[data.schema]\nregion = { dtype = "str", nullable = true }\n')
    toml.write_text(text)
    code, out, _ = cli("check", "--only", "schema", "--project", str(fresh.path), "--json")
    assert code == 3
    raw = next(c for c in json.loads(out)["checks"] if c["name"] == "raw")
    assert raw["status"] == "FAIL"
    assert raw["data"]["breaking"] == ["tenure: min narrowed from 0 to 1", 'contract: categories removed: "Two year"']
    assert raw["data"]["compatible"] == ["region: added (optional)"]


def test_schema_rules() -> None:
    def col(**kw) -> ColumnSchema:
        return ColumnSchema.model_validate(kw)

    old = {"a": col(dtype="int", min=0, max=10), "b": col(dtype="str", allowed=["x", "y"]), "c": col(dtype="float")}
    new = {"a": col(dtype="int", min=-5, max=10), "b": col(dtype="str", allowed=["x", "y", "z"]),
           "c": col(dtype="float", nullable=True), "d": col(dtype="int")}
    breaking, compatible = schema_changes(old, new)
    assert breaking == ["d: added as a required input; clients of the champion do not send it (make it "
                        "nullable = true to add it compatibly)"]
    assert compatible == ["a: min widened from 0 to -5", 'b: categories added: "z"', "c: may now be missing"]
    breaking, _ = schema_changes(new, old)
    assert "a: min narrowed from -5 to 0" in breaking and "c: may no longer be missing" in breaking
    assert "d: removed" in breaking and 'b: categories removed: "z"' in breaking
    assert schema_changes({"a": col(dtype="int")}, {"a": col(dtype="float")})[0] == ["a: retyped int -> float"]
    assert feature_changes({"f": "int", "g": "str"}, {"f": "float", "h": "str"}) == (
        ["g: removed", "f: retyped int -> float"], ["h: added"])


def test_check_user_errors(trained: Project, tmp_path: Path) -> None:
    code, _, err = cli("check", "--only", "speed", "--project", str(trained.path))
    assert code == 2 and "'speed' is not a check" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "lockstep.toml").write_text((trained.path / "lockstep.toml").read_text())
    code, _, err = cli("check", "--project", str(empty))
    assert code == 2 and "neither churn-serve@champion nor churn-serve@challenger exists" in err


# ---------------------------------------------------------------------------------------------- env


def test_env_show_diff_and_lock(trained: Project, tmp_path: Path) -> None:
    from importlib import metadata

    code, out, _ = cli("env", "show", "--json")
    env = json.loads(out)
    assert code == 0 and env["packages"]["numpy"] == metadata.version("numpy")
    assert any(p["user_api"] == "blas" for p in env["threadpools"])
    code, out, _ = cli("env", "diff", "--project", str(trained.path), "--json")
    assert code == 0 and json.loads(out)["identical"] is True, out
    target = tmp_path / "requirements.txt"
    code, out, _ = cli("env", "lock", "--output", str(target), "--project", str(trained.path), "--json")
    assert code == 0
    lines = [line for line in target.read_text().splitlines() if line and not line.startswith("#")]
    pins = dict(line.split("==") for line in lines)
    recorded = trained.registry.run_json(trained.model_version("churn-serve@champion"), "environment.json")
    for name in ("numpy", "scikit-learn", "scipy", "pandas", "pyarrow", "skops", "mlflow", "threadpoolctl"):
        assert pins[name] == recorded["packages"][name]
    assert "lockstep" not in pins and "pytest" not in pins  # lockstep is vendored; test tools are not needed
    assert json.loads(out)["requirements"] == pins


def test_env_diff_reports_a_recorded_difference(fresh: Project) -> None:
    info = fresh.model_version("churn-serve@champion")
    path = fresh.registry._artifact_path(info.run_id, "environment.json")
    env = json.loads(path.read_text())
    env["packages"]["scikit-learn"] = "1.0.0"
    env["packages"]["rich"] = "1.0.0"
    path.write_text(json.dumps(env))
    code, out, _ = cli("env", "diff", "--project", str(fresh.path), "--json")
    diffs = {d["name"]: d for d in json.loads(out)["differences"]}
    assert code == 0 and diffs["scikit-learn"]["severity"] == "high" and diffs["rich"]["severity"] == "low"
    assert diffs["scikit-learn"]["recorded"] == "1.0.0"
    # verify says so, and still decides by the rebuild; --strict-env fails on it
    code, out, _ = cli("verify", "--project", str(fresh.path), "--json")
    payload = json.loads(out)
    assert code == 0 and payload["stages"][1]["status"] == "WARN"
    assert "scikit-learn: 1.0.0 ->" in payload["stages"][1]["detail"]
    code, out, _ = cli("verify", "--strict-env", "--project", str(fresh.path), "--json")
    payload = json.loads(out)
    assert code == 3 and payload["stages"][1]["status"] == "FAIL" and payload["cause"].startswith("environment:")


# ---------------------------------------------------------------------------------------------- docs


def test_docs_markdown_and_self_contained_html(trained: Project, tmp_path: Path) -> None:
    out_dir = tmp_path / "docs"
    assert cli("verify", "--project", str(trained.path))[0] == 0
    code, out, err = cli("docs", "--out", str(out_dir), "--project", str(trained.path), "--json")
    assert code == 0, err
    files = json.loads(out)["files"]
    assert {"README.md", "index.md", "index.html", "requirements.txt", "plots/roc_curve.png", "plots/lineage.png",
            "plots/lineage.svg"} <= set(files)
    md = (out_dir / "index.md").read_text()
    for section in ("## Overview", "## Feature pipeline", "## Model pipeline", "## Data lineage", "## Metrics",
                    "## Dependencies", "## Limitations", "## Reproducibility", "## How to call it"):
        assert section in md
    info = trained.model_version("churn-serve@champion")
    # the model card: Hugging Face's metadata in front of the same page, its numbers the registry's
    card = (out_dir / "README.md").read_text()
    front, body = card.removeprefix("---\n").split("\n---\n\n", 1)
    meta = yaml.safe_load(front)
    assert body == md and meta["library_name"] == "sklearn" and "tabular-classification" in meta["tags"]
    result = meta["model-index"][0]["results"][0]
    assert meta["model-index"][0]["name"] == "churn-serve" and result["dataset"]["split"] == "test"
    values = {m["type"]: m["value"] for m in result["metrics"]}
    summary = info.metric_summary("test")
    assert set(values) == set(meta["metrics"]) == set(summary) and "roc_auc" in values
    assert values["roc_auc"] == round(summary["roc_auc"]["mean"], 6)
    assert meta["lockstep"]["fingerprint"] == info.fingerprint and meta["lockstep"]["verified"] is True
    assert info.fingerprint in md and "`features.countequal` | `CountEqual` | Count, row by row" in md
    assert "| `model.estimator` | `LogisticRegression` |" in md
    assert "Last verification" in md and "reproduced." in md
    page = (out_dir / "index.html").read_text()
    assert 'src="plots/' not in page and page.count("data:image/png;base64,") == 5  # 4 plots and the lineage
    assert "![lineage](plots/lineage.png)" in md
    assert not re.search(r'(src|href)="https?://', page)  # nothing loaded from the network
    # the Python snippet runs and gives the golden output it shows
    snippet = md.split("```python\n")[1].split("```")[0]
    expected = json.loads(md.split("```json\n")[1].split("```")[0])
    done = subprocess.run([sys.executable, "-c", snippet], cwd=trained.path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    (row,) = eval(done.stdout)  # noqa: S307 - a list of dicts printed by our own snippet
    assert row == expected
    # written again over itself; never over a folder lockstep did not write
    assert cli("docs", "--out", str(out_dir), "--project", str(trained.path))[0] == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, _, err = cli("docs", "--out", str(mine), "--project", str(trained.path))
    assert code == 2 and "not written by lockstep" in err and (mine / "notes.txt").read_text() == "keep me"


def test_lineage_draws_where_a_version_came_from_and_what_came_of_it(fresh: Project, tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    info = fresh.model_version("churn-serve@champion")

    def drawn(out: Path) -> dict:
        code, stdout, err = cli("lineage", "--out", str(out), "--project", str(fresh.path), "--json")
        assert code == 0, err
        assert (out / "lineage.png").read_bytes().startswith(b"\x89PNG")
        assert ET.parse(out / "lineage.svg").getroot().tag.endswith("svg")
        assert json.loads((out / "lineage.json").read_text())["nodes"] == json.loads(stdout)["nodes"]
        return {n["key"]: n for n in json.loads(stdout)["nodes"]}

    before = drawn(tmp_path / "a")
    assert before["raw"]["title"] == "raw snapshot 0" and "champion" in info.aliases
    assert before["model"]["title"] == f"churn-serve/{info.version} @{', @'.join(info.aliases)}"
    assert any(info.fingerprint[:12] in line for line in before["model"]["lines"])
    assert before["verify"]["ok"] is None and "not run" in before["verify"]["title"]
    assert "predictions" not in before and "onnx" not in before

    assert cli("verify", "--project", str(fresh.path))[0] == 0
    rows = tmp_path / "rows.csv"
    header, data = read_rows(fresh.path / "data" / "wa_churn.csv")
    write_rows(rows, header, data[:40])
    assert cli("predict", "-i", str(rows), "-o", str(tmp_path / "p.parquet"), "--project", str(fresh.path))[0] == 0
    after = drawn(tmp_path / "b")
    assert after["verify"]["ok"] is True and after["verify"]["title"] == "verify: passed"
    assert after["predictions"]["lines"][0] == "1 run(s), 40 rows"
    assert ("model", "predictions") in {tuple(e) for e in json.loads((tmp_path / "b" / "lineage.json").read_text())
                                        ["edges"]}


# ---------------------------------------------------------------------------------------------- docker


def test_docker_context_pins_the_recorded_environment_and_serves(trained: Project, tmp_path: Path) -> None:
    out_dir = tmp_path / "image"
    code, out, err = cli("docker", "--out", str(out_dir), "--project", str(trained.path), "--json")
    assert code == 0, err
    payload = json.loads(out)
    info = trained.model_version("churn-serve@champion")
    recorded = trained.registry.run_json(info, "environment.json")
    dockerfile = (out_dir / "Dockerfile").read_text()
    assert f"python:{recorded['python']['version']}-slim" in dockerfile
    for source in re.findall(r"^COPY (\S+) ", dockerfile, flags=re.MULTILINE):
        assert (out_dir / source).exists(), source  # every file the build copies is in the context
    assert "pip install --no-deps -r /app/requirements.txt" in dockerfile
    pins = dict(line.split("==") for line in (out_dir / "requirements.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert pins == payload["requirements"] and len(pins) > 40
    assert all(recorded["packages"][name] == version for name, version in pins.items())
    assert {"numpy", "scikit-learn", "fastapi", "uvicorn", "skops"} <= set(pins)
    assert (out_dir / "model" / "model" / "model.skops").exists()
    # the image's command, run here: the vendored lockstep serves the bundle, and answers like the registry
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(out_dir / "lib")}
    command = [sys.executable, "-m", "lockstep", "serve", "--bundle", str(out_dir / "model"), "--store",
               str(tmp_path / "data"), "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        model = json.loads(urllib.request.urlopen(url + "/model", timeout=10).read())
        assert model["fingerprint"] == info.fingerprint and model["version"] == info.version
        golden = pq.read_table(trained.registry._artifact_path(info.run_id, "golden/inputs.parquet"))
        # the golden sample's own batch: a row's last bit can depend on the rows it is predicted with (on this
        # machine's CPU, row 10 of a batch of 10 differed from the same row in the batch of 100)
        records = golden.select(model["inputs"]).to_pylist()
        request = urllib.request.Request(url + "/predict", data=json.dumps(records).encode(),
                                         headers={"content-type": "application/json"})
        answer = json.loads(urllib.request.urlopen(request, timeout=30).read())
        expected = pq.read_table(trained.registry._artifact_path(info.run_id, "golden/outputs.parquet"))
        assert answer["predictions"] == expected.column("prediction").to_pylist()
        assert [p["Yes"] for p in answer["probabilities"]] == expected.column("proba_Yes").to_pylist()
    finally:
        server.terminate()
        server.wait(timeout=30)
    which = subprocess.run([sys.executable, "-c", "import lockstep; print(lockstep.__file__)"], env=env,
                           capture_output=True, text=True, cwd=tmp_path)
    assert which.stdout.strip().startswith(str(out_dir / "lib"))
    assert (tmp_path / "data" / "audit").is_dir()  # the audit log went to the --store folder


def test_a_tampered_bundle_is_refused(trained: Project, tmp_path: Path) -> None:
    out_dir = tmp_path / "image"
    assert cli("docker", "--out", str(out_dir), "--project", str(trained.path))[0] == 0
    model_file = out_dir / "model" / "model" / "model.skops"
    model_file.write_bytes(model_file.read_bytes() + b"\0")
    done = subprocess.run([sys.executable, "-m", "lockstep", "serve", "--bundle", str(out_dir / "model"),
                           "--port", str(free_port())], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "changed since it was registered" in done.stderr
    done = subprocess.run([sys.executable, "-m", "lockstep", "serve", "--bundle", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "is not a model bundle" in done.stderr
