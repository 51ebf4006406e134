"""Rendering helpers shared by the CLI's commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape

from lockstep.cli._output import fmt_int
from lockstep.core.errors import shown

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["columns_table", "num", "render_diff", "short"]


def short(fp: str | None) -> str:
    from lockstep.core.fingerprint import short as _short

    return _short(fp)


def num(value: Any) -> str:
    """Numbers for people: thousands separators from 10,000 on, four significant digits below."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        if abs(value) >= 10_000:
            return f"{value:,.0f}"
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    return str(value)


def summary_text(s: dict, rows: int) -> str:
    if "top" in s:
        shown = ", ".join(f"{t['value']} {t['count'] / rows:.0%}" for t in s["top"][:3]) if rows else ""
        more = ", ..." if s["distinct"] > 3 else ""
        return f"{s['distinct']:,} distinct: {shown}{more}"
    parts = [f"min {num(s.get('min'))}", f"max {num(s.get('max'))}"]
    if s.get("mean") is not None:
        parts.append(f"mean {num(s['mean'])}")
    return "  ".join(parts)


def columns_table(title: str, summary: dict[str, dict], rows: int):
    """A table of column name, dtype, missing values and a one-line summary."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("column", "dtype", "missing", "summary"):
        table.add_column(col, justify="right" if col == "missing" else "left")
    for name, s in summary.items():
        missing = f"{s['missing']:,} ({s['missing_rate']:.1%})" if s["missing"] else "0"
        table.add_row(escape(name), s["dtype"], missing, escape(summary_text(s, rows)))
    return table


def render_diff(console: Console, diff: dict, label: str) -> None:
    """Print a table diff (``TableDiff.to_dict()``)."""
    from rich.table import Table

    console.print(f"[bold]{label} {diff['old']} -> {diff['new']}[/]  "
                  f"({short(diff['old_fingerprint'])} -> {short(diff['new_fingerprint'])})")
    if diff["identical"]:
        console.print("The two versions are identical.")
        return
    rows = diff["rows"]
    console.print(f"  rows: +{fmt_int(rows['added'])} added, -{fmt_int(rows['removed'])} removed, "
                  f"~{fmt_int(rows['changed'])} changed")
    examples = diff["examples"]
    for kind in ("added", "removed"):
        if examples.get(kind):
            console.print(f"    {kind}, e.g. ids {escape(', '.join(map(str, examples[kind])))}")
    for ex in examples.get("changed", []):
        cols = "; ".join(f"{c}: {shown(a)} -> {shown(b)}" for c, (a, b) in ex["columns"].items())
        console.print(f"    changed id {escape(str(ex['id']))}: {escape(cols)}", soft_wrap=True)
    schema = diff["schema"]
    if schema["columns_added"] or schema["columns_removed"] or schema["type_changes"]:
        console.print(escape(f"  columns: added {schema['columns_added'] or '-'}, removed "
                             f"{schema['columns_removed'] or '-'}, retyped {schema['type_changes'] or '-'}"))
    if diff["summary_changes"]:
        table = Table(title="Column summaries that changed")
        table.add_column("column")
        table.add_column("statistic")
        table.add_column(f"v{diff['old']}", justify="right")
        table.add_column(f"v{diff['new']}", justify="right")
        for col, stats in diff["summary_changes"].items():
            for stat, (a, b) in stats.items():
                if stat in ("top", "std"):
                    continue
                table.add_row(escape(col), stat, num(a), num(b))
        console.print(table)
