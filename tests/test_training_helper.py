"""A training's run logged by a forked helper, which imported MLflow while the model fitted.

The helper must register exactly what the training process would have: the same model file, tags, metrics,
parameters and artifacts, byte for byte, on data sets and model families nobody chose for it (the project's
own classes and functions included); its errors are raised here as they would have been here, and nothing is
registered when it fails.

A helper is forked only by a process that never imported MLflow (MLflow's connections must not cross a fork),
which this test process has: the trainings logged by a helper run in a fresh interpreter (:func:`helped`),
with a core to spare whatever the machine's load, and report which processes logged.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from lockstep import Project
from lockstep.compute import fork
from lockstep.core.model_fingerprint import model_fingerprint
from lockstep.registry.versions import VersionInfo

from .corpus import CORPUS
from .model_matrix import CLASSIFIERS, REGRESSORS, matrix_project
from .test_signing import _key_pair, _require_signatures

pytestmark = [pytest.mark.integration]

FAST_TRAIN = '''
[train]
model = "pipeline:model"
seeds = [0]
primary_metric = "roc_auc"

[registry]
model = "churn-helper"
'''

#: Families of the matrix beyond the telco example's: histogram boosting with native categories (OpenMP, ordinal
#: codes), a meta-estimator, a regressor whose target is transformed by NumPy functions (pickled by reference).
FAMILIES = {
    "credit_data:Status": [c for c in CLASSIFIERS if c.name in ("hist_gradient_boosting", "stacking")],
    "penguins:body_mass_g": [c for c in REGRESSORS if c.name == "transformed_target"],
}

#: Run artifacts whose bytes name the run or the time: compared without those fields.
_TIMED = {"training.json": ("created",)}
#: What ``environment.json`` records of the process itself: its thread pools' sizes, which earlier tests in this
#: process may have limited (the two trainings compared run in two processes).
_PROCESS_STATE = "num_threads"
#: Files of the logged model that name their run, model id or time (MLflow's own).
_MODEL_METADATA = {"MLmodel"}

#: Trainings in a fresh interpreter, each forking a helper (a core to spare, whatever the load): which processes
#: forked helpers and which called ``log_training`` in the training process (a helper's calls stay its own).
_HELPED = r"""
import json, os, sys
project_dir, mode, runs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
os.sched_getaffinity = lambda pid: {0, 1}
os.getloadavg = lambda: (0.0, 0.0, 0.0)
from lockstep import Project
from lockstep.compute import fork
from lockstep.core.errors import CodeError, LockstepError
from lockstep.registry.mlflow_registry import Registry
from lockstep.training import registration
helpers, logged_here, parent = [], [], os.getpid()
log_training, helper, load_module = Registry.log_training, fork.helper, registration.load_module

def logged(self, record):
    logged_here.append(os.getpid())
    return log_training(self, record)

def counted(prepare):
    started = helper(prepare)
    helpers.append(started.pid)
    return started

def only_here(name, folder):  # a project module that imports in the training process only
    if os.getpid() != parent:
        raise CodeError(f"importing '{name}' failed: ImportError: not in the training process")
    return load_module(name, folder)

Registry.log_training, fork.helper = logged, counted
if mode == "import-fails":
    registration.load_module = only_here
if mode == "too-large":
    registration.HELPER_BYTES = 1_000
if mode.startswith(("interrupted", "dies")):  # "<interrupted or dies>:<who gets the Ctrl-C>:<when>"
    import signal, time
    from lockstep.registry import mlflow_registry
    kind, who, when = mode.split(":")

    def interrupt():
        if os.getpid() == parent:
            return
        if kind == "dies":
            os.kill(os.getpid(), signal.SIGKILL)
        os.kill(parent, signal.SIGINT)
        if who == "terminal":  # a terminal's Ctrl-C reaches the whole process group
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(60)  # interrupted here by its own Ctrl-C, or by its parent's

    if when == "logging":
        log_images = mlflow_registry._log_images
        mlflow_registry._log_images = lambda mlflow, record: interrupt() or log_images(mlflow, record)
    elif when == "registered":  # just after MLflow registered the version, in the helper (which imports MLflow)
        warm = Registry.warm

        def warm_and_watch(self):
            warm(self)
            import mlflow
            register = mlflow.register_model
            mlflow.register_model = lambda *args, **kwargs: (lambda mv: interrupt() or mv)(register(*args, **kwargs))

        Registry.warm = warm_and_watch
    else:  # "finished": the run ended, the version registered, before the helper answers
        version = Registry.version
        Registry.version = lambda self, ref: interrupt() or version(self, ref)
assert "mlflow" not in sys.modules
out = {"pid": parent, "versions": []}
try:
    for run in runs:
        version = Project(project_dir).train(candidate=run.get("candidate"), force=run.get("force", False)).version
        out["versions"].append(f"{version.name}/{version.version}")
except LockstepError as exc:
    out["error"] = {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint}
except KeyboardInterrupt:
    out["error"] = "interrupted"
out["reaped"] = []
for pid in helpers:
    try:
        os.waitpid(pid, os.WNOHANG)
        out["reaped"].append(False)
    except ChildProcessError:
        out["reaped"].append(True)
out["helpers"], out["logged_here"] = helpers, logged_here
print(json.dumps(out))
"""


def helped(project: Path, runs: list[dict], *, mode: str = "normal", env: dict[str, str] | None = None) -> dict:
    """``runs`` (``{"candidate": ..., "force": ...}``) trained one after the other in a fresh interpreter, whose
    first training forks a helper; what :data:`_HELPED` reports."""
    done = subprocess.run([sys.executable, "-c", _HELPED, str(project), mode, json.dumps(runs)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(report["reaped"]), report  # no helper left behind
    return report


def _by_the_helper(report: dict) -> None:
    """A helper was forked and logged the run: the training process did not."""
    assert report["helpers"] and report["helpers"][0] is not None, report
    assert report["logged_here"] == [], report


def _here(project: Project, **train) -> VersionInfo:
    """A training logged by this process (no helper), for comparison."""
    with pytest.MonkeyPatch.context() as no_helper:
        no_helper.setattr(fork, "available", lambda: False)
        return project.train(**train).version


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
            elif path.name == "environment.json":
                recorded = json.loads(data)
                for pool in recorded["threadpools"]:
                    pool.pop(_PROCESS_STATE)
                data = json.dumps(recorded).encode()
            artifacts[f"{root.name}/{path.relative_to(root)}"] = data
    # the model file's digest covers its members' names and times
    assert info.tags["lockstep.registered.version"] == str(info.version)
    tags = {k: v for k, v in info.tags.items()
            if k not in ("lockstep.run_id", "lockstep.model.file_digest", "lockstep.registered.version",
                         "lockstep.logged_by_helper")}
    return {"tags": tags, "metrics": info.metrics, "params": info.params, "artifacts": artifacts}


def _same_registration(project: Project, here: VersionInfo, helped: VersionInfo) -> None:
    assert helped.version == here.version + 1 and helped.run_id != here.run_id
    assert helped.aliases == ["challenger"]
    # the only difference: a helper's run is tagged with an id of its own (what it left is found if it dies)
    assert "lockstep.logged_by_helper" not in here.tags and len(helped.tags["lockstep.logged_by_helper"]) == 32
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
def telco(telco_featured: Path) -> Project:
    """The telco sample, whose feature pipeline has a transformer class of the project's own ``pipeline.py``."""
    text = (telco_featured / "lockstep.toml").read_text()
    (telco_featured / "lockstep.toml").write_text(text[: text.index("# Training:")] + FAST_TRAIN)
    return Project(telco_featured)


def test_the_helper_registers_what_this_process_would_have_with_the_projects_own_classes(telco: Project) -> None:
    here = _here(telco)
    report = helped(telco.path, [{"force": True}])
    _by_the_helper(report)
    helped_version = telco.model_version(report["versions"][0])
    _same_registration(telco, here, helped_version)
    assert telco.verify(report["versions"][0]).reproduced


@pytest.mark.slow
@pytest.mark.parametrize("data,config", [(d, c) for d, configs in FAMILIES.items() for c in configs],
                         ids=lambda v: getattr(v, "name", str(v)))
def test_the_helper_registers_the_same_model_on_other_data_and_families(data: str, config, tmp_path: Path) -> None:
    dataset = CORPUS[data]
    metric = "accuracy" if dataset.task == "classification" else None  # as the matrix: not every family has
    project = Project(matrix_project(tmp_path / "project", dataset, [config], primary_metric=metric))  # probabilities
    project.ingest()
    project.build_features()
    here = _here(project, candidate=config.name)
    report = helped(project.path, [{"candidate": config.name, "force": True}])
    _by_the_helper(report)
    _same_registration(project, here, project.model_version(report["versions"][0]))


def test_a_signed_registration_by_the_helper(telco: Project, tmp_path: Path) -> None:
    private, public = _key_pair(tmp_path, "lockstep")
    _require_signatures(telco.path, public)
    report = helped(telco.path, [{}], env={**os.environ, "LOCKSTEP_SIGNING_KEY": str(private)})
    _by_the_helper(report)
    loaded = Project(telco.path).load_model(report["versions"][0])  # its signature verified with the public key
    assert loaded.info.aliases == ["challenger"]


def test_an_error_in_the_helper_is_raised_here_and_nothing_is_registered(telco: Project, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _private, public = _key_pair(tmp_path, "lockstep")
    _require_signatures(telco.path, public)
    monkeypatch.delenv("LOCKSTEP_SIGNING_KEY", raising=False)
    with pytest.raises(Exception) as here:  # noqa: PT011 - compared with the helper's below
        _here(Project(telco.path))
    report = helped(telco.path, [{}], env={k: v for k, v in os.environ.items() if k != "LOCKSTEP_SIGNING_KEY"})
    assert report["helpers"][0] is not None and report["logged_here"] == []
    assert report["error"] == {"type": type(here.value).__name__, "message": here.value.message,
                               "hint": here.value.hint}
    assert "LOCKSTEP_SIGNING_KEY" in report["error"]["message"]
    assert Project(telco.path).model_versions() == []


@pytest.mark.parametrize(("who", "when"), [("terminal", "registered"), ("parent", "logging")])
def test_a_ctrl_c_while_the_helper_logs_leaves_a_failed_run_and_no_version(telco: Project, who: str,
                                                                          when: str) -> None:
    """As when the run is logged here: the helper is interrupted too (by the terminal, or by this process), and
    ends what it started before it is stopped, whether the version was registered yet or not."""
    report = helped(telco.path, [{}], mode=f"interrupted:{who}:{when}")  # and the helper reaped
    assert report["error"] == "interrupted" and report["helpers"][0] is not None and report["logged_here"] == []
    assert telco.model_versions() == []
    (database,) = telco.path.rglob("mlflow.db")
    with closing(sqlite3.connect(database)) as db:
        statuses = [status for (status,) in db.execute("SELECT status FROM runs")]
    assert statuses == ["FAILED"]


@pytest.mark.parametrize("when", ["registered", "finished"])
def test_a_helper_that_dies_while_logging_leaves_one_version_and_no_unfinished_run(telco: Project,
                                                                                   when: str) -> None:
    """Killed before it answers, the helper leaves a run behind: unfinished, it is marked FAILED and any version of
    it removed before the training is logged here; finished, its version is the training's."""
    report = helped(telco.path, [{}], mode=f"dies::{when}")
    assert "error" not in report and report["helpers"][0] is not None
    assert report["logged_here"] == ([] if when == "finished" else [report["pid"]])
    (version,) = telco.model_versions()
    assert report["versions"] == [f"{version.name}/{version.version}"] and version.aliases == ["challenger"]
    assert telco.load_model(report["versions"][0]).info.fingerprint == version.fingerprint
    (database,) = telco.path.rglob("mlflow.db")
    with closing(sqlite3.connect(database)) as db:
        statuses = sorted(status for (status,) in db.execute("SELECT status FROM runs"))
    assert statuses == (["FINISHED"] if when == "finished" else ["FAILED", "FINISHED"])


def test_a_project_module_the_helper_cannot_import_means_the_run_is_logged_here(telco: Project) -> None:
    report = helped(telco.path, [{}], mode="import-fails")
    assert report["helpers"][0] is not None and report["logged_here"] == [report["pid"]]
    version = telco.model_version(report["versions"][0])
    assert version.aliases == ["challenger"] and [v.version for v in telco.model_versions()] == [version.version]
    assert telco.load_model(report["versions"][0]).info.fingerprint == version.fingerprint


def test_a_record_too_large_to_copy_is_logged_here(telco: Project) -> None:
    report = helped(telco.path, [{}], mode="too-large")
    assert report["helpers"][0] is not None and report["logged_here"] == [report["pid"]]  # and the helper reaped
    assert [v.version for v in telco.model_versions()] == [1]


def test_after_a_helper_the_trainings_of_the_same_process_are_logged_here(telco: Project) -> None:
    """A loop of trainings (a notebook's) imports MLflow once, here, rather than in a helper every time."""
    report = helped(telco.path, [{}, {"force": True}])
    assert len(report["helpers"]) == 1 and report["helpers"][0] is not None
    assert report["logged_here"] == [report["pid"]]  # the second training only
    first, second = (telco.model_version(ref) for ref in report["versions"])
    assert second.version == first.version + 1 and second.fingerprint == first.fingerprint


def test_a_process_that_imported_mlflow_logs_its_runs_itself(telco: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's stores and connections, once open here, must not be shared with a forked child."""
    import mlflow  # noqa: F401 - imported, as by any earlier use of the registry in this process

    from lockstep.training import train as train_module

    monkeypatch.setattr(train_module, "_helped", False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    forked: list[int | None] = []
    helper = fork.helper
    monkeypatch.setattr(fork, "helper", lambda prepare: forked.append((h := helper(prepare)).pid) or h)
    assert telco.train().version.aliases == ["challenger"]
    assert forked == []
