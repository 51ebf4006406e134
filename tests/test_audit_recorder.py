"""The service's audit recorder: a request is released only once its record is durable, batches share an fsync,
a failed write reaches every request of its batch, and closing writes what is waiting."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lockstep.core.errors import FileSystemError
from lockstep.inference.audit import AuditRecorder
from lockstep.store.audit import AuditLog, parse_segment


def _record(i: int) -> dict:
    return {"request_id": f"r{i}", "time": datetime.now(UTC).isoformat(), "endpoint": "/predict", "status": 200,
            "client": "127.0.0.1", "model_name": "m", "model_version": 1, "model_fingerprint": "f" * 64,
            "runtime": "onnx", "latency_ms": 0.5, "rows": 1, "inputs": [{"x": i, "s": "é"}],
            "outputs": {"predictions": [i % 2]}, "error": None}


def _on_disk(log: AuditLog) -> list[str]:
    return [r["request_id"] for path in sorted(log.wal.rglob("*.jsonl")) for r in parse_segment(path.read_bytes(),
                                                                                                  path)]


def test_records_waiting_together_share_a_write(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")

    async def main() -> AuditRecorder:
        recorder = AuditRecorder(log, compact_every=3600)
        await recorder.start()
        await asyncio.gather(*(recorder.record(_record(i)) for i in range(40)))
        await asyncio.gather(*(recorder.record(_record(i)) for i in range(40, 45)))  # later: a batch of their own
        return recorder

    recorder = asyncio.run(main())
    assert recorder.written == 45
    assert 2 <= recorder.batches < 45  # one write and fsync for the records waiting together
    assert sorted(_on_disk(log), key=lambda r: int(r[1:])) == [f"r{i}" for i in range(45)]


def test_each_record_is_on_disk_before_its_request_goes_on(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")

    async def main() -> None:
        recorder = AuditRecorder(log, compact_every=3600)
        await recorder.start()

        async def one(i: int) -> None:
            await recorder.record(_record(i))
            assert f"r{i}" in _on_disk(log)

        await asyncio.gather(*(one(i) for i in range(30)))
        await recorder.close()

    asyncio.run(main())


def test_a_failed_write_reaches_every_request_of_its_batch_and_the_next_batch_is_written(tmp_path: Path,
                                                                                         monkeypatch) -> None:
    log = AuditLog(tmp_path / "audit")

    async def main() -> list[object]:
        recorder = AuditRecorder(log, compact_every=3600)
        await recorder.start()
        writer = recorder._writer
        real = writer.write_lines
        calls = []

        def failing_once(payload: bytes, count: int) -> None:
            calls.append(count)
            if len(calls) == 1:
                raise FileSystemError("the disk is full", hint="free space")
            real(payload, count)

        monkeypatch.setattr(writer, "write_lines", failing_once)
        first = await asyncio.gather(*(recorder.record(_record(i)) for i in range(5)), return_exceptions=True)
        second = await asyncio.gather(*(recorder.record(_record(i)) for i in range(5, 8)), return_exceptions=True)
        await recorder.close()
        return [*first, *second]

    outcomes = asyncio.run(main())
    assert all(isinstance(o, FileSystemError) for o in outcomes[:5])
    assert outcomes[5:] == [None, None, None]
    assert sorted(log.read().column("request_id").to_pylist()) == ["r5", "r6", "r7"]  # compacted at close


def test_closing_writes_the_records_still_waiting(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")

    async def main() -> None:
        recorder = AuditRecorder(log, compact_every=3600)
        await recorder.start()
        tasks = [asyncio.create_task(recorder.record(_record(i))) for i in range(12)]
        await asyncio.sleep(0)  # the records are waiting, none written yet
        await recorder.close()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert log.read().num_rows == 12  # written, then compacted into the table at close


@pytest.mark.parametrize("max_batch", [1, 3])
def test_batches_hold_at_most_max_batch_records(tmp_path: Path, max_batch: int) -> None:
    log = AuditLog(tmp_path / "audit")

    async def main() -> AuditRecorder:
        recorder = AuditRecorder(log, max_batch=max_batch, compact_every=3600)
        await recorder.start()
        await asyncio.gather(*(recorder.record(_record(i)) for i in range(10)))
        await recorder.close()
        return recorder

    recorder = asyncio.run(main())
    assert recorder.written == 10 and recorder.batches >= -(-10 // max_batch)
