"""The structure rules of docs/architecture.md, checked on the source: layers, imports, function size, typing."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lockstep"

#: Where imports may be deferred: the CLI (a fast ``--help``) and the package root (a fast ``import lockstep``).
LAZY_ALLOWED = ("cli/", "__init__.py", "__main__.py")

#: The most lines a function may have without a reason written next to it (``# long: why``).
MAX_LINES = 60


def _modules(package: Path) -> list[Path]:
    return sorted(package.rglob("*.py"))


def _functions(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter on the package under ``root/src``, with the contract of ``root/pyproject.toml``."""
    code = ("import sys; sys.path.insert(0, 'src'); from importlinter.cli import lint_imports_command as c; "
            "sys.exit(c.main(standalone_mode=False))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=300)


def hidden_imports(package: Path) -> list[str]:
    """Imports inside functions, outside the CLI and the package root."""
    hidden = []
    for path in _modules(package):
        relative = path.relative_to(package).as_posix()
        if relative.startswith(LAZY_ALLOWED[0]) or relative in LAZY_ALLOWED[1:]:
            continue
        for function in _functions(ast.parse(path.read_text())):
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    hidden.append(f"{relative}:{node.lineno} in {function.name}()")
    return hidden


def long_functions(package: Path) -> list[str]:
    """Functions over ``MAX_LINES`` lines without ``# long: <why>`` on or just above their ``def``."""
    long = []
    for path in _modules(package):
        lines = path.read_text().splitlines()
        for function in _functions(ast.parse("\n".join(lines))):
            first = min([d.lineno for d in function.decorator_list] + [function.lineno])
            size = (function.end_lineno or first) - first + 1
            reason = any(re.search(r"#\s*long:\s*\S", lines[i - 1]) for i in (first - 1, first, function.lineno)
                         if 0 < i <= len(lines))
            if size > MAX_LINES and not reason:
                long.append(f"{path.relative_to(package)}:{function.lineno} {function.name}() has {size} lines")
    return long



def test_the_layers_contract_is_kept() -> None:
    """import-linter's contract (pyproject.toml): no layer imports one above it, and no two siblings each other."""
    done = _lint_imports(PACKAGE.parents[1])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def test_imports_are_at_the_top_of_each_module() -> None:
    """A module's dependencies can be read from its first lines (outside the CLI and the package root)."""
    hidden = hidden_imports(PACKAGE)
    assert not hidden, "imports inside functions:\n" + "\n".join(hidden)


def test_functions_fit_on_a_screen() -> None:
    """No function over 60 lines without a reason written next to it."""
    long = long_functions(PACKAGE)
    assert not long, "split these, or write why they are long (# long: ...):\n" + "\n".join(long)


def test_the_package_is_typed() -> None:
    """``py.typed`` ships with the package, so that users' type checkers read lockstep's annotations."""
    assert (PACKAGE / "py.typed").is_file()


def test_each_rule_catches_its_violation(tmp_path: Path) -> None:
    """A copy of the package with an upward import, a hidden import and a long function fails each rule."""
    shutil.copytree(PACKAGE, tmp_path / "src" / "lockstep", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PACKAGE.parents[1] / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "lockstep" / "core" / "compare.py"
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    target.write_text(target.read_text() + "\nimport lockstep.workflow  # noqa: E402\n\n\n"
                      f"def _late() -> None:\n    import json  # noqa: F401\n{body}\n")
    done = _lint_imports(tmp_path)
    assert done.returncode != 0 and "lockstep.core.compare -> lockstep.workflow" in done.stdout, done.stdout[-2000:]
    assert hidden_imports(tmp_path / "src" / "lockstep") == ["core/compare.py:" + str(
        target.read_text().splitlines().index("    import json  # noqa: F401") + 1) + " in _late()"]
    assert [f for f in long_functions(tmp_path / "src" / "lockstep") if "_late()" in f]
