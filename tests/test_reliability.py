"""Fault injection with real processes: a full disk, a damaged log, and what must hold through them.

The figures each test asserts are those of docs/benchmarks.md ("Reliability").
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lockstep.cli import app
from lockstep.core.errors import FileSystemError, StoreError
from lockstep.store.audit import AuditLog, SegmentWriter, _read_segment

from .conftest import lockstep_here, read_rows
from .serving import Server, make_trained_project, record

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 64 MB tmpfs, mounted for the test (the tests run as root, as CI does)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


class Filler:
    """Fills a file system to the last byte, and frees it again."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "filler.bin"

    def fill(self) -> None:
        block = b"\0" * (1 << 20)
        with open(self.path, "ab", buffering=0) as fh:
            for size in (1 << 20, 1 << 12, 1):
                try:
                    while True:
                        fh.write(block[:size])
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC

    def free(self) -> None:
        self.path.unlink(missing_ok=True)


def _post(url: str, body: object) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _ready(url: str) -> int:
    try:
        with urllib.request.urlopen(url + "/ready", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return make_trained_project(tmp_path_factory.mktemp("reliability") / "telco").path


def test_a_full_disk_answers_503_and_loses_no_acknowledged_request(trained: Path, small_disk: Path) -> None:
    project = small_disk / "telco"
    shutil.copytree(trained, project)
    header, rows = read_rows(project / "data" / "wa_churn.csv")
    records = [record(dict(zip(header, row))) for row in rows[:40]]
    filler = Filler(small_disk)
    answered, refused = [], 0
    with Server(project) as server:
        for body in records[:10]:
            status, answer = _post(server.url + "/predict", body)
            assert status == 200
            answered.append(answer["request_id"])
        filler.fill()
        for body in records[10:30]:
            status, answer = _post(server.url + "/predict", body)
            assert status in (200, 503), answer
            if status == 200:  # a batch can still fit in the last free bytes
                answered.append(answer["request_id"])
            else:
                refused += 1
                assert "could not be recorded in the audit log" in answer["detail"]
                assert "No space left on device" in answer["detail"]
        assert refused > 0
        assert _ready(server.url) == 503
        filler.free()
        assert _ready(server.url) == 200  # recovers by itself once the disk has room
        for body in records[30:]:
            status, answer = _post(server.url + "/predict", body)
            assert status == 200
            answered.append(answer["request_id"])
    logged = set(AuditLog(project / ".lockstep" / "audit").read().column("request_id").to_pylist())
    missing = [r for r in answered if r not in logged]
    assert missing == []  # answered requests missing from the audit log: 0


def test_a_failed_batch_is_cut_off_and_never_appended_to(small_disk: Path) -> None:
    writer = SegmentWriter(small_disk / "audit" / "wal")
    writer.write([{"request_id": "a", "n": 1}])
    filler = Filler(small_disk)
    filler.fill()
    with pytest.raises(FileSystemError, match="No space left on device") as info:
        writer.write([{"request_id": "b", "payload": "x" * 20_000}])
    assert "free space" in info.value.hint
    filler.free()
    writer.write([{"request_id": "c", "n": 3}])
    segments = sorted(writer.folder.glob("*.jsonl"))
    assert len(segments) == 2  # the segment that failed was closed; c went to a new one
    assert [r["request_id"] for s in segments for r in _read_segment(s)] == ["a", "c"]
    assert segments[0].read_bytes().endswith(b"\n")


def test_readers_skip_only_a_torn_last_line(tmp_path: Path) -> None:
    segment = tmp_path / "00000000.jsonl"
    segment.write_bytes(b'{"request_id": "a"}\n{"request_id": "b"}\n{"request_id": "c", "tor')
    assert [r["request_id"] for r in _read_segment(segment)] == ["a", "b"]  # c was never acknowledged
    segment.write_bytes(b'{"request_id": "a"}\n{"request_id": "b", "da\n{"request_id": "c"}\n')
    with pytest.raises(StoreError, match="line 2 is damaged"):
        _read_segment(segment)


# ---------------------------------------------------------------------- nothing unrecorded is ever run

EVIL = "import pathlib\npathlib.Path({marker!r}).write_text('ran')\n"


def _lockstep(*args: str) -> subprocess.CompletedProcess:
    import sys

    exe = str(Path(sys.executable).with_name("lockstep"))
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", ["numpy.py", "lockstep.py"])
def test_an_extra_file_in_the_models_code_folder_is_refused_and_never_run(trained: Path, tmp_path: Path,
                                                                          name: str) -> None:
    project = tmp_path / "telco"
    shutil.copytree(trained, project)
    from lockstep import Project

    opened = Project(project)
    code = opened.registry._version_dir(opened.load_model().info) / "code"  # the store's files, as an attacker
    marker = tmp_path / "ran.txt"
    (code / name).parent.mkdir(parents=True, exist_ok=True)
    (code / name).write_text(EVIL.format(marker=str(marker)))
    done = _lockstep("predict", "--project", str(project), "--input", str(project / "data" / "wa_churn.csv"),
                     "--output", str(tmp_path / "out.parquet"))
    assert done.returncode == 2, done.stderr
    assert f"holds {Path(name).name}" in done.stderr and "was not recorded at registration" in done.stderr
    verified = _lockstep("verify", "--recorded-code", "--project", str(project), "--json")
    assert verified.returncode == 3 and "was not recorded at registration" in verified.stdout
    assert not marker.exists()  # the file was never imported


def test_a_bundle_with_an_extra_file_is_not_served(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "image"
    assert _lockstep("docker", "--project", str(trained), "--out", str(out)).returncode == 0
    bundle = out / "model"
    marker = tmp_path / "ran.txt"
    (bundle / "model" / "code" / "numpy.py").write_text(EVIL.format(marker=str(marker)))
    done = _lockstep("serve", "--bundle", str(bundle), "--store", str(tmp_path / "audit"), "--port", "1")
    assert done.returncode == 2 and "numpy.py" in done.stderr and "was not recorded" in done.stderr
    assert not marker.exists()


def test_recorded_modules_cannot_shadow_installed_ones(tmp_path: Path) -> None:
    from lockstep.core.fingerprint import fingerprint_bytes
    from lockstep.registry.stored_code import StoredCode

    (tmp_path / "json.py").write_text("x = 1\n")
    code = StoredCode(tmp_path, {"json.py": fingerprint_bytes(b"x = 1\n")}, "m/1")
    with pytest.raises(Exception, match="would shadow the installed or standard module 'json'"):
        code.check()


@pytest.mark.parametrize("name", ["yaml", "sklearn", "lockstep"])
def test_recorded_modules_cannot_shadow_an_installed_distribution(tmp_path: Path, name: str) -> None:
    from lockstep.core.fingerprint import fingerprint_bytes
    from lockstep.registry.stored_code import StoredCode

    (tmp_path / f"{name}.py").write_text("x = 1\n")
    code = StoredCode(tmp_path, {f"{name}.py": fingerprint_bytes(b"x = 1\n")}, "m/1")
    with pytest.raises(Exception, match=f"would shadow the installed or standard module '{name}'"):
        code.check()


def test_a_project_module_in_the_current_folder_is_not_an_installed_one(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A model's ``pipeline`` module loads although a ``pipeline.py`` sits where Python looks first (the folder a
    user runs from, or a script's): only installed code is protected."""
    from lockstep.core.fingerprint import fingerprint_bytes
    from lockstep.registry.stored_code import StoredCode

    stored, here = tmp_path / "code", tmp_path / "here"
    stored.mkdir()
    here.mkdir()
    (stored / "pipeline.py").write_text("x = 1\n")
    (here / "pipeline.py").write_text("x = 2\n")
    monkeypatch.chdir(here)
    monkeypatch.syspath_prepend(str(here))
    code = StoredCode(stored, {"pipeline.py": fingerprint_bytes(b"x = 1\n")}, "m/1")
    assert code.check() == {"pipeline.py": b"x = 1\n"}


# ---------------------------------------------------------------------- concurrent writers


def _delta_files_are_all_committed(table: Path) -> bool:
    """No orphan data file: every Parquet file of the table was added by a commit of its Delta log."""
    referenced = set()
    for commit in (table / "_delta_log").glob("*.json"):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                referenced.add(Path(action["add"]["path"]).name)
    return {p.name for p in table.glob("*.parquet")} <= referenced


def _parallel(*commands: list[str]) -> list[subprocess.CompletedProcess]:
    import sys

    exe = str(Path(sys.executable).with_name("lockstep"))
    processes = [subprocess.Popen([exe, *c], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for c in commands]
    out = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        out.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return out


def test_concurrent_ingests_write_each_snapshot_once(trained: Path, tmp_path: Path) -> None:
    from lockstep import Project

    from .conftest import write_rows

    project = tmp_path / "telco"
    shutil.copytree(trained, project)
    header, rows = read_rows(project / "data" / "wa_churn.csv")
    for round_ in range(3):  # each round: changed data, two ingests at once
        charges = header.index("monthly_charges")
        extra = [[str(10_000 + round_ * 10 + i), *row[1:]] for i, row in enumerate(rows[:3])]
        for i, row in enumerate(extra):  # new customers: their own bills
            row[charges] = f"{500 + round_ * 10 + i}.25"
        rows = rows + extra
        write_rows(project / "data" / "wa_churn.csv", header, rows)
        results = _parallel(["ingest", "--project", str(project)], ["ingest", "--project", str(project)])
        assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    versions = Project(project).snapshots()
    assert [v.version for v in versions] == [0, 1, 2, 3]  # one new version a round, none twice
    assert len({v.fingerprint for v in versions}) == 4
    assert _delta_files_are_all_committed(project / ".lockstep" / "raw")


def test_concurrent_trainings_on_a_new_store_register_one_version(trained: Path, tmp_path: Path) -> None:
    from lockstep import Project

    project = tmp_path / "telco"
    shutil.copytree(trained, project, ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts"))
    assert not (project / ".lockstep" / "mlflow.db").exists()  # features are there, the registry is not
    results = _parallel(["train", "--project", str(project)], ["train", "--project", str(project)])
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-800:] for r in results]
    assert "up to date" in " ".join(r.stdout for r in results)  # the second found the first's run
    assert [v.version for v in Project(project).model_versions()] == [1]


# ---------------------------------------------------------------------- names that become paths


def test_a_prediction_table_name_cannot_leave_the_store(trained: Path, tmp_path: Path) -> None:
    from lockstep import Project
    from lockstep.core.errors import UserError

    project = tmp_path / "telco"
    shutil.copytree(trained, project)
    raw = project / "data" / "wa_churn.csv"
    done = _lockstep("predict", "--project", str(project), "--input", str(raw), "--format", "delta", "--output",
                     "../../../../escaped")
    assert done.returncode == 2 and "is not a name for a prediction table" in done.stderr, done.stderr
    for name in ("a/b", "..", "_runs", ".hidden"):
        with pytest.raises(UserError, match="is not a name for a prediction table"):
            Project(project).predict(name, input=raw, fmt="delta")
    assert not any(tmp_path.parent.parent.glob("escaped")) and not (project / ".lockstep" / "a").exists()
    Project(project).predict("scores-2026", input=raw, fmt="delta")
    assert (project / ".lockstep" / "predictions" / "scores-2026" / "_delta_log").is_dir()


def test_docs_never_replace_a_folder_holding_files_the_user_added(trained: Path, tmp_path: Path) -> None:
    """The folder's protection is the command's logic, not the process's: run in this process (the CLI itself)."""
    out = tmp_path / "model-docs"

    def docs():
        return CliRunner().invoke(app, ["docs", "--project", str(trained), "--out", str(out)])

    assert docs().exit_code == 0
    assert docs().exit_code == 0  # as lockstep left it
    (out / "notes.md").write_text("my review notes")
    done = docs()
    assert done.exit_code == 2 and "notes.md (added)" in done.stderr
    assert (out / "notes.md").read_text() == "my review notes"
    (out / "notes.md").unlink()
    written = sorted(p for p in out.iterdir() if p.is_file() and not p.name.startswith("."))[0]
    written.write_text(written.read_text() + "\nan edit")
    done = docs()
    assert done.exit_code == 2 and f"{written.name} (changed)" in done.stderr


def _in(project: Path, *args: str) -> subprocess.CompletedProcess:
    return _lockstep(*args, "--project", str(project))


def _count(project: Path, what: str) -> int:
    from lockstep import Project

    listing = {"snapshots": lambda p: p.snapshots(), "features": lambda p: p.feature_versions(),
               "models": lambda p: p.model_versions()}[what]
    return len(listing(Project(project)))


def _refused_for_space(result: subprocess.CompletedProcess, where: Path) -> None:
    assert result.returncode == 2, result.stderr
    assert "No space left on device" in result.stderr and str(where) in result.stderr
    assert "the disk is full" in result.stderr and "internal error" not in result.stderr
    assert "panicked" not in result.stderr  # delta-rs's thread panics on a full disk; its report says nothing more


def test_a_full_disk_stops_ingest_features_and_training_with_exit_2_and_writes_no_version(
        trained: Path, small_disk: Path) -> None:
    """Each writing step on a full disk: exit 2 naming the store; after space is freed, nothing half-written
    shows and the same step succeeds."""
    project = small_disk / "telco"
    shutil.copytree(trained, project)
    store = project / ".lockstep"
    from .conftest import TELCO_CSV, write_rows

    header, rows = read_rows(TELCO_CSV)
    write_rows(project / "data" / "wa_churn.csv", header, rows[:650])  # 50 more rows: a new snapshot
    disk = Filler(small_disk)
    steps = [(("ingest",), "snapshots", store / "raw"), (("features",), "features", store / "features"),
             (("train",), "models", store)]
    for step, listing, where in steps:
        before = _count(project, listing)
        disk.fill()
        try:
            _refused_for_space(_in(project, *step), where)
        finally:
            disk.free()
        assert _count(project, listing) == before, f"{step}: a version appeared from the failed run"
        from lockstep import Project

        getattr(Project(project), {"ingest": "ingest", "features": "build_features", "train": "train"}[step[0]])()
        assert _count(project, listing) == before + 1  # the same step, once the disk has room


@pytest.fixture
def read_only(trained: Path, tmp_path: Path):
    """The trained project, bind-mounted read-only on its own path (the registry need not move)."""
    project = tmp_path / "telco"
    shutil.copytree(trained, project)
    from lockstep import Project

    Project(project).model_versions()  # point the copy's registry at its folder while it can be written
    subprocess.run(["mount", "--bind", str(project), str(project)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(project)], check=True)
        yield project
    finally:
        subprocess.run(["umount", "-l", str(project)], check=False)


def test_a_read_only_store_is_read_and_every_write_refused_with_exit_2(read_only: Path, tmp_path: Path) -> None:
    project, store = read_only, read_only / ".lockstep"
    data = project / "data" / "wa_churn.csv"
    for reading in (("models", "list"), ("features", "list"), ("data", "list"), ("ingest",), ("ingest", "--force"),
                    ("features",)):
        result = lockstep_here(*reading, "--project", str(project))
        assert result.returncode == 0, f"{reading}: {result.stderr}"
    assert "up to date" in lockstep_here("features", "--project", str(project)).stdout
    output = tmp_path / "out.parquet"
    for writing in (("train", "--force"), ("predict", "-i", str(data), "-o", str(output)),
                    ("monitor", "-d", str(data)), ("serve", "--port", "1"), ("verify",)):
        result = lockstep_here(*writing, "--project", str(project))
        assert result.returncode == 2, f"{writing}: {result.stderr}"
        assert "Read-only file system" in result.stderr and str(store) in result.stderr, result.stderr
        assert "mount it read-write" in result.stderr
    assert not output.exists()  # refused before the work, not after it


def test_a_moved_read_only_store_says_why_it_cannot_be_opened(trained: Path, tmp_path: Path) -> None:
    mount = tmp_path / "elsewhere"
    mount.mkdir()
    subprocess.run(["mount", "--bind", str(trained), str(mount)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], check=True)
        result = lockstep_here("models", "list", "--project", str(mount))
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    assert result.returncode == 2, result.stderr
    assert "moved or copied here" in result.stderr and "mlflow.db" in result.stderr
    assert "--bundle" in result.stderr


def test_file_system_errors_from_rust_and_sqlite_are_recognised() -> None:
    deltalake_style = RuntimeError("Generic LocalFileSystem error: Unable to copy data to file: No space left on "
                                   "device (os error 28)")
    error = FileSystemError.of(deltalake_style, "write the Delta table", "/x/raw")
    assert error is not None and "cannot write the Delta table /x/raw: No space left on device" in error.message
    debug_style = RuntimeError('Could not create directory\nError: Os { code: 30, kind: ReadOnlyFilesystem }')
    assert "read-only" in FileSystemError.of(debug_style, "write").hint
    assert "disk is full" in FileSystemError.of(RuntimeError("(sqlite3.OperationalError) database or disk is "
                                                             "full"), "write").hint
    assert FileSystemError.of(RuntimeError("(os error 2)"), "write") is None  # a missing file is something else
    assert FileSystemError.of(ValueError("bad value"), "write") is None


def _unprivileged(project: Path, *args: str) -> subprocess.CompletedProcess:
    """lockstep as root without the capabilities that bypass file permissions: files owned by another user
    are then as closed to it as to any other user (``setpriv`` drops them from the child's bounding set)."""
    import sys

    exe = str(Path(sys.executable).with_name("lockstep"))
    return subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner,-chown", exe, *args,
                           "--project", str(project)], capture_output=True, text=True, timeout=300)


def _chown(path: Path, uid: int) -> None:
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(path)], check=True)


def test_permission_denied_is_exit_2_naming_the_file(trained: Path, tmp_path: Path) -> None:
    project = tmp_path / "telco"
    shutil.copytree(trained, project)
    from lockstep import Project

    Project(project).model_versions()  # point the copy's registry at its folder while it can be written
    store, data = project / ".lockstep", project / "data" / "wa_churn.csv"
    _chown(store, 65534)  # the store belongs to another user; the process may read it, not write it
    assert _unprivileged(project, "models", "list").returncode == 0
    up_to_date = _unprivileged(project, "features")
    assert up_to_date.returncode == 0 and "up to date" in up_to_date.stdout, up_to_date.stderr
    output = tmp_path / "out.parquet"
    for writing in (("train", "--force"), ("predict", "-i", str(data), "-o", str(output))):
        result = _unprivileged(project, *writing)
        assert result.returncode == 2, f"{writing}: {result.stderr}"
        assert "Permission denied" in result.stderr and str(store) in result.stderr, result.stderr
        assert "internal error" not in result.stderr
    assert not output.exists()
    _chown(store, 0)
    data.chmod(0o600)
    _chown(data, 65534)  # and the raw data file is another user's, unreadable
    result = _unprivileged(project, "ingest", "--force")
    assert result.returncode == 2, result.stderr
    assert "cannot read the data file data/wa_churn.csv: Permission denied" in result.stderr


def test_rust_panic_reports_are_left_out_and_everything_else_kept() -> None:
    from lockstep.store._delta import _without_panics

    text = (b"a warning from another thread\n"
            b"thread 'tokio-rt-worker' (29891) panicked at /cargo/object_store-0.13.2/src/buffered.rs:369:41:\n"
            b"Already shut down\n"
            b"stack backtrace:\n"
            b"   0: rust_begin_unwind\n"
            b"note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.\n"
            b"a log line after it\n")
    assert _without_panics(text) == b"a warning from another thread\na log line after it\n"
