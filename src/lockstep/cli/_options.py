"""Options shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ComputeOpt", "JsonOpt", "ProjectOpt"]

ProjectOpt = Annotated[
    Path,
    typer.Option("--project", "-p", help="The project folder (holding lockstep.toml).", show_default="current folder"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, for scripts.")]
ComputeOpt = Annotated[
    str | None,
    typer.Option("--compute", help="Where the work runs: local, or dask (default: [compute] backend).",
                 show_default=False),
]
