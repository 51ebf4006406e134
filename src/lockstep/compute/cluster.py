"""A compute session: this process, a local Dask cluster lockstep starts, or a Dask scheduler's address.

With ``backend = "dask"`` the work goes to Dask's workers, which are other
processes (and, with an address, other machines). Two things make their
results the ones this process would compute:

* every worker runs with the thread limits of the work (BLAS and OpenMP
  pools, through threadpoolctl), set by a worker plugin as it starts: a sum
  split over another number of threads can round differently;
* the project's own modules (the feature pipeline, the model factory) are
  sent to every worker, so that the objects that name them unpickle there
  from the same source (``Client.upload_file``), on a remote cluster too.

A scheduler that does not answer is a :class:`ServiceError` naming its
address within :data:`CONNECT_TIMEOUT` seconds.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
import sys
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lockstep.core.environment import put_back
from lockstep.core.errors import ServiceError, UserError
from lockstep.core.lazy import lazy_module
from lockstep.core.sections import ComputeConfig

if TYPE_CHECKING:  # Dask's distributed, imported by the first session that uses it (a local one never does)
    import asyncio

    import dask
    import distributed

    from lockstep.compute import worker_setup
else:
    asyncio = lazy_module("asyncio")
    dask = lazy_module("dask")
    distributed = lazy_module("distributed")
    worker_setup = lazy_module("lockstep.compute.worker_setup")

__all__ = ["CONNECT_TIMEOUT", "Compute", "ProjectCode", "compute_session", "lost_worker", "reach"]

#: Seconds to wait for a scheduler at an address.
CONNECT_TIMEOUT = 5
#: Seconds a scheduler may take to have its first worker.
WORKER_TIMEOUT = 30.0
#: How many times work whose worker was lost is run.
ATTEMPTS = 3

log = logging.getLogger("lockstep.compute")
T = TypeVar("T")


def lost_worker(exc: BaseException) -> bool:
    """Whether ``exc`` says a Dask worker died under the work (its tasks, or data only it held, are gone)."""
    if "distributed" not in sys.modules:  # no Dask session ran in this process: no worker to lose
        return False
    if isinstance(exc, (distributed.client.FutureCancelledError, distributed.scheduler.KilledWorker,
                        asyncio.CancelledError)):
        return True
    text = str(exc)
    return "lose scattered data" in text or "cancelled for reason" in text


@dataclass(frozen=True)
class ProjectCode:
    """The project's modules the work imports: files of the project folder, by module name."""

    files: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def top_level(cls, project_dir: Path, files: Iterable[str]) -> ProjectCode:
        """The modules among ``files`` (paths relative to the project folder) that sit at its top level."""
        return cls({Path(rel).stem: project_dir / rel for rel in files if "/" not in rel and rel.endswith(".py")})


@dataclass
class Compute:
    """Where the work of one command runs.

    Attributes
    ----------
    backend : str
        ``"local"`` or ``"dask"``.
    workers : int
        The Dask workers (1 for the local backend).
    address : str or None
        The scheduler's address, for a cluster lockstep did not start.
    client : distributed.Client or None
        The Dask client, with the dask backend.
    """

    backend: str = "local"
    workers: int = 1
    address: str | None = None
    client: Any = None

    @property
    def distributed(self) -> bool:
        return self.client is not None

    def retrying(self, work: Callable[[], T], what: str) -> T:
        """``work()``, run again (whole) when a worker died under it: the work is deterministic, so the result is
        the one an undisturbed run gives.

        Raises
        ------
        ServiceError
            When workers were lost :data:`ATTEMPTS` times in a row; nothing was written.
        """
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return work()
            except BaseException as exc:
                if not (self.distributed and lost_worker(exc)):
                    raise
                if attempt == ATTEMPTS:
                    raise ServiceError(f"{what}: a Dask worker died under the work {ATTEMPTS} times in a row "
                                       f"({type(exc).__name__}); nothing was written",
                                       hint="check the workers' memory and logs, or use --compute local") from None
                log.warning("%s: a Dask worker died (%s); running it again (%d of %d)", what, type(exc).__name__,
                            attempt + 1, ATTEMPTS)
        raise AssertionError("unreachable")  # pragma: no cover

    def map(self, work: Callable[..., T], items: Iterable[Any], *args: Any, name: str = "lockstep") -> list[T]:
        """``work(item, *args)`` for every item: here one after the other, or all at once on the workers; the
        results in the items' order.

        On the workers, an error is raised once every task has ended: a task that fails does not leave the
        others running (Dask cannot stop a running task), so whatever they wrote is there to be removed."""
        if not self.distributed:
            return [work(item, *args) for item in items]
        futures = [self.client.submit(work, item, *args, key=f"{name}-{uuid.uuid4().hex}-{number}")
                   for number, item in enumerate(items)]
        try:
            distributed.wait(futures)
            return list(self.client.gather(futures))
        except BaseException:
            self.client.cancel(futures)
            raise

    def ordered(self, work: Callable[..., T], items: Iterable[Any], *args: Any, window: int | None = None,
                name: str = "lockstep") -> Iterator[T]:
        """``work(item, *args)`` for each item on the workers, the results in the items' order, with at most
        ``window`` (default: twice the workers) submitted and not yet taken: memory stays bounded whatever the
        number of items. A task whose worker dies is run again by Dask; what is not taken is cancelled."""
        pending: deque[Any] = deque()
        limit = window or 2 * self.workers
        try:
            for number, item in enumerate(items):
                pending.append(self.client.submit(work, item, *args, key=f"{name}-{uuid.uuid4().hex}-{number}"))
                if len(pending) >= limit:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            if pending:
                self.client.cancel(list(pending))

    def record(self) -> dict[str, str]:
        """What is recorded with an artifact (never fingerprinted): the backend and the number of workers."""
        return {"backend": self.backend, "workers": str(self.workers)}


@contextmanager
def compute_session(settings: ComputeConfig, backend: str | None = None, *, threads: int = 1,
                    code: ProjectCode | None = None) -> Iterator[Compute]:
    """The compute of one command: ``backend`` (``--compute``) or ``[compute] backend``.

    Parameters
    ----------
    settings : ComputeConfig
        ``[compute]``.
    backend : str, optional
        Overrides ``settings.backend``.
    threads : int
        The BLAS/OpenMP threads of each task on a worker.
    code : ProjectCode, optional
        The project's modules to send to the workers.

    Raises
    ------
    UserError
        For a backend that is neither ``local`` nor ``dask``.
    ServiceError
        When the scheduler at ``[compute] address`` does not answer.
    """
    chosen = backend or settings.backend
    if chosen not in ("local", "dask"):
        raise UserError(f"--compute {chosen}: there is no such backend", hint="use --compute local or --compute dask")
    if chosen == "local":
        yield Compute()
        return
    for name in ("distributed", "distributed.core", "distributed.worker", "distributed.nanny",
                 "distributed.scheduler", "distributed.comm", "distributed.batched"):
        logging.getLogger(name).setLevel(logging.ERROR)
    cluster = None
    environment = dict(os.environ)
    if settings.address is not None:
        client = _connect(settings.address)
    else:
        cluster = distributed.LocalCluster(n_workers=settings.workers, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", silence_logs=logging.CRITICAL,
                                           dashboard_address=":0")  # a free port: no clash with another cluster
        _put_back(environment)
        client = distributed.Client(cluster)
    try:
        client.register_plugin(worker_setup.WorkerSetup(threads))
        for path in sorted({str(p) for p in (code.files.values() if code else [])}):
            client.upload_file(path, load=False)
        if code and code.files:  # a module of the same name imported for an earlier session is not this one
            client.run(_forget_modules, sorted(code.files))
        workers = len(client.scheduler_info().get("workers", {}))
        yield Compute("dask", workers, settings.address, client)
    finally:
        with contextlib.suppress(Exception):  # a cluster that is going away: nothing to put back
            client.unregister_worker_plugin(worker_setup.WorkerSetup.name)
        client.close()
        if cluster is not None:
            cluster.close()
            _put_back(environment)  # a worker restarted during the session set them again


def _put_back(environment: dict[str, str]) -> None:
    """Put back this process's variables that Dask sets for the workers it spawns (``PYTHONHASHSEED``, the thread
    counts of ``distributed.nanny.pre-spawn-environ``, its parent's id): left set, the next training here would
    record a hash seed and thread counts this process never had, and the processes it starts would inherit them."""
    config = dask.config.get("distributed.nanny", default={}) or {}
    names = {"PYTHONHASHSEED", *(config.get("pre-spawn-environ") or {}), *(config.get("environ") or {}),
             *(name for name in os.environ if name.startswith("__DASK"))}
    put_back({name: environment.get(name) for name in names})


def _forget_modules(names: list[str]) -> None:
    """On a worker: drop the modules ``names`` (and their submodules), so that they are imported again from the
    files just sent. Another project's ``pipeline`` may have been imported there by an earlier session."""
    for name in list(sys.modules):
        if name in names or any(name.startswith(f"{n}.") for n in names):
            del sys.modules[name]
    importlib.invalidate_caches()


def reach(settings: ComputeConfig, backend: str | None = None) -> None:
    """Fail fast, before any work, when the work goes to a scheduler that does not answer (a TCP connection to
    its address; ``--compute`` overrides ``[compute] backend``).

    Raises
    ------
    ServiceError
        Naming the address, within :data:`CONNECT_TIMEOUT` seconds.
    """
    chosen = backend or settings.backend
    if chosen not in ("local", "dask"):
        raise UserError(f"--compute {chosen}: there is no such backend", hint="use --compute local or --compute dask")
    if chosen != "dask" or settings.address is None:
        return
    host, _, port = settings.address.split("://", 1)[-1].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except (OSError, ValueError) as exc:
        raise _unanswered(settings.address, exc) from None


def _unanswered(address: str, exc: BaseException) -> ServiceError:
    return ServiceError(f"the Dask scheduler at {address} does not answer ({type(exc).__name__})",
                        hint="check [compute] address, and that `dask scheduler` runs there; or use --compute local")


def _connect(address: str) -> Any:
    """A client of the scheduler at ``address`` once it has a worker: work sent to a scheduler without any would
    wait for ever, and the record would say it ran on none."""
    try:
        client = distributed.Client(address, timeout=f"{CONNECT_TIMEOUT}s")
    except (OSError, TimeoutError) as exc:
        raise _unanswered(address, exc) from None
    try:
        client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
    except TimeoutError:
        client.close()
        raise ServiceError(f"the Dask scheduler at {address} has no workers (waited {WORKER_TIMEOUT:g} s)",
                           hint=f"start workers with `dask worker {address}`, or use --compute local") from None
    return client
