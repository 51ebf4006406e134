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

import importlib
import sys
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
            module = self.__dict__["_lockstep_module"] = importlib.import_module(self.__dict__["_lockstep_target"])
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
        return importlib.import_module(module.__dict__["_lockstep_target"])
    assert isinstance(module, ModuleType)
    return module
