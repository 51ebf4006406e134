"""lockstep.compute.fork: work in a forked child, its result or error here, and the same work here when the child
does not deliver (it dies, hangs, or its result does not travel)."""

from __future__ import annotations

import os
import signal
import time
import warnings

import pytest

from lockstep.compute import fork as forked
from lockstep.core.errors import PipelineError


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forking needs a core to spare: these tests say there is one, whatever the machine running them."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))


def _exited(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # reaped: no zombie left behind
    return False


def test_the_work_runs_in_a_child_and_its_result_comes_back() -> None:
    here = os.getpid()
    big = list(range(200_000))  # in the child's memory from the start: nothing is sent to it
    child = forked.start(lambda: (os.getpid(), sum(big), "é" * 3_000_000))
    assert child.pid is not None and child.pid != here
    pid, total, text = child.result(timeout=60)
    assert pid != here and total == sum(big) and text == "é" * 3_000_000  # a result larger than a pipe's buffer


def test_a_lockstep_error_in_the_child_is_raised_here_with_its_hint() -> None:
    def fail() -> None:
        raise PipelineError(f"broken in {os.getpid()}", hint="fix it")

    child = forked.start(fail)
    pid = child.pid
    with pytest.raises(PipelineError) as info:
        child.result(timeout=60)
    assert info.value.message == f"broken in {pid}" and info.value.hint == "fix it"
    assert pid is not None and _exited(pid)


def test_warnings_of_the_child_are_given_here() -> None:
    def warn() -> int:
        warnings.warn("careful", UserWarning, stacklevel=1)
        return 1

    with pytest.warns(UserWarning, match="careful"):
        assert forked.start(warn).result(timeout=60) == 1


@pytest.mark.parametrize("how", ["dies", "other-error", "unpicklable", "hangs"])
def test_work_the_child_does_not_deliver_is_done_here(how: str) -> None:
    here = os.getpid()

    def work():
        if os.getpid() != here:
            if how == "dies":
                os._exit(3)
            if how == "other-error":
                raise ValueError("only over there")
            if how == "unpicklable":
                return lambda: None
            time.sleep(3600)
        return os.getpid()

    child = forked.start(work)
    pid = child.pid
    started = time.monotonic()
    assert child.result(timeout=2) == here  # done again, here
    assert time.monotonic() - started < 30
    assert pid is not None and _exited(pid)


def test_an_error_of_another_kind_is_raised_here_from_the_work_done_here() -> None:
    def work() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        forked.start(work).result(timeout=60)


def test_cancel_stops_the_child() -> None:
    child = forked.start(lambda: time.sleep(3600))
    pid = child.pid
    assert pid is not None and not _exited(pid)
    child.cancel()
    assert _exited(pid)
    child.cancel()  # twice is harmless


@pytest.mark.parametrize("why", ["one-core", "busy"])
def test_without_a_core_to_spare_the_work_runs_here(why: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if why == "one-core":
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    else:  # both cores busy over the last minute
        monkeypatch.setattr(os, "getloadavg", lambda: (float(os.cpu_count() or 1), 0.0, 0.0))
    assert not forked.available()
    child = forked.start(os.getpid)
    assert child.pid is None and child.result(timeout=1) == os.getpid()


def test_an_interrupted_wait_stops_the_child_instead_of_waiting_for_it() -> None:
    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    child = forked.start(lambda: time.sleep(3600))
    pid = child.pid
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)  # Ctrl-C, as far as the wait can tell
    started = time.monotonic()
    try:
        with pytest.raises(Interrupted):
            child.result(timeout=600)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 30
    assert pid is not None and _exited(pid)
