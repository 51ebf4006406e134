"""Fingerprints of fitted models: their learned state, not their pickle bytes.

:func:`model_fingerprint` walks a fitted estimator or pipeline and hashes its
class, parameters and every learned attribute by value, so that the same
model has the same fingerprint in any process, and a model whose file was
changed, swapped or loaded with other code does not.
"""

from __future__ import annotations

import struct
from typing import Any

import blake3
import numpy as np
import scipy.sparse
from numpy.lib import recfunctions

from lockstep.core.fingerprint import fingerprint_table

__all__ = ["model_fingerprint"]

_U64 = struct.Struct("<Q")

_MODEL_HEADER = b"lockstep.model.v1\n"


def model_fingerprint(model: Any) -> str:
    """Fingerprint the learned state of a fitted model, not its pickle bytes.

    The model is walked recursively: for an estimator, its class, its
    parameters (``get_params(deep=False)``) and every instance attribute
    (fitted attributes ending in ``_`` and private learned state such as a
    gradient-boosting model's trees); arrays are hashed by value (dtype,
    shape, bytes); containers element by element, dictionaries in key order;
    functions and classes by module and qualified name; other objects by
    their class and the state they pickle (``__getstate__``). The result is
    the same in any process that has the same model, and differs when any
    parameter or learned number differs.

    Parameters
    ----------
    model : object
        A fitted estimator or Pipeline (any Python object works).

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    hasher = blake3.blake3(_MODEL_HEADER)
    _feed(hasher, model, set())
    return hasher.hexdigest()


def _tag(hasher: Any, tag: bytes, payload: bytes = b"") -> None:
    hasher.update(tag + _U64.pack(len(payload)) + payload)


def _feed(hasher: Any, obj: Any, active: set[int]) -> None:  # noqa: C901 - one dispatch on types
    if obj is None:
        _tag(hasher, b"N")
    elif isinstance(obj, bool):
        _tag(hasher, b"B", b"\x01" if obj else b"\x00")
    elif isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
        _tag(hasher, b"I", str(int(obj)).encode())
    elif isinstance(obj, (float, np.floating)):
        _tag(hasher, b"F", struct.pack("<d", float(obj)))
    elif isinstance(obj, np.bool_):
        _tag(hasher, b"B", b"\x01" if bool(obj) else b"\x00")
    elif isinstance(obj, str):
        _tag(hasher, b"S", obj.encode("utf-8"))
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _tag(hasher, b"Y", bytes(obj))
    elif isinstance(obj, complex):
        _tag(hasher, b"C", struct.pack("<dd", obj.real, obj.imag))
    elif isinstance(obj, np.ndarray):
        _feed_array(hasher, obj, active)
    elif isinstance(obj, type):
        _tag(hasher, b"K", f"{obj.__module__}.{obj.__qualname__}".encode())
    elif callable(obj) and hasattr(obj, "__qualname__") and not hasattr(obj, "get_params"):
        _tag(hasher, b"U", f"{getattr(obj, '__module__', '')}.{obj.__qualname__}".encode())
    else:
        key = id(obj)
        if key in active:
            _tag(hasher, b"R", type(obj).__qualname__.encode())  # a cycle: name it, do not recurse
            return
        active.add(key)
        try:
            _feed_container(hasher, obj, active)
        finally:
            active.discard(key)


def _feed_array(hasher: Any, array: Any, active: set[int]) -> None:
    if array.dtype.names is not None:
        # A structured array (a tree's nodes) may have padding between or after its fields, and padding bytes
        # are not initialized: a fitted tree and its deserialized copy differ there. Hash the packed layout
        # (the same fields in the same order, no padding); a packed dtype is unchanged by this.
        array = _packed(array)
    header = f"{array.dtype.str}|{array.shape}".encode()
    if array.dtype.hasobject:
        _tag(hasher, b"O", header)
        for item in array.ravel(order="C"):
            _feed(hasher, item, active)
        return
    data = np.ascontiguousarray(array)
    if data.dtype.byteorder == ">":
        data = data.astype(data.dtype.newbyteorder("<"))
    _tag(hasher, b"A", header)
    hasher.update(data.data.cast("B") if data.size else b"")


def _packed(array: Any) -> Any:
    """``array`` with its structured dtype repacked: fields at consecutive offsets, nested fields too."""
    packed = recfunctions.repack_fields(np.ascontiguousarray(array), recurse=True)
    return packed


def _feed_container(hasher: Any, obj: Any, active: set[int]) -> None:
    if isinstance(obj, (list, tuple)):
        _tag(hasher, b"L" if isinstance(obj, list) else b"T", _U64.pack(len(obj)))
        for item in obj:
            _feed(hasher, item, active)
    elif isinstance(obj, dict):
        items = sorted(obj.items(), key=lambda kv: repr(kv[0]))
        _tag(hasher, b"D", _U64.pack(len(items)))
        for key, value in items:
            _feed(hasher, key, active)
            _feed(hasher, value, active)
    elif isinstance(obj, (set, frozenset)):
        items = sorted(obj, key=repr)
        _tag(hasher, b"Z", _U64.pack(len(items)))
        for item in items:
            _feed(hasher, item, active)
    elif isinstance(obj, np.random.RandomState):
        _tag(hasher, b"r")
        _feed(hasher, obj.get_state(legacy=False), active)
    elif isinstance(obj, np.random.Generator):
        _tag(hasher, b"g")
        _feed(hasher, obj.bit_generator.state, active)
    elif hasattr(obj, "get_params") and hasattr(obj, "__dict__"):
        _tag(hasher, b"E", f"{type(obj).__module__}.{type(obj).__qualname__}".encode())
        _feed(hasher, {k: v for k, v in obj.get_params(deep=False).items()}, active)
        _feed(hasher, {k: v for k, v in vars(obj).items() if not k.startswith("__")}, active)
    elif _is_sparse(obj):
        # Sparse matrices cache flags (sorted indices, canonical format) as attributes once an operation
        # checked them, so their attributes depend on their history: hash the canonical CSR form instead.
        canonical = obj.tocsr(copy=True)
        canonical.sum_duplicates()
        canonical.sort_indices()
        _tag(hasher, b"Q", f"{canonical.dtype.str}|{canonical.shape}".encode())
        for part in (canonical.indptr.astype(np.int64), canonical.indices.astype(np.int64), canonical.data):
            _feed_array(hasher, part, active)
    elif _is_dataframe_like(obj):
        _tag(hasher, b"P", fingerprint_table(obj if not hasattr(obj, "to_frame") else obj.to_frame()).encode())
    else:
        _tag(hasher, b"X", f"{type(obj).__module__}.{type(obj).__qualname__}".encode())
        state: Any = obj.__getstate__() if hasattr(obj, "__getstate__") else None
        state = _without_query_counters(obj, state)
        if state is None and hasattr(obj, "__dict__"):
            state = vars(obj)
        if state is None and hasattr(obj, "__reduce_ex__"):
            reduced = obj.__reduce_ex__(4)
            state = reduced[1:3] if isinstance(reduced, tuple) else repr(reduced)
        _feed(hasher, state, active)


def _without_query_counters(obj: Any, state: Any) -> Any:
    """A neighbors tree's state without the counters its queries increment (they are not learned state).

    scikit-learn's ``KDTree`` and ``BallTree`` pickle the number of trims,
    leaves, splits and distance calls of the queries run so far: predicting
    with a nearest-neighbors model changes them.
    """
    stats, calls = getattr(obj, "get_tree_stats", None), getattr(obj, "get_n_calls", None)
    if stats is None or calls is None or not isinstance(state, tuple):
        return state
    counters = (*stats(), calls())
    for start in reversed(range(len(state) - len(counters) + 1)):  # they sit near the end
        window = state[start:start + len(counters)]
        if all(isinstance(v, int) for v in window) and tuple(window) == counters:
            return state[:start] + (0,) * len(counters) + state[start + len(counters):]
    return state


def _is_sparse(obj: Any) -> bool:
    if not type(obj).__module__.startswith("scipy.sparse"):
        return False
    return bool(scipy.sparse.issparse(obj))


def _is_dataframe_like(obj: Any) -> bool:
    module = type(obj).__module__
    return module.startswith("pandas.") and type(obj).__name__ in ("DataFrame", "Series")
