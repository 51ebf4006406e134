"""lockstep.compute.fork: work in a forked child, its result or error here, and the same work here when the child
does not deliver (it dies, hangs, or its result does not travel)."""

from __future__ import annotations

import gc
import os
import signal
import time
import warnings
from functools import partial
from pathlib import Path

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
    child = forked.start(lambda: time.sleep(3600))
    pid = child.pid
    _interrupted(lambda: child.result(timeout=600))
    assert pid is not None and _exited(pid)


class _Interrupted(Exception):
    """A Ctrl-C, as far as a wait can tell."""


def _interrupted(wait) -> None:
    """Run ``wait``, interrupted after half a second: it must give up at once, with the interrupt."""
    def interrupt(signum, frame):
        raise _Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    started = time.monotonic()
    try:
        with pytest.raises(_Interrupted):
            wait()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 30


# ---------------------------------------------------------------------- a helper: ready ahead, work sent later

_PREPARED: list[int] = []


def _prepare() -> None:
    _PREPARED.append(os.getpid())  # in the child's memory only


def _prepared_by() -> tuple[int, list[int]]:
    return os.getpid(), list(_PREPARED)


def _fail() -> None:
    raise PipelineError(f"broken in {os.getpid()}", hint="fix it")


def _warn_and_answer(value: int) -> int:
    warnings.warn("careful", UserWarning, stacklevel=1)
    return value


def test_a_helper_gets_ready_first_then_runs_the_work_it_is_sent() -> None:
    here = os.getpid()
    with forked.helper(_prepare) as helper:
        pid = helper.pid
        assert helper.forked and pid is not None and pid != here
        big = "é" * 3_000_000  # work larger than a pipe's buffer, made after the fork
        worker, prepared = helper.run(_prepared_by)
        assert helper.run(partial(len, big)) == len(big)  # a helper is used once: then the work is done here
    assert worker == pid and prepared == [pid]  # prepared in the child, before the work
    assert _PREPARED == [] and _exited(pid)


def _collector_while_preparing() -> None:
    _PREPARED.append(gc.isenabled())


def _collector_now() -> tuple[list[int], bool, int]:
    return list(_PREPARED), gc.isenabled(), len(gc.get_objects())


def test_a_helper_prepares_without_the_collector_and_works_with_it_on_its_own_objects() -> None:
    """Its imports are not slowed by collections; its work's garbage is collected; the objects it started with
    (the parent's) and those it imported are frozen, never traversed there."""
    assert gc.isenabled()
    objects_here = len(gc.get_objects())
    with forked.helper(_collector_while_preparing) as helper:
        prepared, enabled, tracked = helper.run(_collector_now)
    assert prepared == [False] and enabled
    assert tracked < objects_here / 10  # only what the work made since
    assert gc.isenabled() and _PREPARED == []  # nothing changed here


def test_a_lockstep_error_and_the_warnings_of_the_helpers_work_are_given_here() -> None:
    helper = forked.helper(_prepare)
    pid = helper.pid
    with pytest.raises(PipelineError) as info:
        helper.run(_fail)
    assert info.value.message == f"broken in {pid}" and info.value.hint == "fix it"
    with pytest.warns(UserWarning, match="careful"):
        assert forked.helper(_prepare).run(partial(_warn_and_answer, 7)) == 7


def _slow_prepare() -> None:
    time.sleep(3600)


def _dying_prepare() -> None:
    os._exit(3)


def _dies_at_work() -> int:
    os._exit(3)


def _other_error_at_work() -> int:
    raise ValueError("only over there")


@pytest.mark.parametrize("how", ["not-ready-in-time", "dies-getting-ready", "dies-working", "other-error",
                                 "work-does-not-pickle"])
def test_work_a_helper_cannot_take_or_finish_is_done_here(how: str) -> None:
    here = os.getpid()
    prepare = {"not-ready-in-time": _slow_prepare, "dies-getting-ready": _dying_prepare}.get(how, _prepare)
    work = {"dies-working": _dies_at_work, "other-error": _other_error_at_work,
            "work-does-not-pickle": lambda: os.getpid()}.get(how, os.getpid)
    helper = forked.helper(prepare)
    pid = helper.pid
    started = time.monotonic()
    assert helper.run(work, here=os.getpid, timeout=2) == here
    assert time.monotonic() - started < 30
    assert pid is not None and _exited(pid)


def test_a_helper_given_no_work_is_stopped_at_the_end_of_its_block() -> None:
    with forked.helper(_slow_prepare) as helper:
        pid = helper.pid
        assert pid is not None and not _exited(pid)
    assert _exited(pid)
    helper.cancel()  # twice is harmless


def test_without_a_core_to_spare_a_helper_has_no_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    helper = forked.helper(_prepare)
    assert not helper.forked and helper.run(os.getpid) == os.getpid()


@pytest.mark.parametrize("waiting_for", ["ready", "answer"])
def test_an_interrupted_wait_for_a_helper_stops_it(waiting_for: str) -> None:
    helper = forked.helper(_slow_prepare if waiting_for == "ready" else _prepare)
    pid = helper.pid
    _interrupted(lambda: helper.run(partial(time.sleep, 3600), timeout=600))
    assert pid is not None and _exited(pid)


def _ends_what_it_started(marker: Path, *, stubborn: bool) -> None:
    """Work that, interrupted, writes down that it ended (a run marked failed); ``stubborn`` then goes on."""
    try:
        time.sleep(3600)
    except KeyboardInterrupt:
        marker.write_text("ended")
        if stubborn:
            time.sleep(3600)
        raise


@pytest.mark.parametrize("stubborn", [False, True])
def test_an_interrupted_helper_ends_what_it_started_within_its_grace(stubborn: bool, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted here, a helper with its work is interrupted too, and waited for up to GRACE_SECONDS: the
    interrupt is raised here once it has ended, or once it has been killed."""
    monkeypatch.setattr(forked, "GRACE_SECONDS", 2.0)
    marker = tmp_path / "ended"
    helper = forked.helper(_prepare)
    pid = helper.pid
    started = time.monotonic()
    _interrupted(lambda: helper.run(partial(_ends_what_it_started, marker, stubborn=stubborn), timeout=600))
    waited = time.monotonic() - started
    assert pid is not None and _exited(pid)
    assert marker.read_text() == "ended"
    assert (waited >= 2.0) if stubborn else (waited < 2.0)
