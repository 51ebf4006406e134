"""``lockstep store push``: copy a project's store and registry somewhere else (see :mod:`lockstep.push`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from lockstep.cli._context import open_project
from lockstep.cli._options import JsonOpt, ProjectOpt
from lockstep.cli._output import Output, command, fmt_int

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["register"]

store_app = typer.Typer(rich_markup_mode=None, help="The project's store: push it to S3 or another folder.",
                        no_args_is_help=True)


@store_app.command("push")
@command
def push(
    destination: Annotated[str, typer.Argument(help="s3://BUCKET/PREFIX, or a folder.", show_default=False)],
    registry: Annotated[str | None, typer.Option("--registry", help="The destination registry: postgresql://USER:"
                                                 "PASSWORD@HOST:PORT/DB (with --artifacts) or http://HOST:PORT "
                                                 "(default, for a folder: the registry inside it).")] = None,
    artifacts: Annotated[str | None, typer.Option("--artifacts", help="s3://BUCKET/PREFIX for the model files, "
                                                  "with a database --registry.")] = None,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Copy every table version and registered model to another store (and registry), and check the copy.

    Pushing again copies only what is new. S3 is reached with the AWS_* variables (AWS_ENDPOINT_URL, ...), or
    the project's [project.storage_options] when its own store is in S3.
    """
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    out = Output(json_mode)
    proj = open_project(project)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                  TimeElapsedColumn(), console=out.err, disable=json_mode or not out.err.is_terminal,
                  transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(done: int, total: int, what: str) -> None:
            kind = what if what in ("runs", "models") else "bytes"
            if kind not in tasks:
                tasks[kind] = bar.add_task({"bytes": "tables", "runs": "runs", "models": "models"}[kind], total=total)
            bar.update(tasks[kind], completed=done, total=total)

        report = proj.push(destination, registry=registry, artifacts=artifacts, progress=progress)

    def render(console: Console) -> None:
        from rich.table import Table

        view = Table(title=f"Pushed {escape(report.source)} to {escape(report.destination)}")
        for column in ("table", "versions", "files", "bytes", "copied now"):
            view.add_column(column, justify="left" if column == "table" else "right")
        for table in report.tables:
            view.add_row(escape(table.table), fmt_int(table.versions), fmt_int(table.files), fmt_int(table.bytes),
                         fmt_int(table.files - table.skipped))
        console.print(view)
        copy = report.models
        console.print(f"Registry {escape(report.registry)}: {copy.runs} run(s) ({copy.runs_copied} copied now), "
                      f"{copy.models} logged model(s) ({copy.models_copied} copied now), "
                      f"{sum(len(v) for v in copy.versions.values())} version(s) ({copy.versions_copied} copied now)")
        for name, aliases in sorted(copy.aliases.items()):
            shown = ", ".join(f"@{alias} = {version}" for alias, version in sorted(aliases.items())) or "no aliases"
            console.print(f"  {escape(name)}: versions {', '.join(map(str, copy.versions.get(name, [])))}; {shown}")
        console.print("[green]The copy reads back as the source.[/] To use it, set in lockstep.toml:")
        for section, values in report.settings.items():
            console.print(f"  [{section}]", markup=False)
            for key, value in values.items():
                console.print(f'  {key} = "{value}"', markup=False)

    out.result(report.to_dict(), render)


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")
