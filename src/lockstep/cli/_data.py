"""``lockstep ingest`` and ``lockstep data list|show|diff``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from lockstep.cli._context import open_catalog
from lockstep.cli._options import JsonOpt, ProjectOpt
from lockstep.cli._output import Output, command, fmt_int
from lockstep.cli._render import columns_table, num, render_diff, short
from lockstep.core.errors import shown

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["register"]

data_app = typer.Typer(rich_markup_mode=None, help="Inspect raw snapshots (list, show, diff) and export the raw "
                       "schema as a data contract.", no_args_is_help=True)


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
    from lockstep.data.ingest import ingest as ingest_source

    out = Output(json_mode)
    proj = open_catalog(project)  # the configuration and the store: all that ingest needs
    with out.progress("Ingesting") as step:
        result = proj.traced("ingest", lambda: ingest_source(
            proj.config, proj.store, source=source.resolve() if source is not None else None, quarantine=quarantine,
            force=force, progress=step))

    def render(console: Console) -> None:
        snap = result.snapshot
        if result.changed:
            console.print(f"[green]Snapshot version {snap.version} written[/]: {fmt_int(snap.rows)} rows x "
                          f"{snap.columns} columns, fingerprint {short(snap.fingerprint)}")
        elif result.cached:
            console.print(f"Inputs unchanged: snapshot version {snap.version} is up to date "
                          f"(same source files and configuration; fingerprint {short(snap.fingerprint)}); "
                          "nothing read or written. Use --force to validate again.")
        else:
            console.print(f"Data unchanged: snapshot version {snap.version} is up to date "
                          f"(fingerprint {short(snap.fingerprint)}); nothing written")
        if result.quarantined:
            console.print(f"[yellow]{fmt_int(result.quarantined)} row(s) set aside in the quarantine table[/] "
                          f"({proj.store.quarantine.path}):")
            for failure in result.quarantine_failures:
                console.print(f"  - {escape(failure.describe())}", soft_wrap=True)
        shared = result.shared
        if shared is not None and (shared.valid_shared or shared.test_shared):
            console.print(f"Rows identical to a train row: {shared.valid_shared} in valid, {shared.test_shared} in "
                          f"test (allowed up to {proj.config.split.max_shared_fraction:.2%})")
        if shared is not None and shared.repeated_inputs:
            kept = ("each group is kept in one split" if proj.config.split.by == "content" else
                    "\\[split] by = \"content\" would keep each group in one split")
            console.print(f"Rows with the same inputs as another row: {fmt_int(shared.repeated_inputs)} in "
                          f"{fmt_int(shared.input_groups)} groups; {kept}")

    out.result(result.to_dict(), render)


@data_app.command("list")
@command
def data_list(project: ProjectOpt = Path("."), json_mode: JsonOpt = False) -> None:
    """List every raw snapshot, oldest first."""
    from rich.table import Table

    out = Output(json_mode)
    infos = open_catalog(project).snapshots()

    def render(console: Console) -> None:
        if not infos:
            console.print("No snapshot yet: run `lockstep ingest`.")
            return
        table = Table(title="Raw snapshots")
        for col in ("version", "created (UTC)", "rows", "columns", "fingerprint", "source", "quarantined"):
            table.add_column(col, justify="right" if col in ("version", "rows", "columns", "quarantined") else "left")
        for info in infos:
            table.add_row(str(info.version), info.created.replace("+00:00", "").replace("T", " "), fmt_int(info.rows),
                          str(info.columns), short(info.fingerprint), info.source.get("description", ""),
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
    catalog = open_catalog(project)
    report = catalog.describe(version)
    out.result(report, lambda console: _render_show(console, report, catalog))


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
                      f"fingerprint {short(f['fingerprint'])}")
    if report.get("quarantined"):
        console.print(f"  quarantined  {fmt_int(report['quarantined'])} row(s)")

    splits = report.get("splits")
    if splits:
        split = proj.config.split
        how = {"hash": f"hash of the id, salt {shown(split.salt)}",
               "content": f"hash of the input values, salt {shown(split.salt)}"}.get(
            split.by, f"time column {split.time_column}")
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
                              *(num(t[k]) for k in ("mean", "std", "min", "max")))
        console.print(table)
        shared = report.get("shared_rows") or {}
        if shared.get("valid_shared") or shared.get("test_shared"):
            console.print(f"Rows identical to a train row (all columns but the id): "
                          f"{shared['valid_shared']} valid, {shared['test_shared']} test")

    console.print(columns_table("Columns", report["summary"], report["rows"]))


@data_app.command("diff")
@command
def data_diff(
    old: Annotated[int, typer.Argument(help="The older snapshot version.", show_default=False)],
    new: Annotated[int, typer.Argument(help="The newer snapshot version.", show_default=False)],
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Compare two snapshots: rows added, removed and changed (by id), schema and column summaries."""
    out = Output(json_mode)
    diff = open_catalog(project).diff(old, new).to_dict()
    out.result(diff, lambda console: render_diff(console, diff, "Snapshot"))


@data_app.command("contract")
@command
def data_contract(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the contract to this file (default: print "
                                              "it).")] = None,
    version: Annotated[str, typer.Option("--version", help="The contract's own version.")] = "1.0.0",
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """The raw schema ([data]) as an Open Data Contract Standard (ODCS v3.2) document, validated against the
    standard's JSON schema."""
    from lockstep.core.errors import ConfigError
    from lockstep.data.contract import API_VERSION, check_contract, contract_document, contract_yaml
    from lockstep.store import atomic_write_text

    output = Output(json_mode)
    config = open_catalog(project).config
    document = contract_document(config, version=version)
    try:
        check_contract(document, "the contract lockstep made")
    except ConfigError as exc:  # lockstep's bug, not the user's: exit 1
        raise RuntimeError(exc.message) from exc
    text = contract_yaml(document)
    if out is None and not json_mode:
        typer.echo(text, nl=False)
        return
    if out is not None:
        atomic_write_text(out, text)
    columns = len(document["schema"][0]["properties"])
    result = {"path": str(out) if out is not None else None, "api_version": API_VERSION, "id": document["id"],
              "columns": columns, "contract": None if out is not None else document}

    def render(console: Console) -> None:
        console.print(f"Wrote {out}: ODCS {API_VERSION} data contract {document['id']!r}, {columns} columns")

    output.result(result, render)


def register(app: typer.Typer) -> None:
    app.command("ingest")(command(ingest))
    app.add_typer(data_app, name="data")
