"""A training's run logged by a forked helper, which imported MLflow while the model fitted.

The helper must register exactly what the training process would have: the same model file, tags, metrics,
parameters and artifacts, byte for byte, on data sets and model families nobody chose for it (the project's
own classes and functions included); its errors are raised here as they would have been here, and nothing is
registered when it fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lockstep import Project
from lockstep.compute import fork
from lockstep.core.errors import CodeError, ConfigError
from lockstep.core.model_fingerprint import model_fingerprint
from lockstep.registry.mlflow_registry import Registry
from lockstep.registry.versions import VersionInfo
from lockstep.training import train as train_module

from .corpus import CORPUS
from .model_matrix import CLASSIFIERS, REGRESSORS, matrix_project
from .test_signing import _key_pair, _require_signatures

pytestmark = [pytest.mark.integration]

FAST_TRAIN = '''
[train]
model = "pipeline:model"
seeds = [0, 1]
primary_metric = "roc_auc"

[registry]
model = "churn-helper"
'''

#: A few families of the matrix: OpenMP (histogram boosting, after other fits used it here), joblib threads, a
#: meta-estimator, a regressor whose target is transformed by NumPy functions (pickled by reference).
FAMILIES = {
    "credit_data:Status": [c for c in CLASSIFIERS if c.name in ("hist_gradient_boosting", "random_forest_2",
                                                                  "stacking")],
    "penguins:body_mass_g": [c for c in REGRESSORS if c.name == "transformed_target"],
}

#: Run artifacts whose bytes name the run or the time: compared without those fields.
_TIMED = {"training.json": ("created",)}
#: Files of the logged model that name their run, model id or time (MLflow's own).
_MODEL_METADATA = {"MLmodel"}


@pytest.fixture
def helper_logs(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int | None]]:
    """From now on every training forks a helper to log its run, whatever the load of the machine running the
    tests and whatever this process has imported already; the helpers' pids, and the pids of the processes that
    called ``log_training`` here (a helper's calls stay in its own memory)."""
    seen: dict[str, list[int | None]] = {"helpers": [], "logged_here": []}
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(Registry, "writing_imported", lambda self: False)
    monkeypatch.setattr(train_module, "_helped", False)  # as in a new process
    log_training, helper = Registry.log_training, fork.helper

    def logged_here(self, record):
        seen["logged_here"].append(os.getpid())
        return log_training(self, record)

    def counted(prepare):
        started = helper(prepare)
        seen["helpers"].append(started.pid)
        return started

    monkeypatch.setattr(Registry, "log_training", logged_here)
    monkeypatch.setattr(fork, "helper", counted)
    return seen


def _registered(project: Project, info: VersionInfo) -> dict:
    """What a version holds that does not name its run: tags, metrics, parameters, the bytes of its run's
    artifacts and of its model's files."""
    registry = project.registry
    run_dir, model_dir = registry._artifact_path(info.run_id, ""), registry._version_dir(info)
    artifacts = {}
    for root, skip in ((run_dir, set()), (model_dir, _MODEL_METADATA)):
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in skip):
            data = path.read_bytes()
            timed = _TIMED.get(path.name)
            if path.suffix == ".skops":  # its members are named after objects' ids: compared loaded (below)
                data = b"a model file"
            elif timed:
                data = json.dumps({k: v for k, v in json.loads(data).items() if k not in timed}).encode()
            artifacts[f"{root.name}/{path.relative_to(root)}"] = data
    # the model file's digest covers its members' names and times
    assert info.tags["lockstep.registered.version"] == str(info.version)
    tags = {k: v for k, v in info.tags.items()
            if k not in ("lockstep.run_id", "lockstep.model.file_digest", "lockstep.registered.version")}
    return {"tags": tags, "metrics": info.metrics, "params": info.params, "artifacts": artifacts}


def _same_registration(project: Project, here: VersionInfo, helped: VersionInfo) -> None:
    assert helped.version == here.version + 1 and helped.run_id != here.run_id
    assert helped.aliases == ["challenger"]
    a, b = _registered(project, here), _registered(project, helped)
    assert sorted(a["artifacts"]) == sorted(b["artifacts"])
    assert any(name.endswith("model.skops") for name in a["artifacts"])
    assert any(name.startswith("artifacts/plots/") or "/plots/" in name for name in a["artifacts"])
    for name in a["artifacts"]:
        assert a["artifacts"][name] == b["artifacts"][name], name
    assert a["tags"] == b["tags"] and a["metrics"] == b["metrics"] and a["params"] == b["params"]
    # each model file loads (its digest checked) to the model fitted here (its fingerprint checked, and compared)
    loaded = [project.load_model(f"{v.name}/{v.version}").model for v in (here, helped)]
    assert model_fingerprint(loaded[0]) == model_fingerprint(loaded[1]) == here.fingerprint


@pytest.fixture
def telco(telco_project: Path) -> Project:
    """The telco sample, whose feature pipeline has a transformer class of the project's own ``pipeline.py``."""
    text = (telco_project / "lockstep.toml").read_text()
    (telco_project / "lockstep.toml").write_text(text[: text.index("# Training:")] + FAST_TRAIN)
    project = Project(telco_project)
    project.ingest()
    project.build_features()
    return project


def test_the_helper_registers_what_this_process_would_have_with_the_projects_own_classes(
        telco: Project, helper_logs: dict) -> None:
    with pytest.MonkeyPatch.context() as no_helper:
        no_helper.setattr(fork, "available", lambda: False)
        here = telco.train().version
    assert helper_logs["logged_here"] == [os.getpid()] and helper_logs["helpers"] == [None]
    helped = telco.train(force=True).version
    assert helper_logs["helpers"][1] is not None  # a child was forked ...
    assert helper_logs["logged_here"] == [os.getpid()]  # ... and logged the run: this process did not
    _same_registration(telco, here, helped)
    assert telco.verify(f"{helped.name}/{helped.version}").reproduced


@pytest.mark.slow
@pytest.mark.parametrize("data,config", [(d, c) for d, configs in FAMILIES.items() for c in configs],
                         ids=lambda v: getattr(v, "name", str(v)))
def test_the_helper_registers_the_same_model_on_other_data_and_families(data: str, config, tmp_path: Path,
                                                                        helper_logs: dict) -> None:
    dataset = CORPUS[data]
    metric = "accuracy" if dataset.task == "classification" else None  # as the matrix: not every family has
    project = Project(matrix_project(tmp_path / "project", dataset, [config], primary_metric=metric))  # probabilities
    project.ingest()
    project.build_features()
    with pytest.MonkeyPatch.context() as no_helper:
        no_helper.setattr(fork, "available", lambda: False)
        here = project.train(candidate=config.name).version
    helped = project.train(candidate=config.name, force=True).version
    assert helper_logs["helpers"][-1] is not None and len(helper_logs["logged_here"]) == 1
    _same_registration(project, here, helped)
    assert project.parity(f"{helped.name}/{helped.version}").identical


def test_a_signed_registration_by_the_helper(telco: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             helper_logs: dict) -> None:
    private, public = _key_pair(tmp_path, "lockstep")
    _require_signatures(telco.path, public)
    monkeypatch.setenv("LOCKSTEP_SIGNING_KEY", str(private))
    project = Project(telco.path)
    version = project.train().version
    assert helper_logs["helpers"][-1] is not None and helper_logs["logged_here"] == []
    assert project.load_model(f"{version.name}/{version.version}").info.version == version.version  # verified


def test_an_error_in_the_helper_is_raised_here_and_nothing_is_registered(telco: Project, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         helper_logs: dict) -> None:
    _private, public = _key_pair(tmp_path, "lockstep")
    _require_signatures(telco.path, public)
    monkeypatch.delenv("LOCKSTEP_SIGNING_KEY", raising=False)
    with pytest.MonkeyPatch.context() as no_helper:
        no_helper.setattr(fork, "available", lambda: False)
        with pytest.raises(ConfigError) as here:
            Project(telco.path).train()
    with pytest.raises(ConfigError) as helped:
        Project(telco.path).train()
    assert helper_logs["helpers"][-1] is not None and len(helper_logs["logged_here"]) == 1
    assert str(helped.value) == str(here.value) and helped.value.hint == here.value.hint
    assert Project(telco.path).model_versions() == []


def test_a_project_module_the_helper_cannot_import_means_the_run_is_logged_here(
        telco: Project, monkeypatch: pytest.MonkeyPatch, helper_logs: dict) -> None:
    from lockstep.training import registration

    parent, load_module = os.getpid(), registration.load_module

    def only_here(name: str, folder: Path):
        if os.getpid() != parent:  # a module that imports in the training process only
            raise CodeError(f"importing '{name}' failed: ImportError: not in the training process")
        return load_module(name, folder)

    monkeypatch.setattr(registration, "load_module", only_here)
    version = telco.train().version
    assert helper_logs["helpers"][-1] is not None and helper_logs["logged_here"] == [os.getpid()]
    assert version.aliases == ["challenger"] and [v.version for v in telco.model_versions()] == [version.version]
    assert telco.load_model(f"{version.name}/{version.version}").info.fingerprint == version.fingerprint


def test_after_a_helper_the_trainings_of_the_same_process_are_logged_here(telco: Project, helper_logs: dict) -> None:
    """A loop of trainings (a notebook's) imports MLflow once, here, rather than in a helper every time."""
    first = telco.train().version
    helper = helper_logs["helpers"][0]
    assert helper is not None and helper_logs["helpers"] == [helper] and helper_logs["logged_here"] == []
    second = telco.train(force=True).version
    assert helper_logs["helpers"] == [helper] and helper_logs["logged_here"] == [os.getpid()]
    assert second.version == first.version + 1 and second.fingerprint == first.fingerprint


def test_a_record_too_large_to_copy_is_logged_here(telco: Project, monkeypatch: pytest.MonkeyPatch,
                                                   helper_logs: dict) -> None:
    from lockstep.training import registration

    monkeypatch.setattr(registration, "HELPER_BYTES", 1_000)  # any record is larger
    version = telco.train().version
    helper = helper_logs["helpers"][-1]
    assert helper is not None and helper_logs["logged_here"] == [os.getpid()]
    with pytest.raises(ChildProcessError):
        os.waitpid(helper, os.WNOHANG)  # stopped and reaped, not left waiting
    assert version.aliases == ["challenger"] and [v.version for v in telco.model_versions()] == [version.version]
