"""What the machine has to spare: whether work beside this process's own would find an idle core."""

from __future__ import annotations

import os

__all__ = ["spare_core"]


def spare_core() -> bool:
    """Whether a core is idle: the load average of the last minute is below the cores less half a core (True
    where the system does not say).

    Work started beside this process's own (a helper process, a forked child) only pays off on a core nobody
    else uses: on a busy machine (a loaded CI runner, parallel trainings) it takes its time from other work.
    """
    try:
        return os.getloadavg()[0] < (os.cpu_count() or 1) - 0.5
    except (OSError, AttributeError):
        return True
