"""The user's code: finding it, fingerprinting it, importing it.

``lockstep.toml`` names code as ``"module:callable"``, for example
``"pipeline:features"`` for the function ``features`` in the project's
``pipeline.py``. Modules are looked up in the project folder.

The *code fingerprint* covers the whole source of the named module and of
every module of the project folder it imports, directly or not (found by
reading the import statements, without running anything), so a change to a
helper function, or to a helper module, changes it. Modules from outside the
project (installed packages) are covered by the environment fingerprint.

Importing is fresh whenever it matters: a module imported from another
project folder, or whose source changed on disk since it was imported, is
forgotten and imported again, so that two projects with a ``pipeline.py`` in
one process never see each other's code. A module already imported from
this project with the same source is reused, so that classes keep their
identity within one operation. The project's modules are compiled from their
source at each import, never from ``__pycache__``: Python trusts a cached
``.pyc`` whose source has the same size and the same whole-second mtime, so a
file edited within a second of its last import would otherwise run its old
code under its new fingerprint.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.machinery
import importlib.util
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from lockstep.core.errors import CodeError, InternalError, LockstepError
from lockstep.core.fingerprint import fingerprint_bytes, fingerprint_json
from lockstep.core.sections import REF_PATTERN

__all__ = ["CodeIdentity", "REF_PATTERN", "code_identity", "defines", "describe_exception", "load_module",
           "load_object", "parse_ref", "user_location"]

#: The folder of the installed lockstep package.
LOCKSTEP_ROOT = Path(__file__).resolve().parents[1]


#: Modules this process imported from project folders: name -> (project folder, fingerprint of the file).
_FROM_PROJECTS: dict[str, tuple[Path, str]] = {}


def _library_roots() -> tuple[str, ...]:
    paths = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(sorted(str(Path(p).resolve()) for p in paths | {str(LOCKSTEP_ROOT)} if p))


def user_location(exc: BaseException) -> str | None:
    """Where in the user's own code ``exc`` was raised: ``"pipeline.py line 42, in model"``, or None.

    The deepest frame of the traceback whose file is neither lockstep's nor
    an installed package's nor the standard library's.
    """
    roots = _library_roots()
    found = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith("<"):
            resolved = str(Path(filename).resolve())
            if not resolved.startswith(roots):
                found = (Path(filename), tb.tb_lineno, tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    if found is None:
        return None
    path, line, function = found
    try:
        shown = str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(path)
    return f"{shown} line {line}, in {function}"


#: Exception types that, raised by lockstep's own code, mean a bug in lockstep rather than bad input: a
#: ValueError or TypeError from lockstep's code is how it rejects parameters and data, so those stay the user's.
BUG_TYPES: tuple[type[BaseException], ...] = (AttributeError, KeyError, IndexError, NameError, AssertionError,
                                              RecursionError, ZeroDivisionError)


def raised_by_lockstep(exc: BaseException) -> bool:
    """Was ``exc`` raised in lockstep's own package (its traceback's deepest frame is lockstep's)?"""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    if last is None or last.startswith("<"):
        return False
    return Path(last).resolve().is_relative_to(LOCKSTEP_ROOT)


def user_code_failure(error: type[LockstepError], message: str, exc: BaseException, *,
                      hint: str | None = None) -> LockstepError:
    """The error to raise when a call into the user's code (a factory, a fit, a transform) raised ``exc``.

    ``error(message + what was raised and where)`` when the failure is the user's (their code, their
    data, their parameters: exit code 2); an :class:`~lockstep.core.errors.InternalError` (exit code 1)
    when lockstep's own code failed with a bug's exception, so that a lockstep bug inside a fit is not
    reported as the user's fault.
    """
    if isinstance(exc, BUG_TYPES) and raised_by_lockstep(exc):
        return InternalError(f"{message}: a bug in lockstep: {type(exc).__name__}: {exc}",
                             hint="please report it with the traceback (LOCKSTEP_DEBUG=1 prints it)")
    return error(f"{message}: {describe_exception(exc)}", hint=hint)


def describe_exception(exc: BaseException) -> str:
    """``"ValueError: bad input (pipeline.py line 42, in transform)"``: the exception, and where in the user's
    code it was raised when it was."""
    where = user_location(exc)
    return f"{type(exc).__name__}: {exc}" + (f" ({where})" if where else "")


def parse_ref(ref: str) -> tuple[str, str]:
    """``"pkg.module:name"`` to ``("pkg.module", "name")``."""
    if not REF_PATTERN.match(ref):
        raise CodeError(f"{ref!r} is not of the form 'module:callable' (for example 'pipeline:features')")
    module, name = ref.split(":")
    return module, name


def _module_file(project_dir: Path, module: str) -> Path | None:
    base = project_dir.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(path: Path, module: str) -> set[str]:
    """Module names a source file imports (absolute, with relative imports resolved)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise CodeError(f"{path.name} line {exc.lineno}: syntax error: {exc.msg}") from None
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                base_parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(p for p in [*base_parts, node.module or ""] if p)
            else:
                base = node.module or ""
            if base:
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in node.names)
    expanded: set[str] = set()
    for name in names:
        parts = name.split(".")
        expanded.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return expanded


@dataclass(frozen=True)
class CodeIdentity:
    """The files behind a code reference and their fingerprints.

    Attributes
    ----------
    ref : str
        ``"module:callable"``.
    files : dict
        Path relative to the project folder to BLAKE3 of the file's bytes.
    fingerprint : str
        Fingerprint of ``files`` (names and contents).
    """

    ref: str
    files: dict[str, str]
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "files": dict(self.files), "fingerprint": self.fingerprint}


def code_identity(ref: str, project_dir: Path) -> CodeIdentity:
    """Find the module of ``ref`` and the project modules it imports; fingerprint their sources.

    Raises
    ------
    CodeError
        If the module is not a file of the project folder, or has a syntax error.
    """
    module, _ = parse_ref(ref)
    project_dir = project_dir.resolve()
    root = _module_file(project_dir, module)
    if root is None:
        raise CodeError(f"{ref!r}: no module '{module}' in {project_dir} (looked for "
                        f"{module.replace('.', '/')}.py and {module.replace('.', '/')}/__init__.py)",
                        hint="put the code in the project folder, or fix the reference in lockstep.toml")
    seen: dict[str, Path] = {module: root}
    queue = [module]
    while queue:
        current = queue.pop()
        for name in sorted(_imported_names(seen[current], current)):
            if name in seen:
                continue
            path = _module_file(project_dir, name)
            if path is not None:
                seen[name] = path
                queue.append(name)
    files = {path.relative_to(project_dir).as_posix(): fingerprint_bytes(path.read_bytes())
             for path in sorted(set(seen.values()))}
    return CodeIdentity(ref=ref, files=files, fingerprint=fingerprint_json(files))


def forget(name: str) -> None:
    """Stop tracking module ``name`` (it was removed from ``sys.modules`` by someone else)."""
    _FROM_PROJECTS.pop(name, None)


def _unchanged(name: str, project_dir: Path) -> bool:
    recorded = _FROM_PROJECTS.get(name)
    if recorded is None or name not in sys.modules or recorded[0] != project_dir:
        return False
    path = _module_file(project_dir, name)
    return path is not None and fingerprint_bytes(path.read_bytes()) == recorded[1]


def _current(name: str, project_dir: Path) -> bool:
    """Whether ``name`` and every other module imported from ``project_dir`` are unchanged on disk."""
    if not _unchanged(name, project_dir):
        return False
    return all(_unchanged(other, project_dir) for other, (folder, _) in _FROM_PROJECTS.items()
               if folder == project_dir)


def _forget(project_dir: Path, module_name: str) -> None:
    """Drop modules of other project folders, and ``module_name``'s tree, from ``sys.modules``."""
    top = module_name.split(".")[0]
    for name, (folder, _) in list(_FROM_PROJECTS.items()):
        stale = folder != project_dir or not _unchanged(name, project_dir)
        if stale or name == top or name.startswith(top + "."):
            sys.modules.pop(name, None)
            del _FROM_PROJECTS[name]
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        sys.modules.pop(name, None)


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles a module from its source file at every import: no ``.pyc`` is read or written."""

    def get_code(self, fullname: str) -> Any:
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


class _ProjectSource:
    """A meta path finder for the imports made while a project's code loads: its modules come from source.

    Anything else (builtins, installed packages, modules of other folders) is
    left to the finders after it, as are the project's modules that are not
    plain source files.
    """

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name in sys.builtin_module_names or importlib.machinery.FrozenImporter.find_spec(name) is not None:
            return None
        entries = [str(self.project_dir)] if path is None else [p for p in path if self._inside(p)]
        spec = importlib.machinery.PathFinder.find_spec(name, entries) if entries else None
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader) or not spec.origin:
            return None
        return importlib.util.spec_from_file_location(name, spec.origin, loader=_SourceLoader(name, spec.origin),
                                                      submodule_search_locations=spec.submodule_search_locations)

    def _inside(self, entry: str) -> bool:
        return Path(entry).resolve().is_relative_to(self.project_dir)


def load_object(ref: str, project_dir: Path) -> Any:
    """Import ``module`` fresh from ``project_dir`` and return its attribute ``callable``.

    Raises
    ------
    CodeError
        If the module cannot be imported (the message names the file and
        the exception) or has no such attribute.
    """
    module_name, attr = parse_ref(ref)
    project_dir = project_dir.resolve()
    if _module_file(project_dir, module_name) is None:
        code_identity(ref, project_dir)  # raises the detailed "no module" error
    return _attribute(load_module(module_name, project_dir, ref), module_name, attr, ref)


def load_module(module_name: str, project_dir: Path, ref: str | None = None) -> ModuleType:
    """The module ``module_name`` of ``project_dir``, imported fresh from its source (again only when its file,
    or that of another module imported from the folder, changed since).

    Raises
    ------
    CodeError
        If the module cannot be imported; the message names the file and the exception (and ``ref``, the
        reference it was imported for).
    """
    project_dir = project_dir.resolve()
    if _current(module_name, project_dir):
        return sys.modules[module_name]
    _forget(project_dir, module_name)
    before = set(sys.modules)
    finder = _ProjectSource(project_dir)
    sys.path.insert(0, str(project_dir))
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(module_name)
    except CodeError:
        raise
    except SyntaxError as exc:
        where = Path(exc.filename or module_name).name
        raise CodeError(f"{where} line {exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        purpose = f" (for {ref!r})" if ref else ""
        raise CodeError(f"importing '{module_name}'{purpose} failed: {describe_exception(exc)}",
                        hint="run `python -c 'import " + module_name + "'` in the project folder to see the "
                        "traceback") from exc
    finally:
        sys.meta_path.remove(finder)
        sys.path.remove(str(project_dir))
        for name in set(sys.modules) - before:
            file = getattr(sys.modules.get(name), "__file__", None)
            if file and Path(file).resolve().is_relative_to(project_dir):
                _FROM_PROJECTS[name] = (project_dir, fingerprint_bytes(Path(file).read_bytes()))


def defines(ref: str, project_dir: Path) -> bool:
    """Whether ``module:callable`` names a module of the project folder that, read without running it, defines
    ``callable`` at its top level (a function, a class, an assignment or an import, also under ``if`` and
    ``try``). False when that is not certain: the reference is then checked by importing it
    (:func:`load_object`), whose errors name what is wrong."""
    module_name, attr = parse_ref(ref)
    path = _module_file(project_dir.resolve(), module_name)
    if path is None:
        return False
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return False
    return attr in _top_level_names(tree.body)


def _top_level_names(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            names |= _top_level_names([*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", []),
                                       *(s for h in getattr(node, "handlers", []) for s in h.body)])
    return names


def _attribute(module: Any, module_name: str, attr: str, ref: str) -> Any:
    if not hasattr(module, attr):
        public = sorted(n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n)))
        close = difflib.get_close_matches(attr, public, n=1)
        guess = f"did you mean '{module_name}:{close[0]}'? " if close else ""
        raise CodeError(f"{module_name} has no attribute '{attr}' (for {ref!r}); {guess}callables there: "
                        f"{', '.join(public[:12]) or 'none'}")
    return getattr(module, attr)
