"""What the machine has to spare: whether work beside this process's own would find an idle core."""

from __future__ import annotations

import os

__all__ = ["runnable_now", "spare_core"]

#: Where Linux says how many tasks are runnable at this instant (the fourth field, ``runnable/total``).
LOADAVG = "/proc/loadavg"


def runnable_now() -> int | None:
    """The tasks (processes and threads, this one included) runnable at this instant, or None where the system
    does not say."""
    try:
        with open(LOADAVG, encoding="ascii") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


def spare_core() -> bool:
    """Whether a core is idle: fewer tasks than the cores less half a core are runnable now, or were over the
    last minute on average (this process counts in both; True where the system says neither).

    Work started beside this process's own (a helper process, a forked child) only pays off on a core nobody
    else uses: on a busy machine (a loaded CI runner, parallel trainings) it takes its time from other work. The
    average alone would also count this process's own work of the last minute (a feature build that kept both
    cores busy, then the training of ``lockstep run``): a machine that is quiet now is not busy.
    """
    try:
        average = os.getloadavg()[0]
    except (OSError, AttributeError):
        return True
    now = runnable_now()
    return min(average, average if now is None else now) < (os.cpu_count() or 1) - 0.5
