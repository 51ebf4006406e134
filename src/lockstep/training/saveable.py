"""What a registered model cannot hold: a function or class its module does not hold under its name.

skops saves a function, or an object's class, by module and qualified name, and loading imports it
back. A lambda, a function defined inside another (a closure) or a class defined in a function has
no such name: the model would be saved and could not be loaded. MLflow's ``log_model`` finds out
after the fit, with a message about serialization formats. :func:`unreachable_parts` finds them
among the model's parameters before anything is logged, named by the parameter that holds them.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Iterator
from typing import Any

__all__ = ["unreachable_parts"]

#: How deep containers (lists, tuples, dicts, partials) are looked into for functions.
_DEPTH = 4


def unreachable_parts(model: Any) -> list[tuple[str, str]]:
    """``(parameter, description)`` of every lambda, local function or local class the model holds.

    Parameters
    ----------
    model : estimator
        A scikit-learn estimator or pipeline; its parameters are read with ``get_params(deep=True)``.

    Returns
    -------
    list of tuple
        Empty when skops can load back every function and class among the parameters.
    """
    try:
        params = model.get_params(deep=True)
    except Exception:  # noqa: BLE001 - an estimator that cannot list its parameters: nothing to look into
        params = {}
    found: dict[int, tuple[str, str]] = {}
    named = [("the model", model), *params.items()]
    # a parameter's own value first: a step is named by its own parameter, not by the list of steps holding it
    for name, item in [*named, *((n, i) for n, v in named for i in _contents(v, _DEPTH) if i is not v)]:
        what = _unreachable(item)
        if what is not None and id(item) not in found:
            found[id(item)] = (name, what)
    return list(found.values())


def _contents(value: Any, depth: int) -> Iterator[Any]:
    """``value`` and what its containers hold, ``depth`` levels down."""
    yield value
    if depth == 0:
        return
    if isinstance(value, functools.partial):
        items: list[Any] = [value.func, *value.args, *value.keywords.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    elif isinstance(value, dict):
        items = list(value.values())
    else:
        return
    for item in items:
        yield from _contents(item, depth - 1)


def _unreachable(value: Any) -> str | None:
    """How to describe ``value`` when skops could not import it back by name, else None."""
    if isinstance(value, (types.FunctionType, type)):
        kind, holder = ("a class" if isinstance(value, type) else "a function"), value
    elif isinstance(value, types.MethodType):
        return _unreachable(value.__func__)
    elif hasattr(value, "get_params"):  # an estimator is saved by its class
        kind, holder = "an estimator of a class", type(value)
    else:
        return None
    qualname = getattr(holder, "__qualname__", "")
    where = f"{getattr(holder, '__module__', '?')}.{qualname}"
    if "<lambda>" in qualname:
        return f"a lambda ({where})"
    if "<locals>" in qualname:
        return f"{kind} defined inside a function ({where})"
    return None
