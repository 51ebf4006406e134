"""``lockstep store push`` between folders: every table version and registered model copied, proved on the copy.

The project is the telco example run twice (two raw snapshots, two feature
sets, two model versions), with a batch prediction, a monitoring run and
audit records, so every kind of table is pushed. Pushes and verifications run
as a user runs them, in processes of their own; commands that only read (and
refusals, made before anything is written) run in this process through the
CLI's app. The copy is used from a second folder holding only
``lockstep.toml`` and the project's code. (The same push to S3 and
PostgreSQL, and back, is in ``test_team_scale.py``.)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lockstep import Project
from lockstep.store import Store
from lockstep.store._delta import commit_metadata
from lockstep.store.transfer import store_tables

from .conftest import EXAMPLES, TELCO_CSV, lockstep_here, read_rows, write_rows

pytestmark = [pytest.mark.slow, pytest.mark.integration]

LOCKSTEP = [sys.executable, "-m", "lockstep"]
COPY_TAGS = {"copy.complete", "copy.from", "copy.source_run", "copy.source_model", "copy.source_version",
             "copy.created", "run_id"}


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*LOCKSTEP, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def _here(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """A command run in this process through the CLI's own app (a process costs 3 s)."""
    return lockstep_here(*args, *(["--project", str(cwd)] if cwd is not None else []))


def _json(done: subprocess.CompletedProcess) -> dict | list:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _audit_record(request_id: str) -> dict:
    return {"request_id": request_id, "time": datetime.now(UTC).isoformat(), "endpoint": "/predict", "status": 200,
            "client": "127.0.0.1", "model_name": "telco-churn", "model_version": 1, "model_fingerprint": "f",
            "runtime": "sklearn", "latency_ms": 1.0, "rows": 1, "inputs": "[]", "outputs": "{}", "error": None}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The telco example run on 500 rows, then on 600 (a second version of everything), used in between.

    Built through the Python API (the same steps as ``lockstep run``, without the parity check's processes):
    what is tested here is the push, which runs as a command of its own."""
    project = tmp_path_factory.mktemp("push") / "telco"
    shutil.copytree(EXAMPLES / "telco-churn", project, ignore=shutil.ignore_patterns(".lockstep", "data"))
    text = (project / "lockstep.toml").read_text()
    (project / "lockstep.toml").write_text(text.replace("max_shared_fraction = 0.01", "max_shared_fraction = 0.05"))
    header, rows = read_rows(TELCO_CSV)
    write_rows(project / "data" / "wa_churn.csv", header, rows[:500])
    assert Project(project).run(parity=False).reproduced
    unlabelled = project.parent / "rows.csv"
    target = header.index("churn")
    write_rows(unlabelled, [h for i, h in enumerate(header) if i != target],
               [[v for i, v in enumerate(r) if i != target] for r in rows[600:700]])
    Project(project).predict(str(project.parent / "p.parquet"), input=unlabelled)
    Project(project).monitor(data=unlabelled)
    write_rows(project / "data" / "wa_churn.csv", header, rows[:600])
    assert Project(project).run(parity=False).reproduced
    writer = Store(project / ".lockstep").audit.writer()  # a service's records, from a process that is gone
    writer.write([_audit_record(f"r{i}") for i in range(5)])
    writer.close()
    gone = project / ".lockstep" / "audit" / "wal"
    for folder in gone.iterdir():
        folder.rename(folder.with_name(f"999999999-0-{folder.name.rsplit('-', 1)[-1]}"))
    return project


def _other(source: Path, folder: Path, store: Path) -> Path:
    """Another machine: the project's code and a lockstep.toml pointing at ``store``."""
    folder.mkdir()
    for name in ("pipeline.py", "drift.py"):
        shutil.copy2(source / name, folder / name)
    text = (source / "lockstep.toml").read_text().replace('store = ".lockstep"', f'store = "{store}"', 1)
    (folder / "lockstep.toml").write_text(text)
    return folder


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _without_copy_tags(models: list) -> list:
    for model in models:
        model.pop("run_id")
        model["lineage"] = {k: v for k, v in model["lineage"].items() if k not in COPY_TAGS}
    return models


@pytest.fixture(scope="module")
def pushed(source: Path, tmp_path_factory) -> dict:
    destination = tmp_path_factory.mktemp("copy") / "store"
    report = _json(_run("store", "push", str(destination), "--json", "--project", str(source)))
    return {"destination": destination, "report": report}


def test_every_table_version_is_copied_byte_for_byte(source: Path, pushed: dict) -> None:
    origin, copy = source / ".lockstep", pushed["destination"]
    tables = store_tables(origin)
    assert {"raw", "features/churn-features", "predictions/_runs", "monitor", "audit/table"} <= set(tables)
    assert store_tables(copy) == tables
    for table in tables:
        assert _digests(copy / table) == _digests(origin / table), table
        assert commit_metadata(copy / table) == commit_metadata(origin / table)
    assert len(commit_metadata(copy / "raw")) == 2
    assert {t["table"]: t["versions"] for t in pushed["report"]["tables"]}["raw"] == 2
    assert not (copy / "audit" / "wal").exists() or not any((copy / "audit" / "wal").rglob("*.jsonl"))


def test_the_copy_is_the_same_project_and_verifies(source: Path, pushed: dict, tmp_path: Path) -> None:
    destination = tmp_path / "store"
    shutil.copytree(pushed["destination"], destination)  # verify records its result in the copy
    other = _other(source, tmp_path / "other", destination)
    assert _json(_here("data", "list", "--json", cwd=other)) == _json(_here("data", "list", "--json", cwd=source))
    assert (_json(_here("features", "list", "--json", cwd=other))
            == _json(_here("features", "list", "--json", cwd=source)))
    mine = _json(_here("models", "list", "--json", cwd=source))
    theirs = _json(_here("models", "list", "--json", cwd=other))
    assert [m["version"] for m in theirs] == [1, 2]
    assert _without_copy_tags(theirs) == _without_copy_tags(mine)  # aliases, metrics, fingerprints, times
    for ref in ("telco-churn@champion", "telco-churn/1"):
        verified = _json(_run("verify", ref, "--json", cwd=other))
        assert verified["reproduced"], verified
    exported = tmp_path / "audit.csv"
    assert _json(_here("audit", "export", str(exported), "--json", cwd=other))["records"] == 5
    assert _json(_here("audit", "show", "--json", cwd=other))["total"] == 5


def test_pushing_again_copies_nothing_then_only_what_is_new(source: Path, pushed: dict, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(source, project)  # a project of its own: the module's source stays as it was
    destination = tmp_path / "store"
    shutil.copytree(pushed["destination"], destination)
    again = _json(_here("store", "push", str(destination), "--json", "--project", str(project)))
    assert all(t["copied"] == 0 for t in again["tables"])
    assert again["registry_copy"]["runs_copied"] == 0 and again["registry_copy"]["versions_copied"] == 0
    assert again["registry_copy"]["artifacts_copied"] == 0

    assert _here("promote", "telco-churn/1", "--project", str(project)).returncode in (0, 3)
    header, rows = read_rows(TELCO_CSV)
    write_rows(project / "data" / "wa_churn.csv", header, rows[:700])
    assert _here("ingest", "--project", str(project)).returncode == 0
    later = _json(_here("store", "push", str(destination), "--json", "--project", str(project)))
    raw = next(t for t in later["tables"] if t["table"] == "raw")
    assert raw["versions"] == 3 and raw["copied"] == 2  # the new commit and its data file
    assert sum(t["copied"] for t in later["tables"] if t["table"] != "raw") == 0
    mine = _json(_here("models", "list", "--json", "--project", str(project)))
    other = _other(project, tmp_path / "other", destination)
    theirs = _json(_here("models", "list", "--json", cwd=other))
    assert _without_copy_tags(theirs) == _without_copy_tags(mine)  # aliases moved with the source


def test_a_check_recorded_at_the_destination_does_not_stop_the_next_push(source: Path, pushed: dict,
                                                                          tmp_path: Path) -> None:
    """A colleague runs parity on the shared copy (a record the source has not), then the source pushes again:
    the copy is still the source's, and the colleague's record stays."""
    destination = tmp_path / "store"
    shutil.copytree(pushed["destination"], destination)
    other = Project(_other(source, tmp_path / "other", destination))
    info = other.registry.version(other.model_ref("telco-churn/1", "champion"))
    assert "lockstep.parity" not in info.tags
    other.registry.record_check(info, "parity", {"identical": True}, {"identical": True, "by": "a colleague"})
    again = _here("store", "push", str(destination), "--json", "--project", str(source))
    assert again.returncode == 0, again.stderr
    kept = other.registry.version(other.model_ref("telco-churn/1", "champion"))
    assert json.loads(kept.tags["lockstep.parity"])["by"] == "a colleague"


def test_an_interrupted_push_goes_on(source: Path, pushed: dict, tmp_path: Path) -> None:
    destination = tmp_path / "store"
    shutil.copytree(pushed["destination"], destination)
    last = sorted((destination / "raw" / "_delta_log").glob("*.json"))[-1]
    last.unlink()  # the push stopped before the last commit of raw
    done = _json(_run("store", "push", str(destination), "--json", "--project", str(source)))
    assert next(t for t in done["tables"] if t["table"] == "raw")["copied"] == 1
    assert commit_metadata(destination / "raw") == commit_metadata(source / ".lockstep" / "raw")


def test_a_destination_holding_something_else_is_refused(source: Path, pushed: dict, tmp_path: Path,
                                                         telco_project: Path) -> None:
    own = _here("store", "push", str(source / ".lockstep"), "--project", str(source))
    assert own.returncode == 2 and "own store" in own.stderr

    assert _run("ingest", "--project", str(telco_project)).returncode == 0  # another project's raw table
    elsewhere = _here("store", "push", str(telco_project / ".lockstep"), "--project", str(source))
    assert elsewhere.returncode == 2, elsewhere.stderr
    assert "raw" in elsewhere.stderr and "another table" in elsewhere.stderr
    before = commit_metadata(telco_project / ".lockstep" / "raw")
    assert len(before) == 1  # nothing was written there

    s3 = _here("store", "push", "s3://bucket/prefix", "--project", str(source))
    assert s3.returncode == 2 and "--registry" in s3.stderr
    server_files = _here("store", "push", "s3://bucket/prefix", "--registry", "http://127.0.0.1:9",
                        "--artifacts", "s3://bucket/mlflow", "--project", str(source))
    assert server_files.returncode == 2 and "--artifacts" in server_files.stderr


def test_records_of_a_running_service_are_refused(source: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(source, project)
    writer = Store(project / ".lockstep").audit.writer()  # this process is alive: its newest segment is open
    writer.write([_audit_record("live")])
    try:
        done = _run("store", "push", str(tmp_path / "store"), "--project", str(project))
        assert done.returncode == 2
        assert "still running" in done.stderr and "lockstep serve" in done.stderr
        assert not (tmp_path / "store" / "raw").exists()
    finally:
        writer.close()


def test_a_copy_of_a_copy_can_be_pushed_again_and_again(source: Path, pushed: dict, tmp_path: Path) -> None:
    middle = tmp_path / "middle"
    shutil.copytree(pushed["destination"], middle)
    project = _other(source, tmp_path / "project", middle)
    last = tmp_path / "last"
    for attempt in range(3):  # the copy's tags name the copy it was made from, push after push (in this process;
        done = _json(_here("store", "push", str(last), "--json", cwd=project))  # the fixture's push is a process)
        assert done["registry_copy"]["runs_copied"] == (done["registry_copy"]["runs"] if attempt == 0 else 0)
    other = _other(source, tmp_path / "other", last)
    assert (_without_copy_tags(_json(_here("models", "list", "--json", cwd=other)))
            == _without_copy_tags(_json(_here("models", "list", "--json", cwd=source))))
