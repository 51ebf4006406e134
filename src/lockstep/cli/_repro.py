"""``lockstep verify``, ``parity``, ``check`` and ``env show|diff|lock``: the reproducibility commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from lockstep.cli._context import open_models, open_project
from lockstep.cli._options import ComputeOpt, JsonOpt, ProjectOpt
from lockstep.cli._output import Output, command
from lockstep.cli._render import short

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["register", "status_text"]

env_app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                      help="The environment: show it, compare it with a model's, lock a model's requirements.")

RefArg = Annotated[str | None, typer.Argument(help="MODEL@ALIAS or MODEL/VERSION (default: the project's model "
                                              "@champion).")]
_COLORS = {"PASS": "green", "FAIL": "red", "WARN": "yellow", "SKIPPED": "dim"}
_SEVERITY_COLORS = {"high": "red", "medium": "yellow", "low": "dim"}


def status_text(status: str) -> str:
    return f"[{_COLORS.get(status, 'white')}]{status}[/]"


def verify(
    ref: RefArg = None,
    recorded_code: Annotated[bool, typer.Option("--recorded-code", help="Rebuild with the copy of the code stored "
                                                "with the model, not the project's current code.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Repeat the hyperparameter search too.")] = False,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Refit with this many BLAS/OpenMP threads "
                                                "instead of the recorded number.")] = None,
    strict_env: Annotated[bool, typer.Option("--strict-env", help="Fail when the environment differs in a way that "
                                             "can change numbers, even if the rebuild matches.")] = False,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
    compute: ComputeOpt = None,
) -> None:
    """Rebuild a registered model from its lineage and compare every stage bit for bit (exit 3 if one fails)."""
    from rich.table import Table

    from lockstep.reproducibility.verify import verify as verify_version

    out = Output(json_mode)
    catalog, registry = open_models(project)
    exact = catalog.model_ref(ref, "champion")
    with out.progress("Verifying") as step:
        report = catalog.traced("verify", lambda: verify_version(
            catalog.config, catalog.store, registry, exact, recorded_code=recorded_code, full=full, threads=threads,
            strict_env=strict_env, progress=step, compute=compute))

    def render(console: Console) -> None:
        table = Table(title=f"lockstep verify {escape(report.model)}/{report.version} (fingerprint "
                      f"{short(report.fingerprint)})")
        table.add_column("stage")
        table.add_column("status")
        table.add_column("detail", overflow="fold")
        table.add_column("time", justify="right")
        for stage in report.stages:
            table.add_row(stage.name, status_text(stage.status), escape(stage.detail), f"{stage.seconds:.2f} s")
        console.print(table)
        high = [d for d in report.environment if d.severity != "low"]
        if high:
            console.print("Environment differences (`lockstep env diff` lists them all):")
            for d in high[:10]:
                console.print(f"  [{_SEVERITY_COLORS[d.severity]}]{d.severity:6}[/] {escape(d.describe())}")
        if report.reproduced:
            console.print(f"[bold green]Reproduced[/] {escape(report.model)}/{report.version} in "
                          f"{report.seconds:.1f} s: same data, features, model and test predictions, bit for bit")
        else:
            console.print(f"[bold red]Not reproduced[/]: likeliest cause: {escape(report.cause or 'unknown')}")

    out.result(report.to_dict(), render)
    if not report.reproduced:
        raise typer.Exit(3)


def parity(
    ref: RefArg = None,
    rows: Annotated[int | None, typer.Option("--rows", min=1, help="Compare the first N rows of the test split "
                                             "(default: all of it).")] = None,
    http: Annotated[bool, typer.Option("--http/--no-http", help="Include the HTTP service (starts it on a free "
                                       "local port).")] = True,
    batch: Annotated[bool, typer.Option("--batch/--no-batch", help="Include `lockstep predict` (a separate "
                                        "process).")] = True,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Run the same rows through every prediction path and compare them (exit 3 if one differs)."""
    from rich.table import Table

    from lockstep.reproducibility.parity import parity as compare_paths

    out = Output(json_mode)
    catalog, registry = open_models(project)
    exact = catalog.model_ref(ref, "champion")
    with out.progress("Comparing prediction paths") as step:
        report = compare_paths(catalog.config, catalog.store, registry, exact, rows=rows, http=http, batch=batch,
                               progress=step)

    def render(console: Console) -> None:
        table = Table(title=f"lockstep parity {escape(report.model)}/{report.version}: {report.rows:,} test rows "
                      "against the in-process path")
        for col in ("path", "status", "rows", "label mismatches", "max abs diff", "allowed", "detail"):
            table.add_column(col, justify="right" if col in ("rows", "label mismatches", "max abs diff", "allowed")
                             else "left", overflow="fold" if col == "detail" else "ellipsis")
        for p in report.paths:
            skipped = p.status == "SKIPPED"
            table.add_row(p.name, status_text(p.status), "-" if skipped else f"{p.rows:,}",
                          "-" if skipped else str(p.label_mismatches),
                          "-" if skipped else f"{p.max_abs_diff:.3g}",
                          "bitwise" if not p.tolerance else f"{p.tolerance:g}", escape(p.detail))
        console.print(table)
        if report.identical:
            console.print("[bold green]Identical[/]: every Python path gives the same bits; ONNX within its "
                          "tolerance")
        else:
            failed = ", ".join(p.name for p in report.paths if p.status == "FAIL")
            console.print(f"[bold red]Paths differ[/]: {escape(failed)}")

    out.result(report.to_dict(), render)
    if not report.identical:
        raise typer.Exit(3)


def check(
    champion: Annotated[str | None, typer.Option("--champion", help="The champion (default: MODEL@champion).")] = None,
    challenger: Annotated[str | None, typer.Option("--challenger", help="The challenger (default: "
                                                   "MODEL@challenger).")] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these checks: golden, gates, schema "
                                                   "(repeatable).")] = None,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """ML regression gates for CI: golden predictions, promotion gates, schema compatibility (exit 3 on a failure)."""
    from rich.table import Table

    from lockstep.core.errors import UserError
    from lockstep.reproducibility.check import CHECKS

    chosen = tuple(only) if only else CHECKS
    unknown = [c for c in chosen if c not in CHECKS]
    if unknown:
        raise UserError(f"--only {unknown[0]!r} is not a check", hint=f"choose among {', '.join(CHECKS)}")
    out = Output(json_mode)
    report = open_project(project).check(champion, challenger, only=chosen)

    def render(console: Console) -> None:
        table = Table(title=f"lockstep check {escape(report.model)} (champion {report.champion or '-'}, challenger "
                      f"{report.challenger or '-'})")
        for col in ("check", "subject", "status", "detail"):
            table.add_column(col, overflow="fold" if col == "detail" else "ellipsis")
        for item in report.items:
            table.add_row(item.check, escape(item.name), status_text(item.status), escape(item.detail))
        console.print(table)
        failed = [i for i in report.items if i.status == "FAIL"]
        console.print("[bold green]All checks pass[/]" if not failed else
                      f"[bold red]{len(failed)} check(s) failed[/]: " + ", ".join(f"{i.check} {escape(i.name)}"
                                                                               for i in failed))

    out.result(report.to_dict(), render)
    if not report.passed:
        raise typer.Exit(3)


@env_app.command("show")
@command
def env_show(project: ProjectOpt = Path("."), json_mode: JsonOpt = False) -> None:
    """Show this environment: Python, platform, CPU, BLAS/OpenMP libraries, numerical packages; and, in a
    project, where its store and registry are."""
    from lockstep.core.config import CONFIG_FILE
    from lockstep.core.environment import CORE_PACKAGES, capture
    from lockstep.reproducibility.envdiff import NUMERICAL_PACKAGES

    out = Output(json_mode)
    env = capture()
    if (project / CONFIG_FILE).is_file() or project != Path("."):
        proj = open_project(project)  # an explicit --project must be one
        where = {"folder": str(proj.path), "store": str(proj.store.root), "registry": proj.registry.location}
        if proj.store.remote:
            where["store_endpoint"] = proj.store.root.settings.describe()  # type: ignore[union-attr]
        if proj.registry.artifacts:
            where["artifacts"] = proj.registry.artifacts
        proj.store.check()  # a shared store or registry that cannot be reached is named here, in seconds
        if not proj.registry.embedded:
            proj.registry.check()
        env = {**env, "project": where}

    def render(console: Console) -> None:
        if "project" in env:
            where = env["project"]
            console.print(f"project    {escape(where['folder'])}")
            endpoint = f"  ({where['store_endpoint']})" if "store_endpoint" in where else ""
            console.print(f"store      {escape(where['store'])}{escape(endpoint)}")
            console.print(f"registry   {escape(where['registry'])}")
            if "artifacts" in where:
                console.print(f"artifacts  {escape(where['artifacts'])}")
        py, plat, cpu = env["python"], env["platform"], env["cpu"]
        console.print(f"python     {py['version']} ({py['implementation']})  {escape(py['executable'])}")
        console.print(f"platform   {plat['system']} {plat['release']} {plat['machine']}")
        console.print(f"cpu        {escape(cpu['processor'] or '-')}  {cpu['count']} core(s), "
                      f"{cpu['byteorder']}-endian")
        for pool in env["threadpools"]:
            arch = f", {pool['architecture']}" if pool.get("architecture") else ""
            console.print(f"{pool.get('user_api'):10} {pool.get('prefix')} {pool.get('version')} "
                          f"({pool.get('num_threads')} threads{arch})")
        set_vars = {k: v for k, v in env["variables"].items() if v is not None}
        console.print("variables  " + (", ".join(f"{k}={v}" for k, v in set_vars.items()) or "none set"))
        names = sorted(set(CORE_PACKAGES) | NUMERICAL_PACKAGES)
        console.print("packages   " + ", ".join(f"{n} {env['packages'].get(n, '-')}" for n in names))
        console.print(f"           and {len(env['packages']) - len(names)} more (--json lists them all)")

    out.result(env, render)


@env_app.command("diff")
@command
def env_diff(
    ref: RefArg = None,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Compare this environment with the one a model version was trained in, each difference with a severity."""
    from rich.table import Table

    out = Output(json_mode)
    info, diffs = open_project(project).env_diff(ref)
    payload = {"model": info.name, "version": info.version, "identical": not diffs,
               "differences": [d.to_dict() for d in diffs]}

    def render(console: Console) -> None:
        if not diffs:
            console.print(f"[green]Identical[/] to the environment {escape(info.name)}/{info.version} was trained in")
            return
        table = Table(title=f"This environment against {escape(info.name)}/{info.version}'s")
        for col in ("severity", "what", "recorded", "current", "why"):
            table.add_column(col, overflow="fold" if col == "why" else "ellipsis")
        for d in diffs:
            table.add_row(f"[{_SEVERITY_COLORS[d.severity]}]{d.severity}[/]", escape(d.name), escape(d.recorded or "-"),
                          escape(d.current or "-"), escape(d.why))
        console.print(table)

    out.result(payload, render)


@env_app.command("lock")
@command
def env_lock(
    ref: RefArg = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file (default: print "
                                                "it).")] = None,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Write the exact requirements of a model version, from its recorded environment, installable with pip."""
    from lockstep.store import atomic_write_text

    out = Output(json_mode)
    locked = open_project(project).env_lock(ref)
    text = locked.text()
    if output is not None:
        atomic_write_text(output, text)
    payload = {"requirements": locked.pins, "missing": locked.missing,
               "output": str(output) if output is not None else None}

    def render(console: Console) -> None:
        if output is None:
            console.print(text, end="", markup=False, highlight=False)
        else:
            console.print(f"Wrote {len(locked.pins)} pinned requirements to {escape(str(output))}")
        if locked.missing:
            out.note(f"[yellow]not in the recorded environment:[/] {escape(', '.join(locked.missing))}")

    out.result(payload, render)


def docker(
    ref: RefArg = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="The folder to write the build context to.")] = Path(
        "docker"),
    port: Annotated[int, typer.Option("--port", help="The port the service listens on in the container.")] = 8000,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Write a Dockerfile, pinned requirements and the model bundle for serving a model version."""
    out = Output(json_mode)
    info, context = open_project(project).docker(ref, out=out_dir, port=port)
    payload = {"model": info.name, "version": info.version, "fingerprint": info.fingerprint, "out": str(out_dir),
               "base_image": context.base_image, "platform": context.platform, "requirements": context.pins,
               "files": sorted(k for k in context.files if not k.startswith(("lib/", "model/"))),
               "warnings": context.warnings}

    def render(console: Console) -> None:
        console.print(f"[green]Wrote[/] {escape(str(out_dir))}: Dockerfile ({context.base_image}"
                      + (f", {context.platform}" if context.platform else "") + f"), requirements.txt "
                      f"({len(context.pins)} pinned packages), lib/ (lockstep), model/ ({escape(info.name)}/"
                      f"{info.version})")
        for warning in context.warnings:
            console.print(f"[yellow]warning:[/] {escape(warning)}")
        tag = f"{info.name.lower()}:{info.version}"
        console.print(f"Build and run: docker build -t {tag} {escape(str(out_dir))} && docker run --rm -p "
                      f"{port}:{port} {tag}")

    out.result(payload, render)


def docs(
    ref: RefArg = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="The folder to write the documentation to.")] = Path(
        "model-docs"),
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Write documentation of a model version: a model card (README.md), Markdown and a self-contained HTML page
    with its plots and its lineage."""
    out = Output(json_mode)
    info, files = open_project(project).docs(ref, out=out_dir)
    payload = {"model": info.name, "version": info.version, "out": str(out_dir), "files": files}

    def render(console: Console) -> None:
        console.print(f"[green]Wrote[/] the documentation of {escape(info.name)}/{info.version} to "
                      f"{escape(str(out_dir))}: README.md (the model card), index.md, index.html (self-contained, "
                      f"open it in a browser) and {len(files) - 3} more file(s)")

    out.result(payload, render)


def lineage(
    ref: RefArg = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="The folder to write the picture to.")] = Path(
        "lineage"),
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Draw the lineage of a model version (raw snapshot, feature set, model, ONNX export, predictions,
    monitoring, verify and parity with their dates) as lineage.svg and lineage.png, with lineage.json."""
    out = Output(json_mode)
    info, graph = open_project(project).lineage(ref, out=out_dir)
    payload = {"model": info.name, "version": info.version, "out": str(out_dir), **graph.to_dict()}

    def render(console: Console) -> None:
        nodes = [n for column in graph.columns for n in column]
        console.print(f"[green]Wrote[/] the lineage of {escape(info.name)}/{info.version} to "
                      f"{escape(str(out_dir))}: lineage.svg, lineage.png, lineage.json")
        for node in nodes:
            console.print(f"  {escape(node.title)}: {escape('; '.join(node.lines))}", soft_wrap=True)

    out.result(payload, render)


def register(app: typer.Typer) -> None:
    app.command("docs")(command(docs))
    app.command("lineage")(command(lineage))
    app.command("docker")(command(docker))
    app.command("verify")(command(verify))
    app.command("parity")(command(parity))
    app.command("check")(command(check))
    app.add_typer(env_app, name="env")
