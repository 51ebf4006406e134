"""Work beside this process's own: a function run in a forked copy of it, on the machine's other core.

A forked child starts with this process's memory as it is (the data, the imported code, the string hashes'
seed), so a function gives there exactly what it gives here, and nothing is sent to it. Only its result (or
the error it raised, and its warnings) comes back, pickled through a pipe. That makes it fit work of lockstep's
own on data already in memory, for example the feature table's assembly and write while the feature pipeline
is checked here (:mod:`lockstep.features.partitioned`).

A :class:`Helper` is the other way round: a child forked early makes itself ready (imports what the work needs)
while this process goes on, and the work, made here later, is sent to it pickled (:func:`helper`). Training hands
its registry writes to one, forked before the fit, so that MLflow is imported during the fit rather than after it.

User code must not run in the child: libraries with thread pools of their own (OpenMP, Polars, ...) can hang
in a process forked from one that used them. And whatever goes wrong with the child (it cannot start, it
dies, its result does not pickle, it does not answer within ``timeout``) means the same function is run here
instead: forking changes when the work is done, never what it gives.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import pickle
import select
import signal
import struct
import sys
import time
import warnings
from collections.abc import Callable
from typing import Generic, TypeVar

from lockstep.core.errors import LockstepError
from lockstep.core.machine import spare_core

__all__ = ["GRACE_SECONDS", "READY_SECONDS", "Forked", "Helper", "available", "helper", "sent_later", "start"]

#: Seconds a :class:`Helper` may still take to be ready once its work is sent; then the work is done here.
READY_SECONDS = 120.0
#: Seconds a :class:`Helper` that has its work is given to wind it down when this process is interrupted.
GRACE_SECONDS = 10.0

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
    grace : float
        Seconds the child is given to wind its work down when the wait for it is interrupted (:meth:`stop`);
        0 stops it at once.
    """

    def __init__(self, work: Callable[[], T], pid: int | None, pipe: int | None, *, grace: float = 0.0) -> None:
        self.work = work
        self.pid = pid
        self.pipe = pipe
        self.grace = grace

    def result(self, timeout: float | None) -> T:
        """The function's result, or its error raised here (a lockstep error, as the child raised it); with
        ``timeout`` None, the child is waited for as long as it runs.

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

    def stop(self) -> None:
        """Stop the child after an interrupt here: with a ``grace``, it is interrupted too (Ctrl-C, once, which
        a terminal sends it anyway) and given that long to end what it started (a run it was logging is marked
        failed, a version registered removed, as they would be here); then, or at a second interrupt, killed."""
        if self.pid is not None and self.grace > 0:
            with contextlib.suppress(BaseException):  # gone already, or interrupted again: killed at once, below
                os.kill(self.pid, signal.SIGINT)
                deadline = time.monotonic() + self.grace
                while time.monotonic() < deadline:
                    if os.waitpid(self.pid, os.WNOHANG) != (0, 0):
                        self.pid = None  # it has ended, and is reaped
                        break
                    time.sleep(0.02)
        self.cancel()

    def _receive(self, timeout: float | None) -> tuple | None:
        if self.pid is None or self.pipe is None:
            return None
        data, deadline = bytearray(), time.monotonic() + (math.inf if timeout is None else timeout)
        try:
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([self.pipe], [], [], None if timeout is None else left)
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
            self.stop()
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


class Helper(Generic[T]):
    """A forked child getting ready (:func:`helper`) for one piece of work, handed to it by :meth:`run`.

    Parameters
    ----------
    pid : int
        The child; None when there is none (the work is then done here).
    answers, requests : int
        The read end of the child's pipe, and the write end of the pipe it reads the work from.
    """

    def __init__(self, pid: int | None, answers: int | None, requests: int | None) -> None:
        self.pid = pid
        self.answers = answers
        self.requests = requests

    @classmethod
    def here(cls) -> Helper:
        """A helper with no child: its work is done in this process."""
        return cls(None, None, None)

    @property
    def forked(self) -> bool:
        """Whether a child is getting ready for the work (else :meth:`run` does it here)."""
        return self.pid is not None

    def __enter__(self) -> Helper[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()  # no work was handed over (an error here): the child is not left waiting

    def run(self, work: Callable[[], T], here: Callable[[], T] | None = None, *, timeout: float = READY_SECONDS,
            later: Callable[[], object] | None = None) -> T:
        """``work``'s result, or its lockstep error raised here, computed by the child.

        ``here`` (by default ``work`` itself) is run in this process instead when the child cannot take the
        work: there is no child, ``work`` does not pickle, the child is not ready within ``timeout`` seconds,
        or it is gone. Once it has the work, the child is waited for as long as it runs, as this process would
        be; if it then dies, or fails with an error that is not lockstep's, ``here`` is run as well (for the
        real error, or the result). Work handed to a helper must therefore be safe to do again. Interrupted
        (Ctrl-C) once the child has the work, this process interrupts it too and gives it :data:`GRACE_SECONDS`
        to end what it started, as the work would here, before the interrupt is raised here (:meth:`Forked.stop`).

        ``later`` is computed here once the work is handed over, and its value sent after it: the work asks for
        it with :func:`sent_later` (which waits for it), so that the child can start before it is known.

        Raises
        ------
        LockstepError
            The one the work raised.
        """
        fallback = work if here is None else here
        if self.pid is None:
            return fallback()
        try:
            payload = pickle.dumps(work)
        except Exception:  # noqa: BLE001 - it cannot travel: done here
            self.cancel()
            return fallback()
        try:
            handed_over = self._ready(timeout) and self._send(payload)
        except BaseException:  # interrupted here (Ctrl-C): the child is stopped, not waited for
            self.cancel()
            raise
        del payload  # the child's now: not kept here while it works
        if not handed_over:
            self.cancel()
            return fallback()
        handed = Forked(fallback, self.pid, self.answers, grace=GRACE_SECONDS)
        self.pid = self.answers = None  # the child is the hand-over's to wait for, and to stop
        try:
            if later is not None:
                self._send(pickle.dumps(later()))
        except Exception:  # noqa: BLE001, S110 - no value: the work, waiting for it, fails, and is done here
            pass
        except BaseException:
            handed.stop()
            raise
        finally:
            self._close()  # the end of what the child is sent
        return handed.result(None)

    def cancel(self) -> None:
        """Stop the child if it was not given its work, or still runs; nothing of it is left running."""
        Forked(lambda: None, self.pid, self.answers).cancel()
        self._close()
        self.pid = self.answers = None

    def _ready(self, timeout: float) -> bool:
        assert self.answers is not None
        try:
            ready, _, _ = select.select([self.answers], [], [], timeout)
            return bool(ready) and os.read(self.answers, 1) == _READY
        except OSError:
            return False

    def _send(self, payload: bytes) -> bool:
        """Send one message (its length, then its bytes); False when the child is gone."""
        if self.requests is None:
            return False
        try:
            _write_all(self.requests, _LENGTH.pack(len(payload)) + payload)
        except OSError:
            return False
        return True

    def _close(self) -> None:
        if self.requests is not None:
            with contextlib.suppress(OSError):
                os.close(self.requests)
            self.requests = None


def helper(prepare: Callable[[], object]) -> Helper:
    """A forked child that runs ``prepare`` now (it imports what the work will need, say), then waits for the work
    :meth:`Helper.run` sends it. Without a core to spare (:func:`available`) there is no child, and the work is
    done here. ``prepare`` must not change anything outside the child; if it fails, the work is done here."""
    pipes = _pipes(2) if available() else None
    if pipes is None:
        return Helper.here()
    (answers, answer), (request, requests) = pipes
    pid = _spawn(lambda: _serve(prepare, answer, request, (answers, requests)))
    os.close(answer)
    os.close(request)
    if pid is None:
        os.close(answers)
        os.close(requests)
        return Helper.here()
    return Helper(pid, answers, requests)


def start(work: Callable[[], T]) -> Forked[T]:
    """Run ``work`` in a forked child of this process (see the module's documentation); here when it cannot be."""
    pipes = _pipes(1) if available() else None
    if pipes is None:
        return Forked(work, None, None)
    ((read, write),) = pipes
    pid = _spawn(lambda: _child(work, read, write))
    os.close(write)
    if pid is None:
        os.close(read)
        return Forked(work, None, None)
    return Forked(work, pid, read)


def _pipes(count: int) -> list[tuple[int, int]] | None:
    """``count`` pipes (read end, write end), or None when the process has no descriptors left."""
    made: list[tuple[int, int]] = []
    try:
        for _ in range(count):
            made.append(os.pipe())
    except OSError:
        for pair in made:
            for end in pair:
                os.close(end)
        return None
    return made


def _spawn(child: Callable[[], None]) -> int | None:
    """Fork; the child runs ``child`` and leaves (:func:`os._exit`). The child's pid, or None if fork failed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+ on forking a process with threads
        try:
            pid = os.fork()
        except OSError:
            return None
    if pid == 0:  # pragma: no cover - the child: coverage is not collected there
        try:
            child()
        finally:
            os._exit(0)
    return pid


def _child(work: Callable[[], object], read: int, write: int) -> None:  # pragma: no cover - runs in the child
    """In the child: run ``work`` and send its outcome (no atexit handlers, no finalizers run after it)."""
    try:
        os.close(read)
        # the parent's garbage stays the parent's: a collection here could run its finalizers (closing a
        # connection the parent still uses, removing its temporary files)
        gc.disable()
        _write_all(write, _outcome(work))
    except BaseException:  # noqa: BLE001, S110 - the parent sees a closed pipe and runs the work itself
        pass


def _serve(prepare: Callable[[], object], answer: int, request: int,
           parents: tuple[int, int]) -> None:  # pragma: no cover - runs in the child
    """In a helper child: get ready, say so, read the work, run it and send its outcome."""
    try:
        for end in parents:
            os.close(end)
        # the parent's objects are never collected here (see :func:`_child`), the helper's own garbage is: it
        # imports and writes much more than a forked child of :func:`start`. Not while it imports, though: the
        # collections the imports' new objects set off (the full ones traverse all of them, again and again)
        # took about a quarter of the time MLflow and its stores take to import (docs/benchmarks.md); what it
        # imported is kept for the rest of its life, like the parent's objects
        gc.freeze()
        gc.disable()
        _own_streams()
        prepare()
        gc.freeze()
        gc.enable()
        _write_all(answer, _READY)
        work = pickle.loads(_receive_message(request))
        _interruptible_once()
        global _LATER
        _LATER = request
        outcome = _outcome(work)
        del work  # what it made is released now (a temporary folder's finalizer): os._exit runs none
        _write_all(answer, outcome)
    except BaseException:  # noqa: BLE001, S110 - the parent sees a closed pipe and does the work itself
        pass


def _interruptible_once() -> None:  # pragma: no cover - runs in the child
    """The helper's work stops at the first Ctrl-C (its own from the terminal, or its parent's), and its cleanup
    (a run marked failed) is not cut short by the second."""
    def interrupted(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # forked from another thread than the main one: Python's own handler
        signal.signal(signal.SIGINT, interrupted)


def _outcome(work: Callable[[], object]) -> bytes:  # pragma: no cover - runs in the child
    """``work`` run: its value or lockstep error, and the warnings it gave, pickled (``"other"`` for any other
    error, which the parent gets by running the work itself)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            outcome: tuple = ("value", work())
        except LockstepError as exc:
            outcome = ("error", exc)
        except BaseException:  # noqa: BLE001 - anything else is run again in the parent, for its real error
            outcome = ("other", None)
    return pickle.dumps((*outcome, [(str(w.message), w.category) for w in caught]))


def _own_streams() -> None:  # pragma: no cover - runs in the child
    """Standard output and error as new objects on the same descriptors: a lock on the parent's that a thread held
    at the fork (one drawing a progress line) would never be released here."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        old = getattr(sys, name)
        try:
            stream = os.fdopen(fd, "w", buffering=1, encoding=getattr(old, "encoding", None) or "utf-8",
                               errors="backslashreplace", closefd=False)
        except OSError:
            stream = open(os.devnull, "w")  # noqa: SIM115 - the child's for the rest of its short life
        setattr(sys, name, stream)


def sent_later() -> object:
    """In the work a :class:`Helper` runs: the value of the ``later`` its parent computed after handing the work
    over (see :meth:`Helper.run`), once it has come.

    Raises
    ------
    EOFError
        When it will not come (its computation failed in the parent, which then does the work itself).
    RuntimeError
        Outside a helper's work.
    """
    if _LATER is None:
        raise RuntimeError("sent_later() is for the work a helper runs")
    return pickle.loads(_receive_message(_LATER))


def _receive_message(fd: int) -> bytes:  # pragma: no cover - runs in the child
    """One message of :meth:`Helper._send`: its length, then its bytes."""
    (size,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size))
    return _read_exactly(fd, size)


def _read_exactly(fd: int, size: int) -> bytes:  # pragma: no cover - runs in the child
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, min(size - len(data), 1 << 20))
        if not chunk:
            raise EOFError("the parent sent no more")
        data += chunk
    return bytes(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


_READY = b"R"
_LENGTH = struct.Struct("<Q")
#: In a helper child, the pipe :func:`sent_later` reads from.
_LATER: int | None = None
