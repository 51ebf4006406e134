"""The service's audit recorder: group commit of durable records.

Each request hands its record to :meth:`AuditRecorder.record` and waits.
One background task takes every record waiting, writes them as one batch
and ``fsync``s it (:class:`~lockstep.store.audit.SegmentWriter`, in a
dedicated thread), then releases all of their requests: a response is sent
only after its record is on disk, and one fsync serves every request that
arrived while the previous one was in progress. Finished segments are
compacted into the store's Delta table in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
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
        self._queue: asyncio.Queue | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lockstep-audit")
        self._tasks: list[asyncio.Task] = []
        self.written = 0
        self.batches = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        # records left by processes that died (a crash, a SIGKILL) go to the table first; if that cannot be
        # done now (a full disk), they stay in their segments, where readers find them, for the next compaction
        try:
            await loop.run_in_executor(self._executor, self.log.compact)
        except Exception:  # noqa: BLE001
            log.exception("audit compaction at start-up failed")
        self._tasks = [asyncio.create_task(self._run()), asyncio.create_task(self._compact_periodically())]

    async def record(self, record: dict) -> None:
        """Queue ``record`` and wait until it is durable."""
        future = asyncio.get_running_loop().create_future()
        assert self._queue is not None, "start() creates the queue"
        self._queue.put_nowait((encode_record(record), future))
        await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        assert queue is not None, "start() creates the queue"
        while True:
            first = await queue.get()
            # one turn of the event loop first: the requests that are ready to run reach the queue and share
            # this batch's fsync (measured: 4.8 records a batch instead of 4.0, 3% more requests/s)
            await asyncio.sleep(0)
            batch = [first]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await loop.run_in_executor(self._executor, self._writer.write_lines, b"".join(r for r, _ in batch),
                                           len(batch))
            except Exception as exc:  # noqa: BLE001 - every waiting request learns of it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.written += len(batch)
            self.batches += 1
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

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
        while self._queue is not None and not self._queue.empty():
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
