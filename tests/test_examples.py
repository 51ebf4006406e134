"""The example projects end to end: `lockstep run` reproduces each champion, `lockstep check` passes.

These run the whole system on the full example data (7,043 and 2,930 rows),
the way the README's demo and the examples' CI workflows do.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lockstep.cli import app

from .conftest import EXAMPLES
from .scaffold_check import skipped_run

pytestmark = [pytest.mark.slow, pytest.mark.integration]

runner = CliRunner()


@pytest.fixture(scope="module", params=["telco-churn", "ames-housing"])
def example(request, tmp_path_factory) -> tuple[Path, dict]:
    """A copy of an example after one `lockstep run`, and that run's JSON report."""
    folder = tmp_path_factory.mktemp("example") / request.param
    shutil.copytree(EXAMPLES / request.param, folder, ignore=shutil.ignore_patterns(".lockstep"))
    result = runner.invoke(app, ["run", "--project", str(folder), "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    return folder, json.loads(result.stdout)


def test_run_reproduces_the_champion_and_its_prediction_paths(example) -> None:
    _folder, report = example
    assert report["ok"] is True and report["reproduced"] is True and report["identical"] is True
    assert [s["name"] for s in report["steps"]] == ["ingest", "features", "train", "promote", "verify", "parity"]
    assert {s["status"] for s in report["steps"]} == {"done"}
    assert report["champion"]["version"] == 1 and len(report["champion"]["fingerprint"]) == 64


def test_a_second_run_skips_every_step(example) -> None:
    folder, first = example
    result = runner.invoke(app, ["run", "--project", str(folder), "--json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert {s["name"]: s["status"] for s in report["steps"]} == dict.fromkeys(
        ["ingest", "features", "train", "promote", "verify", "parity"], "skipped")
    assert report["champion"] == first["champion"]
    assert report["reproduced"] is True and report["identical"] is True


def test_a_run_with_nothing_to_do_imports_neither_the_model_code_nor_mlflow(example) -> None:
    """Deciding that every step is up to date reads fingerprints and the registry's database: no MLflow,
    no scikit-learn, no skops, no table library (Arrow, NumPy, pandas) and none of the project's modules are
    imported (``-X importtime`` lists them)."""
    folder, _ = example
    steps, heavy = skipped_run(folder)
    assert set(steps.values()) == {"skipped"} and heavy == [], (steps, heavy)


def test_check_passes_on_the_example(example) -> None:
    folder, _ = example
    result = runner.invoke(app, ["check", "--project", str(folder), "--json"])
    assert result.exit_code == 0, result.stdout
    payload = json.loads(result.stdout)
    assert payload["passed"] is True
    assert {c["check"] for c in payload["checks"]} == {"golden", "gates", "schema"}
    assert all(c["status"] == "PASS" for c in payload["checks"])


@pytest.mark.parametrize("name", ["telco-churn", "ames-housing"])
def test_the_example_ci_workflow_runs_lockstep_check(name: str) -> None:
    workflow = yaml.safe_load((EXAMPLES / name / ".github" / "workflows" / "lockstep.yml").read_text())
    steps = workflow["jobs"]["check"]["steps"]
    commands = [line.strip() for step in steps for line in str(step.get("run", "")).splitlines()
                if line.strip().startswith("lockstep ")]
    assert any(c.startswith("lockstep run") for c in commands)
    assert any(c.startswith("lockstep check") for c in commands)
    for command in commands:  # every command the workflow runs exists, with those options
        args = shlex.split(command.split("||")[0].split(">")[0])[1:]
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, command
