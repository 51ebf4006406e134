"""What changed between two versions of a Python module, by function and class.

Used by ``lockstep verify`` to say not only which file changed but which
functions: ``pipeline.py: changed tenure_bucket, model; added helper``.
Definitions are compared by their syntax tree, so moving a function or
reformatting a comment does not count as a change; module-level statements
other than definitions (constants, imports) are reported as
``(module level)``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

__all__ = ["ModuleChange", "diff_module"]


@dataclass
class ModuleChange:
    """The definitions of a module that changed, were added or were removed."""

    path: str
    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unparsable: bool = False

    def describe(self) -> str:
        if self.unparsable:
            return f"{self.path}: changed (not parsable as Python)"
        parts = []
        for label, names in (("changed", self.changed), ("added", self.added), ("removed", self.removed)):
            if names:
                parts.append(f"{label} {', '.join(names)}")
        return f"{self.path}: " + ("; ".join(parts) if parts else "changed (comments or formatting only)")

    def to_dict(self) -> dict:
        return {"path": self.path, "changed": self.changed, "added": self.added, "removed": self.removed}


def _definitions(tree: ast.Module) -> dict[str, str]:
    """Qualified name to a dump of its tree, for functions, classes and methods; the rest as one entry."""
    out: dict[str, str] = {}
    rest = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out[node.name] = ast.dump(node)
        elif isinstance(node, ast.ClassDef):
            body = []
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    out[f"{node.name}.{item.name}"] = ast.dump(item)
                else:
                    body.append(ast.dump(item))
            header = [ast.dump(b) for b in node.bases] + [ast.dump(d) for d in node.decorator_list]
            out[node.name] = "\n".join(header + body)
        else:
            rest.append(ast.dump(node))
    out["(module level)"] = "\n".join(rest)
    return out


def diff_module(path: str, old_source: str | bytes, new_source: str | bytes) -> ModuleChange:
    """The definitions that differ between two sources of the module at ``path``."""
    change = ModuleChange(path)
    try:
        old, new = _definitions(ast.parse(old_source)), _definitions(ast.parse(new_source))
    except SyntaxError:
        change.unparsable = True
        return change
    change.changed = [n for n in new if n in old and old[n] != new[n]]
    change.added = [n for n in new if n not in old]
    change.removed = [n for n in old if n not in new]
    return change
