"""``[compute] backend = "dask"``: the training search and the seeds' fits on Dask workers, with the results of
one machine.

Real clusters: a ``LocalCluster`` of 2 worker processes that lockstep starts,
and a scheduler and workers started as processes of their own with the
``dask`` command line, reached by address.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import distributed
import pytest

from lockstep import Project
from lockstep.compute import cluster
from lockstep.core.config import load_config
from lockstep.core.errors import ConfigError

from .conftest import EXAMPLES, TELCO_CSV, lockstep_here, read_rows, write_rows
from .services import free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration]

LOCKSTEP = [sys.executable, "-m", "lockstep"]
DASK = str(Path(sys.executable).with_name("dask"))


def _with_compute(project: Path, text: str) -> None:
    toml = project / "lockstep.toml"
    toml.write_text(toml.read_text() + f"\n[compute]\n{text}\n")


@pytest.fixture(scope="module")
def featured(tmp_path_factory) -> Path:
    """The telco example on 600 rows (a grid search of 4 values on 5 folds), its features built, trained locally."""
    project = tmp_path_factory.mktemp("compute") / "telco"
    shutil.copytree(EXAMPLES / "telco-churn", project, ignore=shutil.ignore_patterns(".lockstep", "data"))
    header, rows = read_rows(TELCO_CSV)
    write_rows(project / "data" / "wa_churn.csv", header, rows[:600])
    text = (project / "lockstep.toml").read_text().replace("max_shared_fraction = 0.01", "max_shared_fraction = 0.05")
    (project / "lockstep.toml").write_text(text.replace("seeds = [0, 1, 2]", "seeds = [0, 1]"))
    local = Project(project)
    local.ingest()
    local.build_features()
    local.train()
    return project


def _same_model(project: Path, version: int) -> None:
    """Version ``version`` is the local version 1 again: parameters, fingerprints, metrics; only where it ran
    differs."""
    first, other = (Project(project).model_version(f"telco-churn/{v}") for v in (1, version))
    assert other.fingerprint == first.fingerprint
    assert other.params["best_params"] == first.params["best_params"]
    assert other.metrics == first.metrics
    assert other.tags["lockstep.inputs"] == first.tags["lockstep.inputs"]  # the backend is no input
    assert first.tags["lockstep.compute.backend"] == "local"


def test_training_on_a_local_cluster_gives_the_local_model(featured: Path) -> None:
    environment = dict(os.environ)
    result = Project(featured).train(force=True, compute="dask")
    # the cluster's workers got Dask's hash seed and thread counts (the fits record theirs); this process did not
    assert dict(os.environ) == environment
    recorded = Project(featured).registry.run_json(result.version, "environment.json")["variables"]
    assert recorded == {name: environment.get(name) for name in recorded}
    assert not result.skipped
    tags = result.version.tags
    assert tags["lockstep.compute.backend"] == "dask" and tags["lockstep.compute.workers"] == "2"
    _same_model(featured, result.version.version)
    verified = Project(featured).verify(f"telco-churn/{result.version.version}")  # rebuilt here, on one machine
    assert verified.reproduced, verified.cause


def test_a_locally_trained_model_is_verified_with_its_search_on_dask(featured: Path) -> None:
    """The reverse of the test above: trained here, its search repeated on a cluster, the same model."""
    report = Project(featured).verify("telco-churn/1", full=True, compute="dask")
    assert report.reproduced, report.cause
    assert report.options["compute"] == {"backend": "dask", "workers": "2"}
    model = next(s for s in report.stages if s.name == "model")
    assert "the search chose the recorded parameters again" in model.detail


def test_work_on_a_scheduler_and_workers_started_apart(featured: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "false"}
    scheduler = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True, env=env)
    workers = None
    try:
        _with_compute(featured, f'backend = "dask"\naddress = "{address}"')
        # a scheduler without workers is refused, not waited on for ever (nor recorded as "0 workers")
        monkeypatch.setattr(cluster, "WORKER_TIMEOUT", 1.0)
        deadline = time.time() + 60
        while True:
            done = lockstep_here("train", "--force", "--project", str(featured))
            if "does not answer" not in done.stderr or time.time() > deadline:
                break
            time.sleep(0.5)  # the scheduler is still starting
        assert done.returncode == 2 and f"the Dask scheduler at {address} has no workers" in done.stderr, done.stderr
        assert "dask worker" in done.stderr
        monkeypatch.undo()
        workers = subprocess.Popen([DASK, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
                                    "--local-directory", str(tmp_path)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True, env=env)
        with distributed.Client(address, timeout="10s") as client:
            client.wait_for_workers(2, timeout=60)  # both, so that the record below names two
        done = lockstep_here("train", "--force", "--json", "--project", str(featured))
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["compute"] == {"backend": "dask", "workers": "2"}
        _same_model(featured, result["version"])
        # the features, partition by partition, and predictions, piece by piece, on the same workers
        done = lockstep_here("features", "--force", "--json", "--project", str(featured))
        assert done.returncode == 0, done.stderr
        built = json.loads(done.stdout)
        assert built["compute"]["backend"] == "dask"
        assert built["fingerprint"] == Project(featured).feature_versions()[0].fingerprint
        here = Project(featured).predict(str(tmp_path / "here.parquet"), features_version=0, model="telco-churn/1",
                                         compute="local")
        done = lockstep_here("predict", "--features-version", "0", "--model", "telco-churn/1", "-o",
                             str(tmp_path / "there.parquet"), "--json", "--project", str(featured))
        assert done.returncode == 0, done.stderr
        there = json.loads(done.stdout)
        assert there["compute"]["backend"] == "dask" and there["output_fingerprint"] == here.output_fingerprint
    finally:
        toml = featured / "lockstep.toml"
        toml.write_text(toml.read_text().split("\n[compute]\n")[0])
        for process in (workers, scheduler):
            if process is not None:
                os.killpg(process.pid, 15)
                process.wait(timeout=30)


def test_a_scheduler_that_does_not_answer_is_exit_2_naming_it_within_10_s(featured: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(featured, project)
    address = f"tcp://127.0.0.1:{free_port()}"
    _with_compute(project, f'backend = "dask"\naddress = "{address}"')
    before = [v.version for v in Project(project).model_versions()]
    started = time.monotonic()
    done = lockstep_here("train", "--force", "--project", str(project))
    assert done.returncode == 2, done.stderr
    assert address in done.stderr and "does not answer" in done.stderr
    assert time.monotonic() - started < 10
    assert [v.version for v in Project(project).model_versions()] == before  # nothing registered
    features = len(Project(project).feature_versions())
    for command in (["features", "--force"], ["predict", "--features-version", "0", "--model", "telco-churn/1",
                                              "-o", str(tmp_path / "p.parquet")]):
        started = time.monotonic()
        done = lockstep_here(*command, "--project", str(project))
        assert done.returncode == 2 and address in done.stderr, done.stderr
        assert time.monotonic() - started < 10
    assert len(Project(project).feature_versions()) == features and not (tmp_path / "p.parquet").exists()


def test_compute_settings_are_checked(featured: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(featured, project, ignore=shutil.ignore_patterns(".lockstep"))
    _with_compute(project, 'address = "tcp://127.0.0.1:8786"')
    with pytest.raises(ConfigError, match=r"compute\.address"):
        load_config(project)
    (project / "lockstep.toml").write_text((project / "lockstep.toml").read_text().replace(
        'address = "tcp://127.0.0.1:8786"', 'backend = "spark"'))
    with pytest.raises(ConfigError, match=r"compute\.backend"):
        load_config(project)
    done = subprocess.run([*LOCKSTEP, "train", "--compute", "spark", "--force", "--project", str(featured)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--compute spark" in done.stderr


FLAKY = '''
"""The example's model, behind a step that kills the Dask worker process running its first fit (SIGKILL)."""
import os
import signal
from pathlib import Path

from sklearn.base import BaseEstimator, TransformerMixin

import pipeline


class KillOnce(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        try:
            from distributed import get_worker

            get_worker()
        except (ImportError, ValueError):  # not on a Dask worker: nothing to do
            return self
        marker = Path(os.environ["LOCKSTEP_KILL_MARKER"])
        if not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return self

    def transform(self, X):
        return X


def model():
    made = pipeline.model()
    made.steps.insert(0, ("kill_once", KillOnce()))
    return made
'''


def test_a_worker_killed_mid_task_does_not_change_the_model(featured: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(featured, project)
    (project / "flaky.py").write_text(FLAKY)
    toml = project / "lockstep.toml"
    toml.write_text(toml.read_text() + '\n[train.candidates.flaky]\nmodel = "flaky:model"\nsearch = { kind = "grid", '
                    'cv = 5, space = { "estimator__C" = [0.1, 0.3, 1.0, 3.0] } }\n')
    local = Project(project).train(candidate="flaky").version
    marker = tmp_path / "killed"
    done = subprocess.run([*LOCKSTEP, "train", "--candidate", "flaky", "--force", "--compute", "dask", "--json",
                           "--project", str(project)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "LOCKSTEP_KILL_MARKER": str(marker)})
    assert done.returncode == 0, done.stderr
    assert marker.exists()  # a worker died in the middle of a fit; Dask ran its task again elsewhere
    result = json.loads(done.stdout)
    assert result["compute"]["backend"] == "dask"
    assert result["fingerprint"] == local.fingerprint and result["best_params"] == local.params["best_params"]


def test_lockstep_run_trains_on_the_cluster_it_is_given(featured: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(featured, project, ignore=shutil.ignore_patterns(".lockstep"))
    report = Project(project).run(compute="dask", verify=False, parity=False)
    assert report.ok
    trained = Project(project).model_version("telco-churn/1")
    assert trained.tags["lockstep.compute.backend"] == "dask"
    assert trained.fingerprint == Project(featured).model_version("telco-churn/1").fingerprint


def _workers_dask_backend() -> str:
    import joblib

    return joblib.parallel.BACKENDS["dask"].__name__


def test_a_shared_cluster_is_left_as_it_was_found() -> None:
    """On a cluster lockstep did not start, the workers' setup (nested joblib calls in sequence, thread limits)
    lasts only as long as the session."""
    import distributed

    from lockstep.compute import compute_session
    from lockstep.core.sections import ComputeConfig

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        settings = ComputeConfig(backend="dask", address=cluster.scheduler_address)
        with compute_session(settings, threads=1) as session:
            assert session.workers == 1 and session.address == cluster.scheduler_address
            assert set(session.client.run(_workers_dask_backend).values()) == {"SequentialBackend"}
        with distributed.Client(cluster) as client:
            assert set(client.run(_workers_dask_backend).values()) == {"DaskDistributedBackend"}
