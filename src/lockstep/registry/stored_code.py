"""The code stored with a registered model (its ``code/`` folder), imported only as it was recorded.

A registered model's classes come from the project's modules, copied into
the model's ``code/`` folder with their digests recorded at registration
(the tag ``lockstep.code.files``). Loading the model must run that code and
nothing else. :class:`StoredCode` therefore

* refuses the folder when a recorded file is missing or changed, when it
  holds a file that was not recorded (a ``numpy.py`` or ``lockstep.py``
  dropped there would otherwise run on every load), or when a recorded
  module's name would shadow the standard library or an installed package;
* imports the recorded modules from the bytes it checked, through an import
  hook of its own: the folder is never put on ``sys.path``, no other module
  is evicted, and no bytecode cache (``__pycache__``) is read.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import site
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from lockstep.core import usercode
from lockstep.core.errors import IntegrityError, UserError
from lockstep.core.fingerprint import fingerprint_bytes

__all__ = ["StoredCode", "module_name"]

log = logging.getLogger("lockstep.registry")


def module_name(relative: str) -> tuple[str, bool]:
    """``pkg/sub.py`` to ``("pkg.sub", False)``, ``pkg/__init__.py`` to ``("pkg", True)``."""
    parts = relative.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


@functools.cache
def _installed_paths() -> tuple[str, ...]:
    """Where installed code lives: the standard library, the site-packages folders, and the folders their
    ``.pth`` files add (editable installs). Not the current folder, nor a script's: a project's own modules
    found there are not installed ones."""
    sites = [*site.getsitepackages(), site.getusersitepackages()]
    paths = [*(sysconfig.get_path(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")), *sites]
    for folder in map(Path, sites):
        for pth in sorted(folder.glob("*.pth")) if folder.is_dir() else []:
            for line in pth.read_text(encoding="utf-8", errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith(("#", "import ", "import\t")) and (folder / line).is_dir():
                    paths.append(str((folder / line).resolve()))
    return tuple(dict.fromkeys(p for p in paths if p and Path(p).is_dir()))


@functools.lru_cache(maxsize=256)
def _installed(top: str) -> bool:
    """Whether ``top`` names a module of the standard library or of an installed distribution (found where
    installed code lives, without importing it): reading every distribution's metadata took 0.1-0.6 s."""
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    try:
        return importlib.machinery.PathFinder.find_spec(top, list(_installed_paths())) is not None
    except (ImportError, OSError, ValueError) as exc:
        log.warning("could not look for an installed module '%s' (%s: %s)", top, type(exc).__name__, exc)
        return False


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the recorded modules from their checked source, and nothing else."""

    def __init__(self, sources: dict[str, tuple[Path, bytes, bool]]) -> None:
        self.sources = sources

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        found = self.sources.get(fullname)
        if found is None:
            return None
        origin, _source, package = found
        spec = importlib.machinery.ModuleSpec(fullname, self, origin=str(origin), is_package=package)
        spec.has_location = True
        if package:
            spec.submodule_search_locations = []  # only the recorded submodules, served by this finder
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        origin, source, _package = self.sources[module.__name__]
        module.__file__ = str(origin)
        exec(compile(source, str(origin), "exec", dont_inherit=True), module.__dict__)  # noqa: S102 - checked code


class StoredCode:
    """A model's ``code/`` folder and the files recorded for it.

    Parameters
    ----------
    folder : Path
        The ``code/`` folder.
    recorded : dict
        Path relative to the folder (``pipeline.py``) to its recorded fingerprint.
    label : str
        The model, for messages (``name/version``).
    """

    def __init__(self, folder: Path, recorded: dict[str, str], label: str) -> None:
        self.folder = Path(folder)
        self.recorded = dict(recorded)
        self.label = label

    def read(self, relative: str) -> bytes | None:
        """The stored bytes of the recorded file ``relative`` as they are now (None when it is missing)."""
        path = self.folder / relative
        return path.read_bytes() if relative in self.recorded and path.is_file() else None

    @property
    def root(self) -> Path:
        """The folder the recorded modules import from while :meth:`importable` is active."""
        return self.folder

    def modules(self) -> dict[str, str]:
        """Module name to its recorded file."""
        return {module_name(relative)[0]: relative for relative in self.recorded}

    def check(self) -> dict[str, bytes]:
        """The recorded files' bytes, after checking the folder holds exactly them, unchanged.

        Raises
        ------
        UserError
            Naming the file at fault: missing, changed, not recorded, or a
            module that would shadow an installed package.
        """
        hint = "the model's files in the store were modified; retrain or restore them"
        contents: dict[str, bytes] = {}
        for relative, digest in sorted(self.recorded.items()):
            path = self.folder / relative
            data = path.read_bytes() if path.is_file() else None
            if data is None or fingerprint_bytes(data) != digest:
                raise IntegrityError(f"{self.label}: the code stored with the model ({relative}) is not the code it "
                                     "was trained with; refusing to load it", hint=hint)
            contents[relative] = data
        if self.folder.is_dir():
            for path in sorted(self.folder.rglob("*")):
                relative = path.relative_to(self.folder).as_posix()
                if path.is_file() and "__pycache__" not in path.parts and relative not in self.recorded:
                    raise IntegrityError(f"{self.label}: the model's code folder holds {path.name} ({path}), which "
                                         "was not recorded at registration; refusing to load the model, which would "
                                         "run it",
                                         hint="remove the file (only the recorded modules belong there), or retrain")
        for name in self.modules():
            top = name.split(".")[0]
            if _installed(top):
                raise UserError(f"{self.label}: the model's code module '{name}' would shadow the installed or "
                                f"standard module '{top}'; refusing to load it",
                                hint="rename the project's module and retrain")
        return contents

    @contextmanager
    def importable(self) -> Iterator[None]:
        """Within the block, the recorded modules import from the checked bytes (and only they do).

        Modules of the same names imported earlier (another model's
        ``pipeline``) are replaced, so that the model runs the code it was
        trained with.
        """
        contents = self.check()
        sources = {}
        for relative, data in contents.items():
            name, package = module_name(relative)
            sources[name] = (self.folder / relative, data, package)
        for name in list(sys.modules):
            if name in sources or any(name.startswith(f"{n}.") for n in sources):
                del sys.modules[name]
                usercode.forget(name)
        finder = _Finder(sources)
        sys.meta_path.insert(0, finder)
        try:
            yield
        finally:
            sys.meta_path.remove(finder)
