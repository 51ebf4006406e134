"""The determinism guard: everything random is seeded, threads are fixed, and it is all recorded.

Within :func:`deterministic`:

* Python's :mod:`random` and NumPy's global generator are seeded with the
  run's seed (for code that relies on them even though it should not);
* every ``random_state`` parameter of the pipeline and of the search,
  however deeply nested, is set to the seed (:func:`seed_estimator`);
* BLAS and OpenMP thread pools are limited to ``threads`` with
  threadpoolctl, for the whole fit;
* what was done is returned as a record: seeds, threads, the thread pools
  seen, ``PYTHONHASHSEED``.

Cross-validation splitters are seeded by :mod:`lockstep.training.search`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from lockstep.core.environment import threadpool_summary

__all__ = ["deterministic", "seed_estimator", "seeded_parameters"]


def seeded_parameters(estimator: Any) -> list[str]:
    """Names of every ``random_state`` parameter of ``estimator`` (nested with ``__``)."""
    return sorted(name for name in estimator.get_params(deep=True)
                  if name == "random_state" or name.endswith("__random_state"))


def seed_estimator(estimator: Any, seed: int) -> list[str]:
    """Set every ``random_state`` parameter, nested or not, to ``seed``; return their names."""
    names = seeded_parameters(estimator)
    if names:
        estimator.set_params(**dict.fromkeys(names, int(seed)))
    return names


@contextmanager
def deterministic(seed: int, threads: int) -> Iterator[dict[str, Any]]:
    """Seed the global generators and limit BLAS/OpenMP threads; yield a record of the settings."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    record: dict[str, Any] = {
        "seed": int(seed),
        "threads": int(threads),
        "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
    }
    with threadpool_limits(limits=threads):
        record["threadpools"] = threadpool_summary(("user_api", "internal_api", "version", "num_threads"))
        yield record
