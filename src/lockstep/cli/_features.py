"""``lockstep features`` and ``lockstep features list|show|diff``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from lockstep.cli._context import open_catalog
from lockstep.cli._options import ComputeOpt, JsonOpt, ProjectOpt
from lockstep.cli._output import Output, command, fmt_int
from lockstep.cli._render import columns_table, render_diff, short

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["register"]

features_app = typer.Typer(rich_markup_mode=None,
    help="Compute the feature set from a raw snapshot (cached), or inspect its versions: list, show, diff.",
    invoke_without_command=True,
)


@features_app.callback(invoke_without_command=True)
@command
def features(
    ctx: typer.Context,
    raw_version: Annotated[int | None, typer.Option("--raw-version", help="The raw snapshot to use "
                                                    "(default: the latest).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Recompute even if a version with the same inputs "
                                        "exists.")] = False,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
    compute: ComputeOpt = None,
) -> None:
    """Run the feature pipeline on a raw snapshot and version the result (skipped when nothing changed)."""
    if ctx.invoked_subcommand is not None:
        return
    from lockstep.features.build import build_features

    out = Output(json_mode)
    proj = open_catalog(project)  # the configuration and the store: all that the feature pipeline needs
    with out.progress("Features") as step:
        result = proj.traced("features", lambda: build_features(
            proj.config, proj.store, raw_version=raw_version, force=force, progress=step, compute=compute))

    def render(console: Console) -> None:
        info = result.info
        if result.skipped:
            console.print(f"Feature set '{escape(info.name)}' version {info.version} is up to date: same raw data, "
                          f"code, configuration and environment; nothing recomputed (--force to recompute)")
        else:
            console.print(f"[green]Feature set '{escape(info.name)}' version {info.version} written[/]: "
                          f"{fmt_int(info.rows)} rows, {len(info.columns)} features, "
                          f"fingerprint {short(info.fingerprint)}")
            console.print(f"  from raw snapshot {info.raw_version}; stateless check passed on "
                          f"{info.parity.get('rows_checked', 0)} rows (each row alone = the row in the table)")
        console.print(escape(f"  features: {', '.join(info.columns[:12])}{', ...' if len(info.columns) > 12 else ''}"),
                      soft_wrap=True)

    out.result(result.to_dict(), render)


@features_app.command("list")
@command
def features_list(project: ProjectOpt = Path("."), json_mode: JsonOpt = False) -> None:
    """List the versions of the feature set, oldest first."""
    from rich.table import Table

    out = Output(json_mode)
    proj = open_catalog(project)
    infos = proj.feature_versions()

    def render(console: Console) -> None:
        if not infos:
            console.print("No feature set version yet: run `lockstep features`.")
            return
        table = Table(title=f"Feature set '{escape(proj.config.features.name)}'")
        for col in ("version", "created (UTC)", "raw", "rows", "features", "fingerprint", "code"):
            table.add_column(col, justify="right" if col in ("version", "raw", "rows", "features") else "left")
        for info in infos:
            table.add_row(str(info.version), info.created.replace("+00:00", "").replace("T", " "),
                          str(info.raw_version), fmt_int(info.rows), str(len(info.columns)),
                          short(info.fingerprint), short(info.code.get("fingerprint")))
        console.print(table)

    out.result([i.to_dict() for i in infos], render)


@features_app.command("show")
@command
def features_show(
    version: Annotated[int | None, typer.Argument(help="The version (default: the latest).")] = None,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Show a feature set version: features with dtypes and missing rates, and its lineage to the raw data."""
    out = Output(json_mode)
    report = open_catalog(project).describe_features(version)

    def render(console: Console) -> None:
        lineage = report["lineage"]
        console.print(f"[bold]Feature set '{escape(report['name'])}' version {report['version']}[/]")
        console.print(f"  fingerprint  {report['fingerprint']}")
        console.print(f"  rows         {fmt_int(report['rows'])}    features {len(report['columns'])}    "
                      f"splits {', '.join(f'{k} {fmt_int(v)}' for k, v in report['splits'].items())}")
        console.print(f"  created      {report['created']} with lockstep {report['lockstep_version']}")
        console.print(f"  stateless    checked on {report['parity'].get('rows_checked', 0)} rows: identical")
        console.print("[bold]Lineage[/]")
        source = (lineage.get("raw_source") or {}).get("description", "?")
        exists = "" if lineage["raw_exists"] else "  [red](not found in the store)[/]"
        console.print(f"  raw snapshot {lineage['raw_version']}  {short(lineage['raw_fingerprint'])}  "
                      f"from {escape(source)}{exists}")
        code = lineage["code"]
        console.print(f"  code         {escape(str(code.get('ref')))}  {short(code.get('fingerprint'))}")
        for path, fp in code.get("files", {}).items():
            console.print(f"               {escape(path)}  {short(fp)}")
        console.print(f"  config       {short(lineage['config_fingerprint'])}    environment "
                      f"{short(lineage['environment_fingerprint'])}")
        git = lineage.get("git") or {}
        if git:
            console.print(f"  git          {git['commit'][:12]}{' (dirty)' if git.get('dirty') else ''}")
        console.print(columns_table("Features", report["summary"], report["rows"]))

    out.result(report, render)


@features_app.command("diff")
@command
def features_diff(
    old: Annotated[int, typer.Argument(help="The older version.", show_default=False)],
    new: Annotated[int, typer.Argument(help="The newer version.", show_default=False)],
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Compare two feature set versions: rows, features, summaries, and what changed in their inputs."""
    out = Output(json_mode)
    diff = open_catalog(project).diff_features(old, new)

    def render(console: Console) -> None:
        render_diff(console, diff, "Feature set version")
        lineage = diff["lineage"]
        changed = [name for name, key in (("raw data", "raw_changed"), ("code", "code_changed"),
                                          ("configuration", "config_changed"),
                                          ("environment", "environment_changed")) if lineage[key]]
        console.print(f"  inputs that changed: {', '.join(changed) or 'none'}"
                      + (f" (files: {', '.join(lineage['code_files_changed'])})" if lineage["code_files_changed"]
                         else ""))

    out.result(diff, render)


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")
