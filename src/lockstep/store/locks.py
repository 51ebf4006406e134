"""Locks between lockstep processes working on one store: one writer of a kind at a time, the others wait.

Two ``lockstep ingest`` on one project at once both read the latest snapshot
and both write "the next" version; two ``lockstep train`` both find no run
with their inputs and both register one. Each such read-then-write section
holds an exclusive lock of its kind (an ``flock`` on ``<store>/locks/<kind>.lock``,
released by the kernel if the process dies; on a store in S3, an object created
with a conditional put, see :func:`remote_exclusive`). A second process waits for the
first, then sees what the first wrote: the same inputs are then up to date,
not written twice. A process that waits longer than the timeout
(``LOCKSTEP_LOCK_TIMEOUT`` seconds, default 1,800) stops with a user error
naming the process that holds the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from lockstep.core.errors import FileSystemError, UserError
from lockstep.store import objects
from lockstep.store.location import RemotePath

__all__ = ["exclusive", "remote_exclusive"]

#: Seconds a lock on S3 stays valid without being renewed: a holder that dies frees it after this long.
LEASE_SECONDS = 30.0

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


@contextlib.contextmanager
def remote_exclusive(path: RemotePath, what: str, timeout: float | None = None,
                     lease: float = LEASE_SECONDS) -> Iterator[None]:
    """Hold the lock object ``path`` in an S3 store for the block: the same rules as :func:`exclusive`,
    across machines.

    The lock is an object created only if absent (``If-None-Match: *``), holding who took it and until when.
    The holder renews it every third of the lease (``If-Match`` on its own version), and deletes it when the
    block ends. A holder that died stops renewing: once its lease has run out, the next process replaces the
    object, again conditionally, so two processes never both believe they hold it. Clocks of the machines
    must agree within a small part of the lease (NTP).
    """
    deadline = time.monotonic() + (_timeout() if timeout is None else timeout)
    me = f"{socket.gethostname()}:{os.getpid()}"

    def body() -> bytes:
        return json.dumps({"holder": me, "what": what, "expires": time.time() + lease}).encode()

    etag = _take(path, body, deadline, what)
    state = {"etag": etag}
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease / 3):
            renewed = objects.replace_if_match(path, body(), state["etag"])
            if renewed is None:
                return  # taken over after an expired lease: nothing more to renew
            state["etag"] = renewed

    renewer = threading.Thread(target=renew, name=f"lockstep-lock-{what}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=10)
        with contextlib.suppress(Exception):  # the lease runs out on its own if this fails
            objects.delete(path, state["etag"])


def _take(path: RemotePath, make: Callable[[], bytes], deadline: float, what: str) -> str:
    while True:
        etag = objects.put_if_absent(path, make())
        if etag is not None:
            return etag
        found = objects.get(path)
        if found is not None:
            data, current = found
            try:
                held = json.loads(data)
                expires, holder = float(held.get("expires", 0)), str(held.get("holder", "another process"))
            except (ValueError, TypeError, AttributeError):
                expires, holder = 0.0, "an unreadable lock"
            if expires < time.time():
                taken = objects.replace_if_match(path, make(), current)
                if taken is not None:
                    return taken
                continue
            if time.monotonic() >= deadline:
                raise UserError(f"another {what} is running on {path.parent.parent} ({holder}); gave up waiting "
                                "for it", hint="wait for it to finish (or stop it), then run again; "
                                "LOCKSTEP_LOCK_TIMEOUT sets how long to wait")
        time.sleep(0.2)
