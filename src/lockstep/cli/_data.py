"""``lockstep ingest`` and ``lockstep data list|show|diff``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from lockstep.cli._options import JsonOpt, ProjectOpt
from lockstep.cli._output import Output, command, fmt_int

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["register"]

data_app = typer.Typer(help="Inspect raw snapshots: list, show, diff.", no_args_is_help=True)


def _project(path: Path):
    from lockstep.project import Project

    return Project(path)


def _short(fp: str | None) -> str:
    from lockstep.fingerprint import short

    return short(fp)


def ingest(
    source: Annotated[Path | None, typer.Option("--source", "-s", help="Read this file or glob instead of "
                                                "[data] source.")] = None,
    quarantine: Annotated[bool, typer.Option("--quarantine", help="Set rows that break the schema aside in the "
                                             "quarantine table and ingest the rest.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Read and validate the source even if its files and the "
                                        "configuration are unchanged since the last snapshot.")] = False,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Validate the raw data and snapshot it, if it changed since the last snapshot."""
    out = Output(json_mode)
    proj = _project(project)
    with out.progress("Ingesting") as step:
        result = proj.ingest(source.resolve() if source is not None else None, quarantine=quarantine,
                             force=force, progress=step)

    def render(console: Console) -> None:
        snap = result.snapshot
        if result.changed:
            console.print(f"[green]Snapshot version {snap.version} written[/]: {fmt_int(snap.rows)} rows x "
                          f"{snap.columns} columns, fingerprint {_short(snap.fingerprint)}")
        elif result.cached:
            console.print(f"Inputs unchanged: snapshot version {snap.version} is up to date "
                          f"(same source files and configuration; fingerprint {_short(snap.fingerprint)}); "
                          "nothing read or written. Use --force to validate again.")
        else:
            console.print(f"Data unchanged: snapshot version {snap.version} is up to date "
                          f"(fingerprint {_short(snap.fingerprint)}); nothing written")
        if result.quarantined:
            console.print(f"[yellow]{fmt_int(result.quarantined)} row(s) set aside in the quarantine table[/] "
                          f"({proj.store.quarantine.path}):")
            for failure in result.quarantine_failures:
                console.print(f"  - {escape(failure.describe())}", soft_wrap=True)
        shared = result.shared
        if shared is not None and (shared.valid_shared or shared.test_shared):
            console.print(f"Rows identical to a train row: {shared.valid_shared} in valid, {shared.test_shared} in "
                          f"test (allowed up to {proj.config.split.max_shared_fraction:.2%})")

    out.result(result.to_dict(), render)


@data_app.command("list")
@command
def data_list(project: ProjectOpt = Path("."), json_mode: JsonOpt = False) -> None:
    """List every raw snapshot, oldest first."""
    from rich.table import Table

    out = Output(json_mode)
    infos = _project(project).snapshots()

    def render(console: Console) -> None:
        if not infos:
            console.print("No snapshot yet: run `lockstep ingest`.")
            return
        table = Table(title="Raw snapshots")
        for col in ("version", "created (UTC)", "rows", "columns", "fingerprint", "source", "quarantined"):
            table.add_column(col, justify="right" if col in ("version", "rows", "columns", "quarantined") else "left")
        for info in infos:
            table.add_row(str(info.version), info.created.replace("+00:00", "").replace("T", " "), fmt_int(info.rows),
                          str(info.columns), _short(info.fingerprint), info.source.get("description", ""),
                          fmt_int(info.quarantined))
        console.print(table)

    out.result([i.to_dict() for i in infos], render)


@data_app.command("show")
@command
def data_show(
    version: Annotated[int | None, typer.Argument(help="The snapshot version (default: the latest).")] = None,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Show a snapshot: metadata, splits with the target balance, and every column's summary."""
    out = Output(json_mode)
    proj = _project(project)
    report = proj.describe(version)
    out.result(report, lambda console: _render_show(console, report, proj))


def _render_show(console: Console, report: dict, proj) -> None:
    from rich.table import Table

    console.print(f"[bold]Raw snapshot {report['version']}[/] of {proj.config.project.name}")
    console.print(f"  fingerprint  {report['fingerprint']}")
    console.print(f"  rows         {fmt_int(report['rows'])}    columns {report['columns']}    "
                  f"id {report['id_column']}    target {report['target']} ({report['task']})")
    console.print(f"  created      {report['created']} with lockstep {report['lockstep_version']}")
    src = report.get("source", {})
    console.print(f"  source       {src.get('description', '')}")
    for f in src.get("files", [])[:5]:
        console.print(f"               {f['path']}  {fmt_int(f['bytes'])} bytes  "
                      f"fingerprint {_short(f['fingerprint'])}")
    if report.get("quarantined"):
        console.print(f"  quarantined  {fmt_int(report['quarantined'])} row(s)")

    splits = report.get("splits")
    if splits:
        split = proj.config.split
        how = f"hash of the id, salt {split.salt!r}" if split.by == "hash" else f"time column {split.time_column}"
        table = Table(title=f"Splits ({how})")
        table.add_column("split")
        table.add_column("rows", justify="right")
        table.add_column("fraction", justify="right")
        if report["task"] == "classification":
            classes = sorted({c for s in splits.values() for c in s["target"]})
            for c in classes:
                table.add_column(f"{report['target']}={c}", justify="right")
            for name, s in splits.items():
                cells = [f"{s['target'][c]['count']:,} ({s['target'][c]['rate']:.1%})" if c in s["target"] else "0"
                         for c in classes]
                table.add_row(name, fmt_int(s["rows"]), f"{s['fraction']:.1%}", *cells)
        else:
            for stat in ("mean", "std", "min", "max"):
                table.add_column(f"{report['target']} {stat}", justify="right")
            for name, s in splits.items():
                t = s["target"]
                table.add_row(name, fmt_int(s["rows"]), f"{s['fraction']:.1%}",
                              *(_num(t[k]) for k in ("mean", "std", "min", "max")))
        console.print(table)
        shared = report.get("shared_rows") or {}
        if shared.get("valid_shared") or shared.get("test_shared"):
            console.print(f"Rows identical to a train row (all columns but the id): "
                          f"{shared['valid_shared']} valid, {shared['test_shared']} test")

    table = Table(title="Columns")
    for col in ("column", "dtype", "missing", "summary"):
        table.add_column(col, justify="right" if col == "missing" else "left")
    for name, s in report["summary"].items():
        missing = f"{s['missing']:,} ({s['missing_rate']:.1%})" if s["missing"] else "0"
        table.add_row(escape(name), s["dtype"], missing, escape(_summary_text(s, report["rows"])))
    console.print(table)


def _summary_text(s: dict, rows: int) -> str:
    if "top" in s:
        shown = ", ".join(f"{t['value']} {t['count'] / rows:.0%}" for t in s["top"][:3])
        more = ", ..." if s["distinct"] > 3 else ""
        return f"{s['distinct']:,} distinct: {shown}{more}"
    parts = [f"min {_num(s.get('min'))}", f"max {_num(s.get('max'))}"]
    if s.get("mean") is not None:
        parts.append(f"mean {_num(s['mean'])}")
    return "  ".join(parts)


def _num(value: Any) -> str:
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


@data_app.command("diff")
@command
def data_diff(
    old: Annotated[int, typer.Argument(help="The older snapshot version.", show_default=False)],
    new: Annotated[int, typer.Argument(help="The newer snapshot version.", show_default=False)],
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Compare two snapshots: rows added, removed and changed (by id), schema and column summaries."""
    from rich.table import Table

    out = Output(json_mode)
    diff = _project(project).diff(old, new)

    def render(console: Console) -> None:
        console.print(f"[bold]Snapshot {diff.old} -> {diff.new}[/]  "
                      f"({_short(diff.old_fingerprint)} -> {_short(diff.new_fingerprint)})")
        if diff.identical:
            console.print("The two snapshots are identical.")
            return
        console.print(f"  rows: +{diff.rows_added:,} added, -{diff.rows_removed:,} removed, "
                      f"~{diff.rows_changed:,} changed")
        for kind in ("added", "removed"):
            if diff.examples.get(kind):
                console.print(f"    {kind}, e.g. ids {', '.join(map(str, diff.examples[kind]))}")
        for ex in diff.examples.get("changed", []):
            cols = "; ".join(f"{c}: {a!r} -> {b!r}" for c, (a, b) in ex["columns"].items())
            console.print(f"    changed id {escape(str(ex['id']))}: {escape(cols)}", soft_wrap=True)
        if diff.columns_added or diff.columns_removed or diff.type_changes:
            console.print(f"  schema: added {diff.columns_added or '-'}, removed {diff.columns_removed or '-'}, "
                          f"retyped {diff.type_changes or '-'}")
        if diff.summary_changes:
            table = Table(title="Column summaries that changed")
            table.add_column("column")
            table.add_column("statistic")
            table.add_column(f"v{diff.old}", justify="right")
            table.add_column(f"v{diff.new}", justify="right")
            for col, stats in diff.summary_changes.items():
                for stat, (a, b) in stats.items():
                    if stat in ("top", "std"):
                        continue
                    table.add_row(col, stat, _num(a), _num(b))
            console.print(table)

    out.result(diff.to_dict(), render)


def register(app: typer.Typer) -> None:
    app.command("ingest")(command(ingest))
    app.add_typer(data_app, name="data")
