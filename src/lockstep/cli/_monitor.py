"""``lockstep monitor``: data and prediction drift, live quality, and the retraining loop."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from lockstep.cli._context import open_project
from lockstep.cli._options import ComputeOpt, JsonOpt, ProjectOpt
from lockstep.cli._output import Output, command

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["register"]

_SHOWN = ("psi", "ks", "wasserstein", "chi2", "jensen_shannon", "unseen", "missing")


def _stat_text(stat) -> str:
    value = stat.value
    text = f"{value:.3g}" if value == value and abs(value) != float("inf") else str(value)
    if stat.drift:
        return f"[bold red]{text}[/]"
    if stat.warning:
        return f"[yellow]{text}[/]"
    return text


def monitor(
    model: Annotated[str | None, typer.Option("--model", "-m", help="NAME@ALIAS or NAME/VERSION (default: the "
                                              "project's model @champion).")] = None,
    data: Annotated[Path | None, typer.Option("--data", "-d", help="Raw rows: a CSV or Parquet file, a folder or glob "
                                              "of Parquet files, or a Delta table (default: "
                                              "the inputs recorded in the audit log).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Audit log window from this time (ISO 8601, UTC if "
                                              "no zone).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Audit log window before this time.")] = None,
    quality: Annotated[bool, typer.Option("--quality", help="Also the live metrics on predictions that received "
                                          "feedback, against the test metrics.")] = False,
    retrain: Annotated[bool, typer.Option("--retrain", help="On drift or degradation: ingest, features, train a "
                                          "challenger and promote it if the gates pass.")] = False,
    inputs_only: Annotated[bool, typer.Option("--inputs-only", help="Only the raw inputs: no features, no "
                                              "predictions (fastest).")] = False,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Write report.json, report.html and the "
                                                 "plots of the drifted columns to this folder.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="List every column, not only those that drift or "
                                           "warn.")] = False,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1000, help="Rows per chunk (bounds "
                                            "memory).")] = 250_000,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
    compute: ComputeOpt = None,
) -> None:
    """Compare recent data with the model's training data: drift per column and of the predictions (exit 3 on
    drift)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lockstep.cli._serve import _when

    out = Output(json_mode)
    proj = open_project(project)
    kwargs: dict[str, Any] = dict(data=data, since=_when(since), until=_when(until), quality=quality, retrain=retrain,
                  inputs_only=inputs_only, out=out_dir, chunk_rows=chunk_rows, compute=compute)
    if json_mode or not out.err.is_terminal:
        report, payload = proj.monitor(model, **kwargs)
    else:
        with Progress(TextColumn("Monitoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=out.err, transient=True) as bar:
            task = bar.add_task("rows", total=None)
            report, payload = proj.monitor(model, **kwargs,
                                           progress=lambda done, total: bar.update(task, completed=done,
                                                                                  total=total))

    out.result(payload, partial(_render_report, report=report, show_all=show_all, out_dir=out_dir))
    if report.drift:
        raise typer.Exit(3)


def _render_report(console: Console, *, report: Any, show_all: bool, out_dir: Path | None) -> None:
    """The drift table, the notes on the window, live quality, the retraining steps and the verdict."""
    from rich.table import Table

    table = Table(title=f"Drift of {escape(report.model)}/{report.version}: {escape(report.window)}")
    for col in ("group", "column", "status", *_SHOWN):
        table.add_column(col, justify="left" if col in ("group", "column", "status") else "right")
    shown = 0
    for column in report.columns:
        if not (show_all or column.drift or column.warning or column.group == "prediction"):
            continue
        shown += 1
        status = "[bold red]drift[/]" if column.drift else ("[yellow]warning[/]" if column.warning else "ok")
        cells = []
        for name in _SHOWN:
            stat = column.statistic(name)
            cells.append("-" if stat is None else _stat_text(stat))
        table.add_row(column.group, escape(column.name), status, *cells)
    console.print(table)
    quiet = len(report.columns) - shown
    if quiet:
        console.print(f"{quiet} more column(s) without drift or warning (--all lists them)")
    if report.small:
        console.print(f"[yellow]The window holds {report.rows} rows, fewer than [monitor] min_rows = "
                      f"{report.min_rows}: the statistics are noisy.[/]")
    if report.invalid:
        console.print(f"[yellow]{report.invalid:,} value(s) were not of their column's type and count as "
                      "missing.[/]")
    if report.quality:
        console.print(f"Live quality: {escape(report.quality['summary'])}")
    for action in report.actions:
        console.print(f"  {escape(action['step']):9} {escape(action['decision']):13} {escape(action['detail'])}")
    verdict = ("[bold red]Drift[/]: " + ", ".join(escape(f"{c.group} {c.name}") for c in report.drifted()[:10])
               if report.data_drift else "[green]No drift[/]")
    if report.degraded:
        verdict += "; [bold red]live quality degraded[/]"
    console.print(f"{verdict} ({report.rows:,} rows, {report.seconds:.2f} s)")
    if out_dir is not None:
        console.print(f"Report: {escape(str(out_dir / 'report.html'))}")


def register(app: typer.Typer) -> None:
    app.command("monitor")(command(monitor))
