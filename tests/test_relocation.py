"""A project folder can be moved, copied and restored from an archive elsewhere; every command keeps working.

MLflow records absolute artifact locations; the registry rewrites those of
another store folder to its own the first time it is opened from a new
place (``Registry.relocate``), so a copy reads and writes only its own files.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lockstep import Project, init_project
from lockstep.cli import app

from .corpus import CORPUS

pytestmark = [pytest.mark.integration]

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("relocation") / "credit"
    csv = CORPUS["credit_data:Status"].write_csv(folder / "data" / "credit.csv")
    init_project(csv, target="Status", id_column="row_id", directory=folder)
    project = Project(folder)
    project.ingest()
    project.build_features()
    project.train()
    project.promote()
    return folder


def _runs(folder: Path) -> list[str]:
    with sqlite3.connect(folder / ".lockstep" / "mlflow.db") as db:
        return [row[0] for row in db.execute("SELECT artifact_uri FROM runs ORDER BY start_time")]


def _works(folder: Path) -> None:
    """predict, verify, parity (in-process paths) and the model listing, from ``folder``."""
    for args in (["predict", "--input", str(folder / "data" / "credit.csv"), "--output", str(folder / "p.parquet")],
                 ["verify"], ["models", "list"]):
        result = runner.invoke(app, [*args, "--project", str(folder)])
        assert result.exit_code == 0, (args, result.output)
    assert Project(folder).parity(http=False, batch=False).identical


def test_a_moved_project_keeps_working(trained: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(trained, tmp_path / "original")
    shutil.move(str(tmp_path / "original"), str(moved))
    _works(moved)
    assert all(uri.startswith(moved.resolve().as_uri()) for uri in _runs(moved))


def test_a_copy_never_writes_to_the_original(trained: Path, tmp_path: Path) -> None:
    before = _runs(trained)
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    _works(copy)
    Project(copy).train(force=True)  # a new run and version, in the copy only
    assert _runs(trained) == before
    assert len(_runs(copy)) == len(before) + 1
    assert all(uri.startswith(copy.resolve().as_uri()) for uri in _runs(copy))
    run_id = Path(_runs(copy)[-1].removeprefix("file://")).parent.name  # .../mlartifacts/<experiment>/<run>/artifacts
    assert not any((trained / ".lockstep").rglob(run_id)) and any((copy / ".lockstep").rglob(run_id))
    _works(trained)  # and the original still works, on its own files


def test_a_project_restored_from_an_archive_works(trained: Path, tmp_path: Path) -> None:
    archive = shutil.make_archive(str(tmp_path / "cache"), "gztar", root_dir=trained.parent, base_dir=trained.name)
    restored = tmp_path / "ci-runner"
    shutil.unpack_archive(archive, restored)
    _works(restored / trained.name)


def test_two_copies_opened_in_one_process_each_keep_their_own_artifacts(trained: Path, tmp_path: Path) -> None:
    """MLflow caches where a run's artifacts are by the run's id alone, and a copy's runs have the original's ids."""
    before = sorted(p.relative_to(trained) for p in (trained / ".lockstep").rglob("*") if p.is_file())
    copies = [tmp_path / "first", tmp_path / "second"]
    for folder in copies:
        shutil.copytree(trained, folder)
    for folder in [*copies, copies[0]]:
        export = Project(folder).export_onnx()
        assert Path(export.path).resolve().is_relative_to(folder.resolve()), export.path
    for folder in copies:
        assert len(list((folder / ".lockstep").rglob("model.onnx"))) == 1
    assert sorted(p.relative_to(trained) for p in (trained / ".lockstep").rglob("*") if p.is_file()) == before
