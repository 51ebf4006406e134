"""The worker plugin of a Dask session: how lockstep's work runs on each worker (a module of its own, so that
a command that computes here never imports Dask)."""

from __future__ import annotations

from typing import Any

import distributed
import joblib
from joblib._dask import DaskDistributedBackend
from joblib._parallel_backends import SequentialBackend
from threadpoolctl import threadpool_limits

__all__ = ["WorkerSetup"]


class WorkerSetup(distributed.WorkerPlugin):
    """How lockstep's work runs on a worker, for as long as the session lasts.

    * BLAS and OpenMP pools limited to the work's threads.
    * joblib calls made *inside* a task run in sequence, in the task. joblib's
      Dask backend runs every task under ``parallel_config(backend="dask")``,
      so the joblib calls a fit makes itself (a ``ColumnTransformer`` fitting
      its parts) became Dask tasks too: a search of 200 fits of the example's
      pipeline made 1,000 tasks, fits waiting on their parts, and took 2.3
      times as long as two local processes. The outputs are the same (the
      parts are put together in order either way). The worker's own ``dask``
      backend is put back when the session ends.
    """

    name = "lockstep-worker-setup"

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._saved: Any = None

    def setup(self, worker: Any) -> None:
        threadpool_limits(self.threads)
        # joblib registers its Dask backend on first use: the one to put back is that, if nothing else is there
        self._saved = joblib.parallel.BACKENDS.get("dask", DaskDistributedBackend)
        joblib.register_parallel_backend("dask", SequentialBackend)

    def teardown(self, worker: Any) -> None:
        if self._saved is not None:
            joblib.register_parallel_backend("dask", self._saved)
