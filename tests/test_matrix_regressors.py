"""Every regressor family a user brings, on real penguin measurements: fingerprint, predict, parity, verify, ONNX."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockstep import Project

from .corpus import CORPUS
from .model_matrix import (
    REGRESSORS,
    THROUGH_PROCESSES,
    check_configuration,
    fresh_process_fingerprints,
    matrix_project,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TRAINED: dict[str, str] = {}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    folder = matrix_project(tmp_path_factory.mktemp("matrix") / "penguins", CORPUS["penguins:body_mass_g"], REGRESSORS)
    project = Project(folder)
    project.ingest()
    project.build_features()
    return project


@pytest.mark.parametrize("config", REGRESSORS, ids=lambda c: c.name)
def test_regressor(project: Project, config, tmp_path: Path) -> None:
    TRAINED[config.name] = check_configuration(project, config, "regression", tmp_path)


def test_every_registered_regressor_loads_to_its_fingerprint_in_a_fresh_process(project: Project) -> None:
    for config in REGRESSORS:
        if config.name not in TRAINED:  # run alone: register them first
            TRAINED[config.name] = f"{project.train(candidate=config.name).version.version}"
    seen = fresh_process_fingerprints(project)
    assert len(seen) >= len(REGRESSORS)
    for version, (loaded, recorded) in seen.items():
        assert loaded == recorded, version


def test_the_configurations_run_through_other_processes_exist() -> None:
    assert THROUGH_PROCESSES["regression"] <= {c.name for c in REGRESSORS}
