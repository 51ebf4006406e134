"""Locks between lockstep processes working on one store: one writer of a kind at a time, the others wait.

Two ``lockstep ingest`` on one project at once both read the latest snapshot
and both write "the next" version; two ``lockstep train`` both find no run
with their inputs and both register one. Each such read-then-write section
holds an exclusive lock of its kind (an ``flock`` on ``<store>/locks/<kind>.lock``,
released by the kernel if the process dies). A second process waits for the
first, then sees what the first wrote: the same inputs are then up to date,
not written twice. A process that waits longer than the timeout
(``LOCKSTEP_LOCK_TIMEOUT`` seconds, default 1,800) stops with a user error
naming the process that holds the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from lockstep.core.errors import FileSystemError, UserError

__all__ = ["exclusive"]

#: Seconds a process waits for a lock before giving up.
DEFAULT_TIMEOUT = 1800.0


def _timeout() -> float:
    try:
        return float(os.environ.get("LOCKSTEP_LOCK_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


@contextlib.contextmanager
def exclusive(path: Path, what: str, timeout: float | None = None) -> Iterator[None]:
    """Hold the lock file ``path`` for the block, waiting for another holder to finish.

    Parameters
    ----------
    path : Path
        The lock file (created, with its folder, if needed).
    what : str
        What the lock protects, for the message (``"ingest"``).
    timeout : float, optional
        Seconds to wait (default: ``LOCKSTEP_LOCK_TIMEOUT``, 1,800).

    Raises
    ------
    UserError
        When another process still holds it after ``timeout`` seconds.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            # a store this process cannot write: the work goes ahead unlocked, as it can only read (an up-to-date
            # check, say); its first write fails on its own, naming the file
            yield
            return
        raise FileSystemError.from_os_error(exc, f"take the {what} lock", path) from None
    try:
        deadline = time.monotonic() + (_timeout() if timeout is None else timeout)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                    raise UserError(f"another {what} is running on {path.parent.parent} (process {holder}); gave up "
                                    "waiting for it", hint="wait for it to finish (or stop it), then run again; "
                                    "LOCKSTEP_LOCK_TIMEOUT sets how long to wait") from None
                time.sleep(0.1)
        with contextlib.suppress(OSError):  # the holder's pid is only for the message; a full disk must not stop here
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
