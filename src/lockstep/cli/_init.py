"""``lockstep init``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lockstep.cli._options import JsonOpt
from lockstep.cli._output import Output, command, fmt_int

__all__ = ["register"]


class Task(str, Enum):
    classification = "classification"
    regression = "regression"


def init(
    data_file: Annotated[Path, typer.Argument(help="A CSV or Parquet file with the raw data.", show_default=False)],
    target: Annotated[str | None, typer.Option("--target", "-t", help="The column to predict (default: the "
                                               "contract's, with --contract).", show_default=False)] = None,
    id: Annotated[str | None, typer.Option("--id", help="A column that identifies each row (unique). "
                                           "Without it, ids are derived from row content.")] = None,
    task: Annotated[Task | None, typer.Option("--task", help="Inferred from the target when not given.")] = None,
    directory: Annotated[Path, typer.Option("--dir", "--project", "-p", help="The project folder to create or use.",
                                            show_default="current folder")] = Path("."),
    name: Annotated[str | None, typer.Option("--name", help="The project's name (default: the folder's).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing lockstep.toml.")] = False,
    contract: Annotated[Path | None, typer.Option("--contract", help="An ODCS v3 data contract (YAML): its schema "
                                                  "becomes [data.schema] instead of the inferred one.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Scaffold a project: infer a draft schema from DATA_FILE, write lockstep.toml and pipeline.py."""
    from lockstep.scaffold import init_project

    out = Output(json_mode)
    result = init_project(data_file, target=target, id_column=id, task=task.value if task else None,
                          directory=directory, name=name, force=force, contract=contract)

    def render(console) -> None:
        written = "lockstep.toml" + (" and pipeline.py" if result.pipeline_path else "")
        console.print(f"[green]Wrote {written}[/] in {result.directory}")
        console.print(f"  {fmt_int(result.rows)} rows, {result.columns} columns, task [bold]{result.task}[/], "
                      f"id {result.id_column or '_row_id (derived)'}")
        console.print("\n[bold]Review before the first ingest:[/]")
        for note in result.notes:
            console.print(f"  - {escape(note)}", soft_wrap=True)
        project_arg = "" if result.directory == Path.cwd().resolve() else f" --project {directory}"
        console.print(f"\nNext: [bold]lockstep ingest{project_arg}[/]")

    out.result(result.to_dict(), render)


def register(app: typer.Typer) -> None:
    app.command("init")(command(init))
