"""Work beside this process's own: a function run in a forked copy of it, on the machine's other core.

A forked child starts with this process's memory as it is (the data, the imported code, the string hashes'
seed), so a function gives there exactly what it gives here, and nothing is sent to it. Only its result (or
the error it raised, and its warnings) comes back, pickled through a pipe. That makes it fit work of lockstep's
own on data already in memory, for example the feature table's assembly and write while the feature pipeline
is checked here (:mod:`lockstep.features.partitioned`).

User code must not run in the child: libraries with thread pools of their own (OpenMP, Polars, ...) can hang
in a process forked from one that used them. And whatever goes wrong with the child (it cannot start, it
dies, its result does not pickle, it does not answer within ``timeout``) means the same function is run here
instead: forking changes when the work is done, never what it gives.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import select
import signal
import sys
import time
import warnings
from collections.abc import Callable
from typing import Generic, TypeVar

from lockstep.core.errors import LockstepError
from lockstep.core.machine import spare_core

__all__ = ["Forked", "available", "start"]

T = TypeVar("T")


def available() -> bool:
    """Whether work can be forked here: on Linux (elsewhere a forked child of a threaded process is unsafe, or
    there is no fork), with a second core for this process, idle now (:func:`~lockstep.core.machine.spare_core`:
    on a busy machine the child would only take its time from other work)."""
    return sys.platform == "linux" and hasattr(os, "fork") and len(os.sched_getaffinity(0)) > 1 and spare_core()


class Forked(Generic[T]):
    """A function running in a forked child; :meth:`result` waits for it.

    Parameters
    ----------
    work : callable
        What the child runs; run here instead if the child does not deliver.
    pid, pipe : int
        The child and the read end of its pipe; None when it could not be started.
    """

    def __init__(self, work: Callable[[], T], pid: int | None, pipe: int | None) -> None:
        self.work = work
        self.pid = pid
        self.pipe = pipe

    def result(self, timeout: float) -> T:
        """The function's result, or its error raised here (a lockstep error, as the child raised it).

        Raises
        ------
        LockstepError
            The one the function raised.
        """
        outcome = self._receive(timeout)
        if outcome is None:  # no answer: the same work, here
            return self.work()
        kind, value, caught = outcome
        for message, category in caught:
            warnings.warn(message, category, stacklevel=2)
        if kind == "error":
            raise value
        return value

    def cancel(self) -> None:
        """Stop the child, if it still runs (an error here, Ctrl-C): nothing of it is left running."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self._reap()

    def _receive(self, timeout: float) -> tuple | None:
        if self.pid is None or self.pipe is None:
            return None
        data, deadline = bytearray(), time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([self.pipe], [], [], left)
                if not ready:
                    continue
                chunk = os.read(self.pipe, 1 << 20)
                if not chunk:  # the child is done (or died): its pipe is closed
                    break
                data += chunk
            else:  # no answer in time: stopped, and the work is done here
                self.cancel()
                return None
        except BaseException:  # interrupted here (Ctrl-C): the child is stopped, not waited for
            self.cancel()
            raise
        self._reap()
        try:
            outcome = pickle.loads(bytes(data))
        except Exception:  # noqa: BLE001 - the child died before it answered, or its answer did not unpickle
            return None
        return outcome if outcome[0] in ("value", "error") else None

    def _reap(self) -> None:
        if self.pipe is not None:
            with contextlib.suppress(OSError):
                os.close(self.pipe)
            self.pipe = None
        if self.pid is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = None


def start(work: Callable[[], T]) -> Forked[T]:
    """Run ``work`` in a forked child of this process (see the module's documentation); here when it cannot be."""
    if not available():
        return Forked(work, None, None)
    try:
        read, write = os.pipe()
    except OSError:
        return Forked(work, None, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+ on forking a process with threads
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            return Forked(work, None, None)
    if pid == 0:  # pragma: no cover - the child: coverage is not collected there
        _child(work, read, write)
    os.close(write)
    return Forked(work, pid, read)


def _child(work: Callable[[], object], read: int, write: int) -> None:  # pragma: no cover - runs in the child
    """In the child: run ``work``, send its outcome, and leave at once (no atexit handlers, no finalizers)."""
    try:
        os.close(read)
        # the parent's garbage stays the parent's: a collection here could run its finalizers (closing a
        # connection the parent still uses, removing its temporary files)
        gc.disable()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                outcome: tuple = ("value", work())
            except LockstepError as exc:
                outcome = ("error", exc)
            except BaseException:  # noqa: BLE001 - anything else is run again in the parent, for its real error
                outcome = ("other", None)
        data = pickle.dumps((*outcome, [(str(w.message), w.category) for w in caught]))
        view = memoryview(data)
        while view:
            view = view[os.write(write, view):]
    except BaseException:  # noqa: BLE001, S110 - the parent sees a closed pipe and runs the work itself
        pass
    finally:
        os._exit(0)
