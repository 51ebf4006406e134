"""How lockstep asks a fitted model for its outputs, the same way on every path.

Training's evaluation, the golden sample, ``lockstep predict``, the HTTP
service, ``parity``, ``verify``, monitoring and the ONNX parity check all
call :func:`model_outputs`, so that they all compute the same thing.

Parallel prediction and bits
----------------------------
Some estimators predict in parallel threads that add their parts into one
shared array in whatever order the threads finish: a random forest or an
extra-trees ensemble with ``n_jobs`` other than 1 sums its trees'
probabilities that way, so the same rows can give different last bits
from call to call. :func:`model_outputs` therefore runs the estimator
under joblib's sequential backend (:func:`serial_prediction`): every
``Parallel`` call inside it runs in the calling thread, in order, which
gives the bits of ``n_jobs=1`` whatever ``n_jobs`` the model was given. The
model itself is not touched: its parameters, learned state and fingerprint
stay those of the registered model.

A forest's parallelism is kept another way: each row's output is the sum of
its trees' outputs in tree order, whatever the other rows are, so the rows
are split into ``n_jobs`` blocks predicted in threads at once (trees release
the GIL), and a forest classifier's labels are taken from the probabilities
just computed, as its own ``predict`` does, instead of computing them twice.
Both give exactly the bits of one ``predict_proba`` call with ``n_jobs=1``.
Histogram gradient boosting, which predicts rows on OpenMP threads, gets the
same treatment with as many blocks as the process allows OpenMP threads
(below): large inputs keep their speed, and the bits are those of one call.

BLAS and OpenMP threads and bits
--------------------------------
A matrix product split over several BLAS threads computes the rows at the
edges of each thread's share with other kernels: the same rows of the same
batch can differ in their last bit with the number of threads, which
follows the machine's cores (the telco model's test split of 150,195 rows
did, with OpenBLAS's 2 threads against 1). scikit-learn's OpenMP code does
the same: k nearest neighbours cut the rows into chunks by the number of
OpenMP threads, and a distance computed in another chunk can differ in its
last bit and pick another neighbour (13 of 84 test predictions of a k-NN
regressor on wages did, by up to 0.53). :func:`serial_prediction` therefore
holds BLAS and OpenMP to one thread while a model predicts, on every path:
the outputs depend on the model, the rows and the batch, never on the
machine's cores, a Dask worker's settings or ``[train] threads``. (Fitting
keeps ``[train] threads``.) The limit is set once for all the threads of a
process that predict at once, and put back when the last one is done.

Classifiers without probabilities
---------------------------------
A classifier that has no ``predict_proba`` (``LinearSVC``,
``RidgeClassifier``, ``SGDClassifier`` with the hinge loss, ...) gives labels
only: the probabilities are ``None`` on every path, and metrics that need
them (ROC AUC, log loss, Brier score) are not defined for it.

Examples
--------
>>> import numpy as np
>>> from sklearn.ensemble import RandomForestClassifier
>>> X = np.arange(40, dtype=float).reshape(20, 2); y = np.arange(20) % 2
>>> forest = RandomForestClassifier(n_estimators=4, n_jobs=2, random_state=0).fit(X, y)
>>> labels, proba = model_outputs(forest, X, "classification")
>>> proba.shape
(20, 2)
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pyarrow as pa
from threadpoolctl import ThreadpoolController

from lockstep.core.lazy import lazy_module

if TYPE_CHECKING:
    import pandas as pd
    import sklearn.ensemble as ensemble
    import sklearn.pipeline as pipeline
else:  # a model to predict with has imported scikit-learn (and pandas) already; code that only reads metrics does not
    ensemble = lazy_module("sklearn.ensemble")
    pipeline = lazy_module("sklearn.pipeline")
    pd = lazy_module("pandas")

__all__ = ["final_estimator", "has_probabilities", "label_array", "model_outputs", "outputs_table", "serial_prediction"]


@functools.cache
def _forests() -> tuple[type, ...]:
    """Estimators whose rows are predicted independently of each other, by summing trees in a fixed order."""
    return (ensemble.RandomForestClassifier, ensemble.RandomForestRegressor, ensemble.ExtraTreesClassifier,
            ensemble.ExtraTreesRegressor)


@functools.cache
def _row_wise() -> tuple[type, ...]:
    """Estimators that predict each row on its own with OpenMP threads: held to one thread, lockstep predicts their
    rows in blocks on threads instead (their prediction loop releases the GIL)."""
    return ensemble.HistGradientBoostingClassifier, ensemble.HistGradientBoostingRegressor


@functools.cache
def _threadpools() -> ThreadpoolController:
    """The BLAS and OpenMP libraries loaded in this process (looked up once: 2 ms each time otherwise, 11 µs this
    way)."""
    return ThreadpoolController()


class _OneThread:
    """BLAS and OpenMP held to one thread while any thread of the process is inside :func:`serial_prediction`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._limit: Any = None

    def enter(self) -> None:
        with self._lock:
            if self._inside == 0:
                self._limit = _threadpools().limit(limits=1)
            self._inside += 1

    def leave(self) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0 and self._limit is not None:
                self._limit.restore_original_limits()
                self._limit = None


_ONE_THREAD = _OneThread()


@contextmanager
def serial_prediction() -> Iterator[None]:
    """Run every joblib ``Parallel`` call inside the block sequentially, in the calling thread, with BLAS and
    OpenMP on one thread (see the module's documentation).

    joblib keeps its setting per thread, so it applies to the calling thread
    only (each service worker thread sets it for itself); the BLAS and OpenMP
    limit is the process's, held while any thread is inside.
    """
    _ONE_THREAD.enter()
    try:
        with joblib.parallel_config(backend="sequential"):
            yield
    finally:
        _ONE_THREAD.leave()


def final_estimator(model: Any) -> Any:
    """The estimator at the end of ``model``, looking through nested Pipelines."""
    while isinstance(model, pipeline.Pipeline):
        model = model.steps[-1][1]
    return model


def has_probabilities(model: Any) -> bool:
    """True when ``model`` (or the estimator at the end of it) gives class probabilities."""
    return hasattr(final_estimator(model), "predict_proba")


def _transform_steps(model: Any, X: Any) -> tuple[Any, Any]:
    """Run every step but the last estimator once; return the estimator and its input."""
    while isinstance(model, pipeline.Pipeline):
        if len(model.steps) > 1:
            X = model[:-1].transform(X)
        model = model.steps[-1][1]
    return model, X


#: Below this many rows a forest is predicted in one block (threads cost more than they save).
ROW_BLOCK_MIN = 20_000


def _forest_threads(estimator: Any, rows: int) -> int:
    """How many row blocks to predict a forest in at once: its effective ``n_jobs``, for large inputs."""
    if not isinstance(estimator, _forests()) or getattr(estimator, "n_outputs_", 1) != 1:
        return 1
    n_jobs = getattr(estimator, "n_jobs", None) or 1  # effective_n_jobs answers 1 under the sequential backend
    return _block_threads(rows, n_jobs if n_jobs > 0 else max(1, joblib.cpu_count() + 1 + n_jobs))


def _openmp_threads() -> int:
    """The OpenMP threads this process is set to use (1 when no OpenMP library is loaded)."""
    return max((c.num_threads for c in _threadpools().lib_controllers if c.user_api == "openmp"), default=1)


def _block_threads(rows: int, threads: int) -> int:
    """How many row blocks to predict at once: up to ``threads``, for large inputs."""
    return 1 if rows < ROW_BLOCK_MIN else max(1, min(threads, rows // (ROW_BLOCK_MIN // 2)))


def _in_blocks(work: Callable[[Any], Any], X: Any, threads: int) -> list[Any]:
    """``work`` on ``threads`` consecutive blocks of the rows of ``X`` at once (in threads when more than one), each
    under :func:`serial_prediction`; the results in row order."""
    def block(bounds: tuple[int, int]) -> Any:
        with serial_prediction():  # each thread sets the backend for itself
            return work(X.iloc[bounds[0]:bounds[1]] if hasattr(X, "iloc") else X[bounds[0]:bounds[1]])

    edges = np.linspace(0, X.shape[0], threads + 1).astype(int)
    if threads == 1:
        return [block((0, X.shape[0]))]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(block, zip(edges[:-1], edges[1:])))


def _forest_outputs(estimator: Any, X: Any, task: str, threads: int) -> tuple[Any, Any]:
    """A forest's outputs, rows in ``threads`` blocks at once, each block's trees summed in tree order."""
    values = np.concatenate(_in_blocks(estimator.predict_proba if task == "classification" else estimator.predict,
                                       X, threads))
    if task != "classification":
        return values, None
    return estimator.classes_.take(np.argmax(values, axis=1), axis=0), values


def _row_block_outputs(estimator: Any, X: Any, task: str, threads: int) -> tuple[Any, Any]:
    """``predict`` and ``predict_proba`` on ``threads`` blocks of rows at once: the outputs of one call each, since
    every row is predicted on its own."""
    def both(rows: Any) -> tuple[Any, Any]:
        proba = estimator.predict_proba(rows) if task == "classification" and hasattr(
            estimator, "predict_proba") else None
        return estimator.predict(rows), proba

    parts = _in_blocks(both, X, threads)
    labels = np.concatenate([labels for labels, _ in parts])
    return labels, None if parts[0][1] is None else np.concatenate([proba for _, proba in parts])


def model_outputs(model: Any, X: Any, task: str) -> tuple[Any, Any]:
    """Labels (or values) and, for a classifier that has them, class probabilities.

    Every transform of the (nested) pipeline runs once, then the final
    estimator's ``predict`` and ``predict_proba`` run on the result, which is
    what ``Pipeline.predict`` and ``Pipeline.predict_proba`` do internally,
    for half the work. All of it runs under :func:`serial_prediction`.

    Parameters
    ----------
    model : estimator or Pipeline
        A fitted model.
    X : DataFrame or array-like
        Its input.
    task : {"classification", "regression"}

    Returns
    -------
    labels : ndarray
        Predicted labels (classification) or values (regression).
    proba : ndarray of shape (n_rows, n_classes) or None
        Class probabilities in the order of ``classes_``; None for a
        regressor and for a classifier without ``predict_proba``.
    """
    # what the process allows a row-wise estimator, read before serial_prediction holds OpenMP to one
    openmp = _openmp_threads() if isinstance(final_estimator(model), _row_wise()) else 1
    with serial_prediction():
        estimator, features = _transform_steps(model, X)
        if isinstance(estimator, _forests()) and getattr(estimator, "n_outputs_", 1) == 1:
            return _forest_outputs(estimator, features, task, _forest_threads(estimator, features.shape[0]))
        threads = _block_threads(features.shape[0], openmp)
        if threads > 1:
            return _row_block_outputs(estimator, features, task, threads)
        labels = estimator.predict(features)
        proba = estimator.predict_proba(features) if task == "classification" and hasattr(
            estimator, "predict_proba") else None
    return labels, proba


def outputs_table(labels: Any, proba: Any, classes: list[Any] | None, task: str) -> pa.Table:
    """Outputs as a table: ``prediction`` (labels, or float64 values), then ``proba_<class>`` when there are
    probabilities. This is the layout of ``lockstep predict``'s output and of the golden sample."""
    columns: dict[str, Any] = {}
    if task == "classification":
        columns["prediction"] = label_array(labels)
        if proba is not None:
            for i, cls in enumerate(classes or []):
                columns[f"proba_{cls}"] = pa.array(proba[:, i], pa.float64())
    else:
        columns["prediction"] = pa.array(np.asarray(labels, dtype=np.float64))
    return pa.table(columns)


#: NumPy kinds of labels converted as a whole array: the type each label's ``.item()`` has in Arrow.
_LABEL_TYPES = {"b": np.bool_, "i": np.int64, "f": np.float64}


def label_array(labels: Any) -> pa.Array:
    """Predicted labels as Arrow values: each label as the Python value it is (a NumPy scalar's ``.item()``), in
    the type Arrow infers for those values. Arrays of text, integers (but unsigned 64-bit ones), floats and
    booleans are converted whole, the same values and type as one label at a time (a loop over a million labels
    took a tenth of a second)."""
    array = np.asarray(labels)
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "U" or (kind == "O" and pd.api.types.infer_dtype(array, skipna=False) == "string"):
        return pa.array(array, type=pa.string())
    if (kind in _LABEL_TYPES and size <= 8) or (kind == "u" and size < 8):
        return pa.array(array.astype(_LABEL_TYPES.get(kind, np.int64), copy=False))
    return pa.array([v.item() if hasattr(v, "item") else v for v in array])
