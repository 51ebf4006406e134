"""lockstep.core.machine: whether a core is idle, from the load now and over the last minute."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from lockstep.core import machine


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/loadavg is Linux's")
def test_the_tasks_runnable_now_include_this_one() -> None:
    assert machine.runnable_now() >= 1


def test_without_proc_the_count_is_unknown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(machine, "LOADAVG", str(tmp_path / "absent"))
    assert machine.runnable_now() is None
    (tmp_path / "garbled").write_text("0.5 0.4\n")
    monkeypatch.setattr(machine, "LOADAVG", str(tmp_path / "garbled"))
    assert machine.runnable_now() is None


@pytest.mark.parametrize(("average", "now", "spare"), [
    (0.2, 1, True),     # quiet, and only this process runs
    (1.9, 1, True),     # the last minute was busy (this process's own earlier work, say); now it is quiet
    (0.2, 4, True),     # a moment's crowd on a quiet machine
    (1.9, 2, False),    # busy then and now: a child would take its time from other work
    (1.9, None, False),  # no count of now: the average decides
    (0.2, None, True),
])
def test_a_core_is_spare_when_the_load_now_or_the_last_minutes_leaves_one(
        average: float, now: int | None, spare: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (average, 0.0, 0.0))
    monkeypatch.setattr(machine, "runnable_now", lambda: now)
    assert machine.spare_core() is spare


def test_where_the_system_gives_no_load_a_core_is_assumed_spare(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> tuple[float, float, float]:
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", unavailable)
    assert machine.spare_core() is True
