"""The service's audit recorder: group commit of durable records.

Each request hands its record to :meth:`AuditRecorder.record` and waits.
The records waiting are written as one batch and ``fsync``ed
(:class:`~lockstep.store.audit.SegmentWriter`, in a dedicated thread), then
all of their requests are released: a response is sent only after its
record is on disk, and one fsync serves every request that arrived while
the previous one was in progress. The hand-over is two callbacks in the
event loop (no queue, no task to wake): about 10 us less CPU a request. Finished segments are
compacted into the store's Delta table in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from lockstep.store.audit import encode_record

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.store.audit import AuditLog

__all__ = ["AuditRecorder"]

log = logging.getLogger("lockstep.audit")


class AuditRecorder:
    """Durable, batched audit records for one service process.

    Parameters
    ----------
    log : AuditLog
    max_batch : int
        Records written together at most.
    compact_every : float
        Seconds between background compactions of finished segments.
    """

    def __init__(self, log: AuditLog, *, max_batch: int = 2000, compact_every: float = 30.0) -> None:
        self.log = log
        self.max_batch = max_batch
        self.compact_every = compact_every
        self._writer = log.writer()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lockstep-audit")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[tuple[bytes, asyncio.Future]] = []  # encoded records and their requests
        self._writing = False  # a batch is in the writer thread, or about to be taken
        self._tasks: list[asyncio.Task] = []
        self.written = 0
        self.batches = 0

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        # records left by processes that died (a crash, a SIGKILL) go to the table first; if that cannot be
        # done now (a full disk), they stay in their segments, where readers find them, for the next compaction
        try:
            await loop.run_in_executor(self._executor, self.log.compact)
        except Exception:  # noqa: BLE001
            log.exception("audit compaction at start-up failed")
        self._tasks = [asyncio.create_task(self._compact_periodically())]

    async def record(self, record: dict) -> None:
        """Queue ``record`` and wait until it is durable."""
        loop = self._loop
        assert loop is not None, "start() comes first"
        future = loop.create_future()
        self._waiting.append((encode_record(record), future))
        if not self._writing:
            # one turn of the event loop first: the requests that are ready to run add their records and share
            # this batch's fsync (measured: 4.8 records a batch instead of 4.0, 3% more requests/s)
            self._writing = True
            loop.call_soon(self._write_batch)
        await future

    def _write_batch(self) -> None:
        """In the event loop: hand the records waiting (up to ``max_batch``) to the writer thread."""
        batch, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
        loop = self._loop
        assert loop is not None and batch, "called for records waiting, once started"
        try:
            done = self._executor.submit(self._writer.write_lines, b"".join(r for r, _ in batch), len(batch))
        except Exception as exc:  # noqa: BLE001 - the writer is gone (shut down): every waiting request learns of it
            failed: Future = Future()
            failed.set_exception(exc)
            self._written(batch, failed)
            return
        done.add_done_callback(lambda written: loop.call_soon_threadsafe(self._written, batch, written))

    def _written(self, batch: list[tuple[bytes, asyncio.Future]], written: Future) -> None:
        """In the event loop: release the batch's requests (or give each the error), then write the next."""
        error = written.exception()
        for _, future in batch:
            if future.done():  # its request was cancelled (the client went away)
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(None)
        if error is None:
            self.written += len(batch)
            self.batches += 1
        if self._waiting:  # arrived while the batch was written: the next batch, after one turn as above
            assert self._loop is not None
            self._loop.call_soon(self._write_batch)
        else:
            self._writing = False

    async def probe(self) -> None:
        """Check that the audit log can be written now (see :meth:`SegmentWriter.probe`).

        Raises
        ------
        FileSystemError
        """
        await asyncio.get_running_loop().run_in_executor(self._executor, self._writer.probe)

    async def _compact_periodically(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.compact_every)
            try:
                await loop.run_in_executor(self._executor, self.log.compact)
            except Exception:  # the records stay in their segments; the next compaction retries
                log.exception("audit compaction failed")

    async def close(self) -> None:
        """Write what is queued, stop, and compact this process's segments."""
        while self._writing:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._writer.close)
        segments = sorted(self._writer.folder.glob("*.jsonl")) if self._writer.folder.exists() else []
        try:
            await loop.run_in_executor(self._executor, lambda: self.log.compact(include=segments))
        except Exception:  # the records stay in their segments; the next start compacts them
            log.exception("audit compaction at shutdown failed")
        self._executor.shutdown(wait=True)
