"""Factorizing a column of Python objects by identity first, then by value.

A text column that a pipeline produced by mapping values (lockstep's text
transformers, a dictionary look-up, ``np.where`` over a few labels) or that
:func:`~lockstep.core.frames.raw_frame` built from an Arrow dictionary holds a
few string objects, each referenced by many rows. ``pd.factorize`` hashes and
compares every row's string; here the rows are first factorized by the
objects' addresses (integers, hashed in C without calling into Python), and
only the distinct objects are then factorized by value. The result is
``pd.factorize``'s, code for code: the same first-appearance order, missing
values (``None``, NaN) as -1.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pandas as pd

__all__ = ["factorize_objects"]

#: Above this many distinct objects, the rows are mostly distinct strings: the second pass would redo the first's
#: work, so the plain ``pd.factorize`` is used (the identity pass then costs a few milliseconds per million rows).
MAX_DISTINCT_OBJECTS = 4096


def factorize_objects(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(values, use_na_sentinel=True)`` for a one-dimensional object array, faster when its rows
    share a few objects.

    Parameters
    ----------
    values : ndarray of object, one dimension

    Returns
    -------
    codes : ndarray of intp
        For each row, the position of its value in ``uniques``; -1 where it is missing.
    uniques : ndarray of object
        The distinct values other than missing ones, in the order they first appear.

    Examples
    --------
    >>> import numpy as np
    >>> codes, uniques = factorize_objects(np.array(["b", None, "a", "b"], dtype=object))
    >>> codes.tolist(), uniques.tolist()
    ([0, -1, 1, 0], ['b', 'a'])
    """
    if values.dtype != object or values.ndim != 1 or len(values) == 0:
        return _by_value(values)
    values = np.ascontiguousarray(values)
    by_object, addresses = pd.factorize(_addresses(values))
    if len(addresses) > MAX_DISTINCT_OBJECTS:
        return _by_value(values)
    # Codes are given in order of first appearance, so the running maximum rises exactly where each object first
    # appears: the objects are taken from ``values`` there (never dereferenced from their addresses).
    rises = np.flatnonzero(np.diff(np.maximum.accumulate(by_object))) + 1
    by_value, uniques = _by_value(values[np.concatenate(([0], rises))])
    return by_value[by_object], uniques


def _by_value(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize`` of ``values``, missing values as -1, its results as arrays."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes), np.asarray(uniques)


def _addresses(values: np.ndarray) -> np.ndarray:
    """The addresses of the objects ``values`` refers to, copied out of its buffer of pointers."""
    pointers = (ctypes.c_size_t * len(values)).from_address(values.ctypes.data)
    return np.frombuffer(memoryview(pointers), dtype=np.uintp).astype(np.uint64)
