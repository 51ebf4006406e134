"""``lockstep run``: the whole system, step by step, with a closing summary."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from lockstep.cli._context import open_project
from lockstep.cli._options import ComputeOpt, JsonOpt, ProjectOpt
from lockstep.cli._output import Output, command
from lockstep.cli._render import short

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["register"]

_COLORS = {"done": "green", "skipped": "cyan", "refused": "yellow", "failed": "red"}


def run(
    candidates: Annotated[bool, typer.Option("--candidates/--no-candidates", help="Also train and promote every "
                                             "[train.candidates] entry.")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Rebuild the champion and compare it bit "
                                         "for bit.")] = True,
    parity: Annotated[bool, typer.Option("--parity/--no-parity", help="Compare the champion's prediction "
                                         "paths.")] = True,
    force_checks: Annotated[bool, typer.Option("--force-checks", help="Verify and compare even if they passed "
                                               "before for the same inputs.")] = False,
    compute: ComputeOpt = None,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Run the whole system: ingest, features, train, promote, verify, parity; unchanged steps are skipped."""
    out = Output(json_mode)
    proj = open_project(project)
    live = out.err if not json_mode else None
    status_holder: dict = {}

    def progress(name: str, phase: str, step) -> None:
        if live is None:
            return
        if phase == "start":
            if live.is_terminal:
                status_holder["status"] = live.status(f"{name}...")
                status_holder["status"].start()
            return
        status = status_holder.pop("status", None)
        if status is not None:
            status.stop()
        color = _COLORS.get(step.status, "white")
        live.print(f"[{color}]{step.status:8}[/] {escape(step.name):16} {escape(step.detail)} "
                   f"[dim]({step.seconds:.1f} s)[/]")

    try:
        report = proj.run(candidates=candidates, verify=verify, parity=parity, force_checks=force_checks,
                          progress=progress, compute=compute)
    finally:
        status = status_holder.pop("status", None)
        if status is not None:
            status.stop()

    out.result(report.to_dict(), partial(_render_run, report=report, name=proj.config.project.name))
    if not report.ok:
        raise typer.Exit(3)


def _render_run(console: Console, *, report: Any, name: str) -> None:
    """The steps of a run, the champion, and whether it reproduced and its paths agreed."""
    from rich.table import Table

    table = Table(title=f"lockstep run: {escape(name)}")
    for col in ("step", "result", "version", "fingerprint", "time"):
        table.add_column(col, justify="right" if col in ("version", "time") else "left")
    for step in report.steps:
        color = _COLORS.get(step.status, "white")
        table.add_row(escape(step.name), f"[{color}]{step.status}[/]",
                      "-" if step.version is None else str(step.version), short(step.fingerprint),
                      f"{step.seconds:.1f} s")
    console.print(table)
    champ = report.champion
    if champ:
        metric = f"test {champ['metric']} {champ['mean']:.4g} ± {champ['std']:.2g}" if champ.get("mean") is not \
            None else ""
        console.print(f"Champion: {escape(champ['name'])}/{champ['version']} ({short(champ['fingerprint'])}), "
                      f"{metric}")
    yes_no = {True: "[green]yes[/]", False: "[red]no[/]", None: "not checked"}
    console.print(f"Reproduced: {yes_no[report.reproduced]}   Prediction paths identical: "
                  f"{yes_no[report.identical]}   ({report.seconds:.1f} s)")


def register(app: typer.Typer) -> None:
    app.command("run")(command(run))
