"""Ingest end to end on real Delta tables: snapshots, change detection, quarantine, atomicity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from lockstep import Project
from lockstep.core.errors import LeakageError, SchemaValidationError
from lockstep.core.fingerprint import fingerprint_table

from .conftest import read_rows, write_rows


def _delta_versions(project: Project) -> int:
    log = project.store.snapshots.path / "_delta_log"
    return len(list(log.glob("*.json"))) if log.exists() else 0


def test_first_ingest_writes_version_zero_with_metadata(telco_project: Path) -> None:
    project = Project(telco_project)
    result = project.ingest()
    assert result.changed
    snap = result.snapshot
    assert snap.version == 0
    assert snap.rows == 600 and snap.columns == 21
    assert snap.id_column == "rownames" and snap.target == "churn"
    assert snap.schema["tenure"] == "int" and snap.schema["total_charges"] == "float"
    assert snap.source["files"][0]["path"] == "data/wa_churn.csv"
    assert len(snap.source["files"][0]["fingerprint"]) == 64
    assert snap.lockstep_version and snap.created.endswith("+00:00")
    assert snap.declared_schema["churn"]["allowed"] == ["No", "Yes"]
    table = project.read_snapshot(0)
    assert fingerprint_table(table) == snap.fingerprint
    assert table.column("rownames").to_pylist()[:3] == [1, 2, 3]  # row order kept
    assert (project.store.root / ".gitignore").read_text().strip().endswith("*")


def test_unchanged_data_writes_nothing(telco_project: Path) -> None:
    project = Project(telco_project)
    first = project.ingest()
    commits = _delta_versions(project)
    again = project.ingest()
    assert not again.changed
    assert again.snapshot == first.snapshot
    assert _delta_versions(project) == commits
    assert len(project.snapshots()) == 1


def test_unchanged_inputs_skip_reading_and_validation(telco_project: Path, monkeypatch) -> None:
    project = Project(telco_project)
    first = project.ingest()
    assert not first.cached and first.snapshot.inputs

    import lockstep.store as store_module

    def must_not_read(*args, **kwargs):
        raise AssertionError("the source was read although its inputs were unchanged")

    monkeypatch.setattr(store_module, "read_source", must_not_read)
    again = project.ingest()
    assert again.cached and not again.changed and again.snapshot == first.snapshot
    monkeypatch.undo()
    forced = project.ingest(force=True)
    assert not forced.cached and not forced.changed


def test_changed_configuration_is_validated_again(telco_project: Path) -> None:
    project = Project(telco_project)
    project.ingest()
    toml = (telco_project / "lockstep.toml").read_text()
    (telco_project / "lockstep.toml").write_text(
        toml.replace('tenure = { dtype = "int", min = 0,', 'tenure = { dtype = "int", min = 5,'))
    with pytest.raises(SchemaValidationError, match="column 'tenure': min 5"):
        Project(telco_project).ingest()


def test_touched_but_identical_file_is_still_cached_and_edited_file_is_not(telco_project: Path) -> None:
    project = Project(telco_project)
    project.ingest()
    path = telco_project / "data" / "wa_churn.csv"
    path.write_bytes(path.read_bytes())  # new mtime, same bytes
    assert project.ingest().cached
    header, rows = read_rows(path)
    write_rows(path, header, rows[:-1])
    result = project.ingest()
    assert not result.cached and result.changed


def test_same_rows_as_parquet_are_recognized_as_unchanged(telco_project: Path) -> None:
    project = Project(telco_project)
    first = project.ingest()
    table = pacsv.read_csv(telco_project / "data" / "wa_churn.csv")
    pq.write_table(table, telco_project / "data" / "export.parquet", row_group_size=77)
    again = project.ingest(telco_project / "data" / "export.parquet")
    assert not again.changed
    assert again.snapshot.fingerprint == first.snapshot.fingerprint


def test_changed_cell_makes_a_new_version_and_time_travel_keeps_the_old(telco_project: Path) -> None:
    project = Project(telco_project)
    v0 = project.ingest().snapshot
    header, rows = read_rows(telco_project / "data" / "wa_churn.csv")
    rows[10][header.index("tenure")] = "71"
    write_rows(telco_project / "data" / "wa_churn.csv", header, rows)
    result = project.ingest()
    assert result.changed and result.snapshot.version == 1
    assert result.snapshot.fingerprint != v0.fingerprint
    assert fingerprint_table(project.read_snapshot(0)) == v0.fingerprint
    assert project.read_snapshot(1).column("tenure")[10].as_py() == 71
    assert [s.version for s in project.snapshots()] == [0, 1]
    diff = project.diff(0, 1)
    assert (diff.rows_added, diff.rows_removed, diff.rows_changed) == (0, 0, 1)
    assert diff.examples["changed"][0]["columns"]["tenure"][1] == 71


def test_schema_violation_writes_nothing_and_names_rows(telco_project: Path) -> None:
    header, rows = read_rows(telco_project / "data" / "wa_churn.csv")
    rows[4][header.index("tenure")] = "-3"
    rows[7][header.index("contract")] = "Weekly"
    write_rows(telco_project / "data" / "wa_churn.csv", header, rows)
    project = Project(telco_project)
    with pytest.raises(SchemaValidationError) as info:
        project.ingest()
    message = str(info.value)
    assert "column 'tenure': min 0: 1 row, e.g. data/wa_churn.csv row 5 (-3)" in message
    assert "column 'contract': allowed values" in message and 'row 8 ("Weekly")' in message
    assert "--quarantine" in info.value.hint
    assert not project.store.root.exists()


def test_schema_violation_after_a_snapshot_keeps_it(telco_project: Path) -> None:
    project = Project(telco_project)
    v0 = project.ingest().snapshot
    header, rows = read_rows(telco_project / "data" / "wa_churn.csv")
    rows[0][header.index("monthly_charges")] = "abc"
    write_rows(telco_project / "data" / "wa_churn.csv", header, rows)
    commits = _delta_versions(project)
    with pytest.raises(SchemaValidationError):
        project.ingest()
    assert _delta_versions(project) == commits
    assert project.snapshot() == v0


def test_quarantine_sets_failing_rows_aside_once(telco_project: Path) -> None:
    header, rows = read_rows(telco_project / "data" / "wa_churn.csv")
    rows[2][header.index("tenure")] = "-1"
    rows[5][header.index("churn")] = ""
    rows[9][header.index("total_charges")] = "n/a?"
    write_rows(telco_project / "data" / "wa_churn.csv", header, rows)
    project = Project(telco_project)
    result = project.ingest(quarantine=True)
    assert result.changed and result.quarantined == 3
    assert result.snapshot.rows == 597 and result.snapshot.quarantined == 3
    kept = project.read_snapshot().column("rownames").to_pylist()
    assert 3 not in kept and 6 not in kept and 10 not in kept
    q = project.store.quarantine.read().to_pylist()
    assert sorted(r["row"] for r in q) == [3, 6, 10]
    by_row = {r["row"]: r for r in q}
    assert "tenure: min 0 (got -1)" in by_row[3]["reasons"]
    assert by_row[3]["source"] == "data/wa_churn.csv" and by_row[3]["id"] == "3"
    assert json.loads(by_row[10]["record"])["total_charges"] == "n/a?"
    assert all(r["snapshot_version"] == 0 for r in q)
    again = project.ingest(quarantine=True)
    assert not again.changed and again.quarantined == 3
    assert project.store.quarantine.read().num_rows == 3  # not recorded twice


def test_quarantine_cannot_fix_missing_columns(telco_project: Path) -> None:
    table = pacsv.read_csv(telco_project / "data" / "wa_churn.csv").drop_columns(["tenure"])
    pacsv.write_csv(table, telco_project / "data" / "wa_churn.csv")
    with pytest.raises(SchemaValidationError) as info:
        Project(telco_project).ingest(quarantine=True)
    assert "column 'tenure': declared in [data.schema] but missing" in str(info.value)
    assert "cannot be quarantined" in info.value.hint


def test_duplicate_ids_are_refused_with_their_values(telco_project: Path) -> None:
    header, rows = read_rows(telco_project / "data" / "wa_churn.csv")
    rows[20][0] = rows[3][0]
    write_rows(telco_project / "data" / "wa_churn.csv", header, rows)
    with pytest.raises(SchemaValidationError) as info:
        Project(telco_project).ingest()
    assert "column 'rownames': unique id (1 id(s) occur more than once): 2 rows" in str(info.value)
    assert "row 4 (4)" in str(info.value) and "row 21 (4)" in str(info.value)


def test_duplicate_ids_can_be_quarantined(telco_project: Path) -> None:
    header, rows = read_rows(telco_project / "data" / "wa_churn.csv")
    rows[20][0] = rows[3][0]
    write_rows(telco_project / "data" / "wa_churn.csv", header, rows)
    result = Project(telco_project).ingest(quarantine=True)
    assert result.quarantined == 2 and result.snapshot.rows == 598


def test_shared_rows_between_splits_are_leakage(small_project: Path) -> None:
    lines = (small_project / "data" / "raw.csv").read_text().splitlines()
    body = [line.split(",", 1)[1] for line in lines[1:]]
    # Repeat every row under new ids: some copies land in valid/test while the original is in train.
    extra = [f"{100 + i},{b}" for i, b in enumerate(body * 4)]
    (small_project / "data" / "raw.csv").write_text("\n".join(lines + extra) + "\n")
    project = Project(small_project)
    with pytest.raises(LeakageError) as info:
        project.ingest()
    assert "identical to a train row" in str(info.value)
    assert "max_shared_fraction" in str(info.value) and "by = \"content\"" in info.value.hint
    assert not project.store.root.exists()


def test_target_among_declared_features_is_leakage(small_project: Path) -> None:
    toml = (small_project / "lockstep.toml").read_text() + '\n[features]\ncolumns = ["age", "label"]\n'
    (small_project / "lockstep.toml").write_text(toml)
    with pytest.raises(LeakageError, match="features.columns includes the target 'label'"):
        Project(small_project).ingest()


def test_derived_ids_are_stable_when_rows_are_appended(small_project: Path) -> None:
    toml = (small_project / "lockstep.toml").read_text().replace('id = "id"\n', "")
    toml = toml.replace('id = { dtype = "int" }\n', "")
    (small_project / "lockstep.toml").write_text(toml)
    lines = (small_project / "data" / "raw.csv").read_text().splitlines()
    no_id = [line.split(",", 1)[1] for line in lines]
    (small_project / "data" / "raw.csv").write_text("\n".join(no_id[:5]) + "\n")
    project = Project(small_project)
    first = project.ingest().snapshot
    assert first.id_column == "_row_id"
    ids_v0 = project.read_snapshot(0).column("_row_id").to_pylist()
    (small_project / "data" / "raw.csv").write_text("\n".join(no_id + [no_id[2]]) + "\n")
    project.ingest()
    ids_v1 = project.read_snapshot(1).column("_row_id").to_pylist()
    assert ids_v1[:4] == ids_v0
    assert ids_v1[-1] == ids_v1[1] + "-1"  # an exact repeat (of data row 2) gets an occurrence suffix
    diff = project.diff(0, 1)
    assert diff.rows_added == 3 and diff.rows_removed == 0 and diff.rows_changed == 0


def test_failed_write_leaves_the_previous_version_readable(telco_project: Path) -> None:
    project = Project(telco_project)
    v0 = project.ingest().snapshot
    table = project.read_snapshot(0)

    def batches():
        yield from table.to_batches(max_chunksize=100)[:3]
        raise OSError("disk full (simulated in the middle of the write)")

    reader = pa.RecordBatchReader.from_batches(table.schema, batches())
    with pytest.raises(Exception, match="disk full"):
        project.store.snapshots.write(reader, v0)
    assert project.store.snapshots.latest() == v0
    assert fingerprint_table(project.read_snapshot()) == v0.fingerprint


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    import pyarrow as pa
    from lockstep import Project
    project = Project(sys.argv[1])
    info = project.snapshot()
    table = project.read_snapshot()
    def batches():
        for i, batch in enumerate(table.to_batches(max_chunksize=50)):
            if i == 2:
                print("writing", flush=True)
            if i >= 2:
                time.sleep(0.2)
            yield batch
    project.store.snapshots.write(pa.RecordBatchReader.from_batches(table.schema, batches()), info)
""")


def test_ingest_killed_mid_write_leaves_the_store_intact(telco_project: Path) -> None:
    project = Project(telco_project)
    v0 = project.ingest().snapshot
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(telco_project)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    reopened = Project(telco_project)
    assert reopened.store.snapshots.latest() == v0
    assert fingerprint_table(reopened.read_snapshot()) == v0.fingerprint
    # and the store keeps working
    header, rows = read_rows(telco_project / "data" / "wa_churn.csv")
    write_rows(telco_project / "data" / "wa_churn.csv", header, rows[:-1])
    assert reopened.ingest().snapshot.version == 1


def test_time_split_project(small_project: Path) -> None:
    toml = (small_project / "lockstep.toml").read_text().replace(
        'salt = "small"', 'by = "time"\ntime_column = "signup"\nvalid_from = "2024-03-15"\ntest_from = "2024-04-15"')
    (small_project / "lockstep.toml").write_text(toml)
    project = Project(small_project)
    project.ingest()
    report = project.describe()
    assert {k: v["rows"] for k, v in report["splits"].items()} == {"train": 3, "valid": 2, "test": 1}


def test_describe_reports_splits_target_balance_and_columns(telco_project: Path) -> None:
    project = Project(telco_project)
    project.ingest()
    report = project.describe()
    assert sum(s["rows"] for s in report["splits"].values()) == 600
    train = report["splits"]["train"]
    assert sum(c["count"] for c in train["target"].values()) == train["rows"]
    assert report["summary"]["tenure"]["min"] >= 0
    assert report["summary"]["contract"]["distinct"] == 3
    assert report["summary"]["total_charges"]["missing"] >= 0


def test_regression_project_reports_target_distribution(tmp_path: Path) -> None:
    import shutil

    from .conftest import AMES_CSV, EXAMPLES

    project_dir = tmp_path / "ames"
    shutil.copytree(EXAMPLES / "ames-housing", project_dir, ignore=shutil.ignore_patterns(".lockstep", "data"))
    header, rows = read_rows(AMES_CSV)
    write_rows(project_dir / "data" / "ames.csv", header, rows[:400])
    project = Project(project_dir)
    assert project.ingest().snapshot.rows == 400
    target = project.describe()["splits"]["test"]["target"]
    assert target["min"] <= target["mean"] <= target["max"]


def test_a_table_of_many_batches_reads_back_in_order(tmp_path: Path) -> None:
    """delta-rs writes several batches in parallel; lockstep hands it one, so the order holds."""
    from lockstep.store import _delta

    table = pa.Table.from_batches(pa.table({"a": list(range(50_000))}).to_batches(max_chunksize=500))
    assert table.column("a").num_chunks == 100
    _delta.write_table(tmp_path / "t", table, {"kind": "test"})
    assert _delta.to_table(tmp_path / "t", 0).column("a").to_pylist() == list(range(50_000))
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    _delta.write_table(tmp_path / "t", reader, {"kind": "test"}, mode="append")
    assert _delta.to_table(tmp_path / "t", 1).column("a").to_pylist()[50_000:] == list(range(50_000))


def test_a_source_read_in_several_batches_keeps_its_fingerprint(tmp_path: Path) -> None:
    """The ames-housing CSV is read in several batches; its snapshot must read back as it was hashed."""
    import shutil

    from .conftest import EXAMPLES

    project = tmp_path / "ames"
    shutil.copytree(EXAMPLES / "ames-housing", project, ignore=shutil.ignore_patterns(".lockstep"))
    p = Project(project)
    info = p.ingest().snapshot
    stored = p.read_snapshot(info.version)
    assert fingerprint_table(stored) == info.fingerprint
    ids = [int(r[0]) for r in read_rows(project / "data" / "ames.csv")[1]]
    assert stored.column("rownames").to_pylist() == ids
