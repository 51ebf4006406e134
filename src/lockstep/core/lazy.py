"""Heavy libraries that only some commands use, imported when first used.

``lockstep models list`` must not pay for skops (which imports every
scikit-learn module when it loads) nor ``lockstep features`` for Dask's
``distributed``. A module that needs one of them names it at its top, where
readers and the import contract see it::

    if TYPE_CHECKING:
        import distributed
    else:
        distributed = lazy_module("distributed")

and the library is imported by the first attribute read (``distributed.Client``).
This is the pattern of the scientific Python ecosystem (SPEC 1, ``lazy_loader``),
written as a proxy: the import itself is Python's, under its import lock, so
two threads that first touch the module at once are safe.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

__all__ = ["lazy_module", "loaded"]


class _LazyModule(ModuleType):
    """Stands for the module ``name`` until an attribute is read, then hands over to the real one."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_lockstep_target"] = name

    def __getattr__(self, attribute: str) -> Any:
        module = self.__dict__.get("_lockstep_module")
        if module is None:  # the first use: the import, kept (a use in a loop then costs one getattr)
            module = self.__dict__["_lockstep_module"] = _imported(self.__dict__["_lockstep_target"])
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self.__dict__['_lockstep_target']!r}>"


def lazy_module(name: str) -> Any:
    """The module ``name``: itself when it is imported already, else a stand-in that imports it on first use.

    Parameters
    ----------
    name : str
        A module's full name (``"skops.io"``).

    Returns
    -------
    module
        The module, or a proxy whose attributes are the module's.
    """
    return sys.modules.get(name) or _LazyModule(name)


def loaded(module: Any) -> ModuleType:
    """The real module behind ``module`` (a stand-in from :func:`lazy_module`, or a module), imported now."""
    if isinstance(module, _LazyModule):
        return _imported(module.__dict__["_lockstep_target"])
    assert isinstance(module, ModuleType)
    return module


def _imported(name: str) -> ModuleType:
    """The module ``name``, imported with the cyclic garbage collector paused.

    Importing a stack such as scikit-learn's creates hundreds of thousands of objects and little garbage, and the
    collections those objects set off traverse them again and again: about a tenth of the import's time. With the
    collector paused they are traversed once, by the first collection after the import; training forks its helper
    right after one (:mod:`lockstep.training.train`), so that collection is no longer on the way to it.
    """
    with _collector_paused():  # importlib's own look-up first: a module another thread is importing is waited for
        return importlib.import_module(name)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    if not gc.isenabled():  # paused by someone else: theirs to resume
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
