"""Objects sent to Dask's workers by value, with the project code they were made from.

A model loaded from the registry runs classes and functions of its stored
code (the project's ``pipeline.py`` as it was at training), which no worker
can import: a remote worker has no project folder, and a local one may have
a newer one. :func:`ship` pickles the object with those modules' code inside
(cloudpickle's pickling by value), once; :func:`received` unpickles it once
per worker process and keeps it for the tasks that follow.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cloudpickle

from lockstep.core.fingerprint import fingerprint_bytes

__all__ = ["Shipped", "received", "ship"]


@dataclass(frozen=True)
class Shipped:
    """A pickled object: ``key`` is the fingerprint of its bytes."""

    key: str
    payload: bytes


def ship(obj: Any, modules: Iterable[str]) -> Shipped:
    """``obj`` pickled with the code of ``modules`` (names of imported modules; others are skipped) by value."""
    registered = [sys.modules[name] for name in sorted(set(modules)) if name in sys.modules]
    for module in registered:
        cloudpickle.register_pickle_by_value(module)
    try:
        payload = cloudpickle.dumps(obj)
    finally:
        for module in registered:
            cloudpickle.unregister_pickle_by_value(module)
    return Shipped(fingerprint_bytes(payload), payload)


_received: dict[str, Any] = {}
_lock = threading.Lock()


def received(shipped: Shipped) -> Any:
    """The object ``shipped`` holds, unpickled once per process (the last one received is kept)."""
    with _lock:
        if shipped.key not in _received:
            _received.clear()
            _received[shipped.key] = cloudpickle.loads(shipped.payload)
        return _received[shipped.key]
