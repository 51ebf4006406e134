"""Looking up a prediction by request id without scanning the audit log."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from lockstep.store.audit import AuditLog


def _record(request_id: str, *, status: int = 200, endpoint: str = "/predict", rows: int = 1,
            version: int = 3) -> dict:
    return {"request_id": request_id, "time": datetime.now(UTC).isoformat(), "endpoint": endpoint, "status": status,
            "client": "127.0.0.1", "model_name": "m", "model_version": version, "model_fingerprint": "f",
            "runtime": "sklearn", "latency_ms": 1.0, "rows": rows, "inputs": "[]", "outputs": "{}", "error": None}


def test_predictions_are_found_in_segments_and_after_compaction(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    writer = log.writer()
    writer.write([_record("a", rows=2), _record("b", status=422), _record("c", endpoint="/feedback")])
    assert log.prediction("a") == ("m", 3, 2)  # still in its segment
    assert log.prediction("b") is None and log.prediction("c") is None  # not successful predictions
    writer.write([_record("d")])
    assert log.prediction("d") == ("m", 3, 1)  # the cache reads what the segment gained
    writer.close()
    log.compact(include=sorted(writer.folder.glob("*.jsonl")))
    assert not list(writer.folder.glob("*.jsonl"))
    assert log.prediction("a") == ("m", 3, 2) and log.prediction("d") == ("m", 3, 1)  # from the index
    assert log.prediction("unknown") is None


def test_a_compaction_interrupted_before_indexing_is_completed_by_the_next(tmp_path: Path) -> None:
    """The state a crash leaves between the Delta commit and the index: the records in the table, the segment
    still there, not indexed. The next compaction indexes it from its file before removing it."""
    import pyarrow as pa

    from lockstep.store import _delta
    from lockstep.store.audit import audit_schema as _schema
    from lockstep.store.audit import record_row as _row

    log = AuditLog(tmp_path / "audit")
    log.compact()  # an index exists (empty, backfilled)
    writer = log.writer()
    writer.write([_record("early")])
    writer.close()
    (segment,) = sorted(writer.folder.glob("*.jsonl"))
    name = f"{segment.parent.name}/{segment.name}"
    table = pa.Table.from_pylist([_row(_record("early"))], schema=_schema())
    _delta.write_table(log.table, table, {"kind": "audit", "segments": [name], "rows": 1}, mode="append")
    assert log.index.get("early") is None and segment.exists()
    AuditLog(tmp_path / "audit").compact(include=[segment])
    assert not segment.exists() and log.index.get("early") is not None
    assert AuditLog(tmp_path / "audit").prediction("early") == ("m", 3, 1)
    assert log.read().column("request_id").to_pylist() == ["early"]  # compacted once, not twice


def test_a_log_compacted_before_the_index_existed_is_indexed_once(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    writer = log.writer()
    writer.write([_record(f"old-{i}") for i in range(50)])
    writer.close()
    log.compact(include=sorted(writer.folder.glob("*.jsonl")))
    log.index.path.unlink()  # a store from before the index
    for suffix in ("-wal", "-shm"):
        Path(str(log.index.path) + suffix).unlink(missing_ok=True)
    fresh = AuditLog(tmp_path / "audit")
    assert fresh.prediction("old-7") is None  # not indexed yet
    fresh.compact()
    assert fresh.prediction("old-7") == ("m", 3, 1) and fresh.index.backfilled()


def test_a_look_up_does_not_grow_with_the_log(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    for batch in range(20):
        writer = log.writer()
        writer.write([_record(f"r{batch}-{i}") for i in range(2000)])
        writer.close()
        log.compact(include=sorted(writer.folder.glob("*.jsonl")))
    started = time.perf_counter()
    for i in range(100):
        assert log.prediction(f"missing-{i}") is None
    per_lookup = (time.perf_counter() - started) / 100
    assert per_lookup < 0.02, per_lookup  # 40,000 records: an index probe, not a scan (a scan took seconds)
    assert log.prediction("r19-1999") == ("m", 3, 1)
