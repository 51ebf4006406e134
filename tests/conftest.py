"""Shared fixtures: small real projects built from the example data."""

from __future__ import annotations

import atexit
import csv
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lockstep import Project
from lockstep.cli import app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TELCO_CSV = EXAMPLES / "telco-churn" / "data" / "wa_churn.csv"
AMES_CSV = EXAMPLES / "ames-housing" / "data" / "ames.csv"


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


def write_rows(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def lockstep_here(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """A command run in this process through the CLI's own app, as ``subprocess.run`` would report it.

    For commands whose behaviour does not depend on being a process of their own (a process costs 1-3 s of
    imports). ``env`` is the command's whole environment (set during the call, then restored). A crash that is
    not a command's own exit is raised, with its traceback, rather than read as an exit code."""
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


@pytest.fixture(autouse=True)
def _environment_kept() -> Iterator[None]:
    """Each test leaves ``os.environ`` as it found it: a Dask cluster a test starts itself writes its workers'
    settings there (``PYTHONHASHSEED``, thread counts), which a later test's environment record would show.
    lockstep's own clusters put them back (tests/test_compute.py)."""
    saved = dict(os.environ)
    yield
    restore_environment(saved)


def restore_environment(saved: dict[str, str]) -> None:
    """``os.environ`` made ``saved`` again, if anything changed it."""
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def _terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands print as they do in a pipe, whatever terminal width the test runner (or its workers) set."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def telco_project(tmp_path: Path) -> Path:
    """A copy of the telco-churn example, with the first 600 rows of its data."""
    return telco_sample(tmp_path / "telco")


def telco_sample(project: Path, rows: int = 600) -> Path:
    """The telco-churn example copied to ``project``, with the first ``rows`` rows of its data."""
    shutil.copytree(EXAMPLES / "telco-churn", project, ignore=shutil.ignore_patterns(".lockstep", "data"))
    header, data = read_rows(TELCO_CSV)
    write_rows(project / "data" / "wa_churn.csv", header, data[:rows])
    # The sample may hold a few more look-alike customers than the full data.
    text = (project / "lockstep.toml").read_text()
    (project / "lockstep.toml").write_text(text.replace("max_shared_fraction = 0.01", "max_shared_fraction = 0.05"))
    return project


#: Projects built once in this test process, by name, then copied for each test (a copy keeps working:
#: tests/test_relocation.py).
_BUILT: dict[str, Path] = {}


def copy_of_built(name: str, folder: Path, build: Callable[[Path], None]) -> Path:
    """``folder``, a copy of the project ``build(path)`` makes, built once in this test process under ``name``."""
    if name not in _BUILT:
        built = Path(tempfile.mkdtemp(prefix=f"lockstep-{name}-")) / "project"
        atexit.register(shutil.rmtree, built.parent, ignore_errors=True)
        build(built)
        _BUILT[name] = built
    shutil.copytree(_BUILT[name], folder)
    return folder


def _telco_featured(folder: Path) -> None:
    project = Project(telco_sample(folder))
    project.ingest()
    project.build_features()


@pytest.fixture
def telco_featured(tmp_path: Path) -> Path:
    """:func:`telco_project`, ingested and featurized (its ``[train]`` section may be rewritten: the features
    stay up to date)."""
    return copy_of_built("telco-featured", tmp_path / "telco", _telco_featured)


@pytest.fixture
def small_project(tmp_path: Path) -> Path:
    """A tiny hand-written project: every dtype, an id, a classification target."""
    project = tmp_path / "small"
    project.mkdir()
    (project / "data").mkdir()
    (project / "data" / "raw.csv").write_text(
        "id,label,age,income,city,member,signup\n"
        "1,yes,34,1200.5,Paris,true,2024-01-05T10:00:00\n"
        "2,no,51,,Lyon,false,2024-02-11T08:30:00\n"
        "3,yes,29,980.0,Paris,true,2024-03-02T17:45:00\n"
        "4,no,45,1500.25,Nice,false,2024-03-20T09:15:00\n"
        "5,no,38,1100.0,Lyon,true,2024-04-01T12:00:00\n"
        "6,yes,62,2100.75,Paris,false,2024-05-09T14:20:00\n",
        encoding="utf-8",
    )
    (project / "lockstep.toml").write_text(SMALL_CONFIG, encoding="utf-8")
    return project


SMALL_CONFIG = """\
[project]
name = "small"

[data]
source = "data/raw.csv"
id = "id"
target = "label"
task = "classification"

[data.schema]
id = { dtype = "int" }
label = { dtype = "str", allowed = ["yes", "no"] }
age = { dtype = "int", min = 18, max = 99 }
income = { dtype = "float", nullable = true, min = 0 }
city = { dtype = "str", allowed = ["Paris", "Lyon", "Nice"] }
member = { dtype = "bool" }
signup = { dtype = "datetime", min = "2020-01-01" }

[split]
valid = 0.2
test = 0.2
salt = "small"
max_shared_fraction = 0.0
"""


#: The test files, longest first (seconds of one worker, measured with ``--durations=0``): with ``pytest -n auto
#: --dist loadfile`` a long file scheduled last keeps one worker busy alone at the end.
LONGEST_FIRST = ("test_team_scale.py", "test_compute_data.py", "test_training.py", "test_training_helper.py",
                 "test_matrix_classifiers.py", "test_monitor.py", "test_compute.py", "test_scaffold_corpus.py",
                 "test_matrix_regressors.py", "test_service.py", "test_reliability.py", "test_onnx.py",
                 "test_push.py", "test_verify.py", "test_examples.py", "test_parallel_prediction.py",
                 "test_checks.py", "test_features.py", "test_skops_import.py", "test_service_fuzz.py")


def pytest_collection_modifyitems(config, items: list) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
