"""The embedded registry read without MLflow (registry/sqlite_index.py) answers what MLflow answers."""

from __future__ import annotations

import dataclasses
import math
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from lockstep.core.errors import NotFoundError
from lockstep.registry import mlflow_registry
from lockstep.registry.mlflow_registry import Registry
from lockstep.registry.refs import ModelRef
from lockstep.registry.sqlite_index import KNOWN_REVISIONS, open_index

from .serving import make_trained_project

pytestmark = pytest.mark.integration

INPUTS = "lockstep.inputs"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """A trained project's registry (two versions: a champion and a challenger), and, written with MLflow's
    client, what a long-lived registry holds: a second model with a deleted version and an alias, a NaN metric,
    and runs with the same inputs that are deleted, unfinished or unregistered."""
    project = make_trained_project(tmp_path_factory.mktemp("index") / "telco", rows=300)
    project.train(force=True)
    registry = project.registry
    name = project.config.model_name
    client = mlflow.MlflowClient(tracking_uri=registry.uri, registry_uri=registry.uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(registry.uri)  # create_model_version resolves a models:/ source with the global client
    try:
        _fill(registry, client, name)
    finally:
        mlflow.set_tracking_uri(previous)
    return registry


def _fill(registry: Registry, client: mlflow.MlflowClient, name: str) -> None:
    first = registry.version(ModelRef(name, version=1))
    client.log_metric(first.run_id, "test_nan_metric", float("nan"))
    client.create_registered_model("other")
    for _ in range(3):
        client.create_model_version("other", first.source, run_id=first.run_id)
    client.delete_model_version("other", "2")
    client.set_registered_model_alias("other", "x", "3")
    client.set_model_version_tag("other", "3", "note", "kept")
    experiment = client.get_experiment_by_name(registry.experiment).experiment_id
    for status, deleted, registered in (("FINISHED", False, True), ("FINISHED", True, True),
                                        ("RUNNING", False, True), ("FINISHED", False, False)):
        tags = {INPUTS: "same-inputs"}
        if registered:
            tags.update({"lockstep.registered.name": "other", "lockstep.registered.version": "3"})
        run = client.create_run(experiment, tags=tags)
        if status == "FINISHED":
            client.set_terminated(run.info.run_id)
        if deleted:
            client.delete_run(run.info.run_id)


def _plain(value: object) -> object:
    """``value`` comparable as a whole: records as dicts, dicts in key order, NaN as a string."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return sorted((str(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def _answers(registry: Registry, name: str) -> dict:
    refs = [ModelRef(name, alias="champion"), ModelRef(name, alias="challenger"), ModelRef(name, version=1),
            ModelRef(name), ModelRef("other"), ModelRef("other", version=2), ModelRef("other", version=3),
            ModelRef("other", alias="x"), ModelRef("other", alias="nope"), ModelRef("missing"),
            ModelRef(name, version=99)]
    out: dict = {"names": registry.model_names(), "versions": [registry.versions(n) for n in (name, "other")],
                 "runs": [registry.find_run(inputs) for inputs in ("same-inputs", "none")]}
    for ref in refs:
        try:
            info = registry.version(ref)
        except NotFoundError as exc:
            out[str(ref)] = (exc.message, exc.hint)
        else:
            out[str(ref)] = info
            out[f"{ref} files"] = (registry._version_dir(info), registry.run_json(info, "training.json"))
    return _plain(out)


def test_the_index_answers_what_mlflow_answers(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    assert open_index(registry.root / "mlflow.db") is not None  # the locked MLflow's schema is one it knows
    name = registry.model_names()[0]
    indexed = _answers(registry, name)
    monkeypatch.setattr(mlflow_registry, "open_index", lambda database: None)  # every read through MLflow
    assert _answers(registry, name) == indexed
    # what the comparison covered, so that equal answers are not equally empty
    assert registry.model_names() == sorted([name, "other"])
    assert [v.version for v in registry.versions("other")] == [1, 3]
    assert registry.find_run("same-inputs") == {"run_id": registry.find_run("same-inputs")["run_id"],
                                                 "name": "other", "version": 3}
    assert math.isnan(registry.version(ModelRef(name, version=1)).metrics["test_nan_metric"])
    other = registry.version(ModelRef("other", alias="x"))
    assert other.tags["note"] == "kept" and other.aliases == ["x"]
    with pytest.raises(NotFoundError, match="no version 2"):
        registry.version(ModelRef("other", version=2))


def test_a_schema_the_index_does_not_know_is_left_to_mlflow(registry: Registry, tmp_path: Path) -> None:
    copy = tmp_path / "mlflow.db"
    shutil.copy(registry.root / "mlflow.db", copy)
    assert open_index(copy) is not None
    with sqlite3.connect(copy) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'from-a-newer-mlflow'")
    connection.close()
    assert open_index(copy) is None
    assert open_index(tmp_path / "absent.db") is None
    (tmp_path / "garbage.db").write_text("not a database")
    assert open_index(tmp_path / "garbage.db") is None
    assert KNOWN_REVISIONS  # the reader names what it was checked against


def test_reads_of_the_embedded_registry_do_not_import_mlflow(registry: Registry) -> None:
    probe = (
        "import sys\n"
        "from lockstep.registry.mlflow_registry import Registry\n"
        "from lockstep.registry.refs import ModelRef\n"
        f"registry = Registry({str(registry.root)!r}, {registry.experiment!r})\n"
        "info = registry.version(ModelRef('other', alias='x'))\n"
        "found = registry.find_run('same-inputs') is not None\n"
        "print('VERSION', info.version, len(registry.versions('other')), found)\n"
        "print('MLFLOW', 'mlflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "VERSION 3 2 True" in result.stdout, result.stdout + result.stderr
    assert "MLFLOW False" in result.stdout, result.stdout + result.stderr


def test_a_moved_registry_is_read_at_its_new_place(registry: Registry, tmp_path: Path) -> None:
    """The index reads after the store's recorded locations are pointed at its folder, as MLflow's reads do."""
    moved = tmp_path / "moved"
    shutil.copytree(registry.root, moved)
    copy = Registry(moved, registry.experiment)
    info = copy.version(ModelRef("other", version=3))
    assert copy._version_dir(info).is_relative_to(moved.resolve())
    assert copy.run_json(info, "training.json") == registry.run_json(info, "training.json")


def test_tags_aliases_and_check_reports_written_without_mlflow_read_back_through_it(
        registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(registry.root, tmp_path / "store")
    copy = Registry(tmp_path / "store", registry.experiment)
    name = copy.model_names()[0]
    info = copy.version(ModelRef(name, version=1))
    copy.set_version_tag(name, 1, "lockstep.note", "first")
    copy.set_version_tag(name, 1, "lockstep.note", "second")  # set again: replaced
    copy.set_alias(name, "staging", 1)
    copy.set_alias(name, "staging", 2)  # moved
    copy.record_check(info, "verify", {"reproduced": True, "rows": 3}, {"reproduced": True})
    with pytest.raises(Exception, match="(?i)not found|does not exist|no version"):
        copy.set_alias(name, "staging", 99)  # no such version: left to MLflow, which refuses it
    index = open_index(copy.root / "mlflow.db")
    assert index is not None  # what MLflow would judge differently is left to it
    assert not index.set_alias(name, "latest", 1) and not index.set_alias(name, "v2", 1)
    assert not index.set_version_tag(name, 1, "lockstep.long", "x" * 6000)
    indexed = _answers(copy, name)

    monkeypatch.setattr(mlflow_registry, "open_index", lambda database: None)  # read back through MLflow
    assert _answers(copy, name) == indexed
    first = copy.version(ModelRef(name, version=1))
    assert first.tags["lockstep.note"] == "second" and first.tags["lockstep.verify"] == '{"reproduced": true}'
    assert copy.version(ModelRef(name, alias="staging")).version == 2
    assert copy.check_result(first, "verify") == {"reproduced": True, "rows": 3}
    assert "lockstep.long" not in first.tags
