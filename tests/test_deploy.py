"""compose.yaml (docs/deploy.md): what can be checked without Docker on this machine.

The commands the lockstep containers run are executed here, as the
container's shell runs them, on a copy of the example: the ``lockstep.toml``
they write must point at the shared services through ``${NAME}`` values that
lockstep expands. The MLflow server's image must be the MLflow the lock file
installs (a tracking server must speak the client's version).
"""

from __future__ import annotations

import importlib.metadata
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lockstep.core.config import load_config

from .conftest import EXAMPLES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _shell(text: str) -> str:
    """A compose value as Docker reads it (``$$`` is a literal ``$``), before it splits it like a shell."""
    return text.replace("$$", "$")


def test_the_deployment_has_every_service_the_docs_name(compose: dict) -> None:
    assert set(compose["services"]) == {"postgres", "minio", "minio-bucket", "mlflow", "lockstep", "replica-1",
                                        "replica-2", "balancer"}
    upstream = compose["configs"]["balancer"]["content"]
    assert "replica-1:8000" in upstream and "replica-2:8000" in upstream
    for replica in ("replica-1", "replica-2"):
        assert "lockstep serve --host 0.0.0.0 --port 8000" in compose["services"][replica]["command"]


def test_the_tracking_server_runs_the_mlflow_that_lockstep_installs(compose: dict) -> None:
    image = compose["services"]["mlflow"]["image"]
    assert image == f"ghcr.io/mlflow/mlflow:v{importlib.metadata.version('mlflow')}"


@pytest.mark.parametrize("service", ["lockstep", "replica-1"])
def test_the_containers_point_the_example_at_the_shared_services(compose: dict, service: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "telco-churn", project, ignore=shutil.ignore_patterns(".lockstep"))
    spec = compose["services"][service]
    env = {**os.environ, **{k: str(v) for k, v in spec["environment"].items()}}
    if service == "lockstep":  # an entrypoint that rewrites the file, then runs the command it is given
        argv = [*shlex.split(_shell(spec["entrypoint"])), "true"]
    else:  # the same rewriting, then the service (replaced by `true`: only the file is checked here)
        argv = [part.replace("lockstep serve --host 0.0.0.0 --port 8000", "true")
                for part in shlex.split(_shell(spec["command"]))]
    assert argv[:2] == ["sh", "-c"]
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = (project / "lockstep.toml").read_text()
    assert 'store = "${LOCKSTEP_STORE}"' in text and 'tracking_uri = "${LOCKSTEP_TRACKING_URI}"' in text

    for key in ("LOCKSTEP_STORE", "LOCKSTEP_TRACKING_URI"):
        monkeypatch.setenv(key, env[key])
    config = load_config(project)
    assert config.project.store == "s3://lockstep/telco"
    assert config.registry.tracking_uri == "http://mlflow:5000"
    assert config.store_remote and config.registry.artifacts is None
