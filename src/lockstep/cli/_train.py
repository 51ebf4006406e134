"""``lockstep train``, ``lockstep promote``, ``lockstep models list|show`` and ``lockstep ui``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from lockstep.cli._context import open_models
from lockstep.cli._options import ComputeOpt, JsonOpt, ProjectOpt
from lockstep.cli._output import Output, command
from lockstep.cli._render import num, short

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

__all__ = ["register"]

models_app = typer.Typer(rich_markup_mode=None, help="Registered models: list, show.", no_args_is_help=True)


def _metrics_table(title: str, summary: dict[str, dict[str, float]], primary: str | None = None):
    from rich.table import Table

    table = Table(title=title)
    for col in ("metric", "mean", "std", "95% interval"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, s in summary.items():
        label = f"[bold]{name}[/]" if name == primary else name
        interval = f"{num(s.get('ci_low'))} .. {num(s.get('ci_high'))}" if s.get("ci_low") is not None else "-"
        table.add_row(label, num(s.get("mean")), num(s.get("std")), interval)
    return table


def train(
    features_version: Annotated[int | None, typer.Option("--features-version", help="The feature set version "
                                                         "(default: the latest).")] = None,
    candidate: Annotated[str | None, typer.Option("--candidate", "-c", help="Train [train.candidates.NAME] "
                                                  "instead of [train] model.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Train even if a run with the same inputs exists.")] = False,
    compute: ComputeOpt = None,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Train a model on a feature set version, evaluate it over seeds, track it in MLflow and register it."""
    from lockstep.training.train import train as train_model

    out = Output(json_mode)
    catalog, registry = open_models(project)
    with out.progress("Training") as step:
        catalog.store.ensure()
        result = catalog.traced("train", lambda: train_model(
            catalog.config, catalog.store, registry, features_version=features_version, candidate=candidate,
            force=force, progress=step, compute=compute))

    def render(console: Console) -> None:
        info = result.version
        payload = result.to_dict()
        if result.skipped:
            console.print(f"Model {escape(info.name)} version {info.version} is up to date: a finished run had the "
                          f"same features, code, configuration and environment (--force to retrain)")
        else:
            console.print(f"[green]Registered {escape(info.name)} version {info.version}[/] "
                          f"(alias {', '.join(info.aliases) or '-'}), run {info.run_id}")
        console.print(f"  candidate {payload['candidate']}, features version {payload['features_version']}, "
                      f"fingerprint {short(info.fingerprint)}")
        if payload.get("best_params"):
            console.print(f"  best parameters: {escape(str(payload['best_params']))}")
        if payload.get("thread_invariant") not in (None, ""):
            same = str(payload["thread_invariant"]).lower() == "true"
            console.print("  thread check: " + ("identical model with another thread count" if same else
                          "[yellow]the model differs with another thread count[/] (see docs/training.md)"))
        seeds = info.tags.get("lockstep.seeds", "")
        console.print(_metrics_table(f"Test metrics over seeds {seeds}", info.metric_summary("test"),
                                     catalog.config.primary_metric))
        console.print("Next: [bold]lockstep promote[/] (checks the gates), or open [bold]lockstep ui[/]")

    out.result(result.to_dict(), render)


def promote(
    ref: Annotated[str | None, typer.Argument(help="MODEL[/VERSION] or MODEL@ALIAS (default: the project's "
                                              "model @challenger).")] = None,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Make a model version the champion, only if the promotion gates pass (exit 3 if they fail)."""
    from lockstep.evaluation.promotion import promote as promote_version
    out = Output(json_mode)
    catalog, registry = open_models(project)
    result = catalog.traced("promote", lambda: promote_version(catalog.config, catalog.store, registry,
                                                                catalog.model_ref(ref, "challenger")))

    def render(console: Console) -> None:
        report = result.report
        for rule in report.rules:
            mark = "[green]pass[/]" if rule.passed else "[red]FAIL[/]"
            console.print(f"  {mark} {escape(rule.rule)}: {escape(rule.detail)}")
        if not report.rules:
            console.print("  no gates configured and no champion to beat")
        name = f"{result.version.name}/{result.version.version}"
        if result.was_champion and not result.promoted:
            console.print(f"[red]{escape(name)} is the champion but fails the gates now[/]: "
                          + "; ".join(escape(r.rule) for r in report.failures()))
        elif result.promoted:
            console.print(f"[green]{escape(name)} is the champion[/]"
                          + (f" (was version {result.previous.version})" if result.previous
                             and result.previous.version != result.version.version else ""))
        else:
            console.print(f"[red]{escape(name)} was not promoted[/]: "
                          + "; ".join(escape(r.rule) for r in report.failures()))

    out.result(result.to_dict(), render)
    if not result.promoted:
        raise typer.Exit(3)


@models_app.command("list")
@command
def models_list(project: ProjectOpt = Path("."), json_mode: JsonOpt = False) -> None:
    """List the versions of the project's registered model, with aliases and test metrics."""
    from rich.table import Table

    out = Output(json_mode)
    catalog, registry = open_models(project)
    versions = registry.versions(catalog.config.model_name)
    primary = catalog.config.primary_metric

    def render(console: Console) -> None:
        if not versions:
            console.print("No model registered yet: run `lockstep train`.")
            return
        table = Table(title=f"Registered model '{escape(catalog.config.model_name)}'")
        for col in ("version", "aliases", "created (UTC)", "candidate", "features", f"test {primary}", "fingerprint"):
            table.add_column(col, justify="right" if col in ("version", "features") else "left")
        for v in versions:
            stat = v.metric_summary("test").get(primary, {})
            table.add_row(str(v.version), ", ".join(v.aliases), v.created.replace("+00:00", "").replace("T", " "),
                          v.tags.get("lockstep.candidate", ""), v.tags.get("lockstep.features.version", ""),
                          f"{num(stat.get('mean'))} ± {num(stat.get('std'))}", short(v.fingerprint))
        console.print(table)

    out.result([v.to_dict() for v in versions], render)


@models_app.command("show")
@command
def models_show(
    ref: Annotated[str | None, typer.Argument(help="MODEL, MODEL@ALIAS or MODEL/VERSION (default: the latest "
                                              "version of the project's model).")] = None,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Show a model version: aliases, metrics with their spread, lineage back to the raw snapshot."""
    out = Output(json_mode)
    catalog, registry = open_models(project)
    info = registry.version(catalog.model_ref(ref))

    def render(console: Console) -> None:
        t = info.tags
        console.print(f"[bold]{escape(info.name)} version {info.version}[/]  aliases: {', '.join(info.aliases) or '-'}")
        console.print(f"  fingerprint  {info.fingerprint}")
        console.print(f"  run          {info.run_id}   created {info.created}")
        console.print(f"  model        {escape(t.get('lockstep.model.ref', ''))} (candidate "
                      f"{escape(t.get('lockstep.candidate', ''))}), best parameters "
                      f"{escape(info.params.get('best_params', '{}'))}")
        console.print(f"  seeds        {t.get('lockstep.seeds')}   threads {t.get('lockstep.threads')}   "
                      f"thread check {t.get('lockstep.thread_invariant', 'not run')}")
        console.print("[bold]Lineage[/]")
        console.print(f"  features     '{escape(t.get('lockstep.features.name', ''))}' version "
                      f"{t.get('lockstep.features.version')}  {short(t.get('lockstep.features.fingerprint'))}")
        console.print(f"  raw data     snapshot {t.get('lockstep.raw.version')}  "
                      f"{short(t.get('lockstep.raw.fingerprint'))}")
        console.print(f"  code         {short(t.get('lockstep.code.fingerprint'))}   config "
                      f"{short(t.get('lockstep.config.fingerprint'))}   environment "
                      f"{short(t.get('lockstep.environment.fingerprint'))}")
        if t.get("lockstep.git.commit"):
            dirty = " (dirty)" if t.get("lockstep.git.dirty") == "True" else ""
            console.print(f"  git          {t['lockstep.git.commit'][:12]}{dirty}")
        console.print("[bold]Checks[/]")
        for kind, key, good in (("verify", "reproduced", "reproduced"), ("parity", "identical", "identical")):
            raw = t.get(f"lockstep.{kind}")
            if not raw:
                console.print(f"  {kind:12} not run yet: lockstep {kind} {escape(info.name)}/{info.version}")
                continue
            result = json.loads(raw)
            verdict = f"[green]{good}[/]" if result.get(key) else f"[red]not {good}[/]"
            console.print(f"  {kind:12} {verdict} ({result.get('time')})"
                          + (f": {escape(str(result.get('cause')))}" if result.get("cause") else ""))
        for split in ("test", "valid"):
            summary = info.metric_summary(split)
            if summary:
                console.print(_metrics_table(f"{split.capitalize()} metrics", summary,
                                             catalog.config.primary_metric))

    out.result(info.to_dict(), render)


def ui(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 5000,
    workers: Annotated[int, typer.Option("--workers", min=1,
                                         help="Server processes (MLflow's default of 4 is for shared servers; "
                                              "one serves a person and starts four times faster).")] = 1,
    project: ProjectOpt = Path("."),
) -> None:
    """Open the MLflow UI on this project's store (127.0.0.1 only)."""
    import sys

    proj, registry = open_models(project)
    typer.echo(f"MLflow UI for {proj.config.project.name}: http://127.0.0.1:{port} (Ctrl-C to stop)")
    mlflow_exe = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_exe), "ui", "--backend-store-uri", registry.uri, "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers)]
    raise typer.Exit(_until_stopped(cmd))


class _Stop(Exception):
    """SIGTERM arrived while the UI's server ran."""


def _until_stopped(cmd: list[str]) -> int:
    """Run a server and return its exit code; on Ctrl-C or SIGTERM stop it and every process it started.

    The server runs in a process group of its own, so a terminal's Ctrl-C reaches only this process (MLflow's
    server would print a traceback per worker): this process then sends SIGTERM to the whole group, whose
    servers shut down quietly, waits up to 10 s, kills what is left, and exits 0. The workers are never left
    running, also when only this process is signalled (``kill -INT``, ``kill -TERM``).
    """
    import os
    import signal
    import subprocess

    def stop(_sig: int, _frame: object) -> None:
        raise _Stop

    previous = signal.signal(signal.SIGTERM, stop)
    server = subprocess.Popen(cmd, start_new_session=True)
    try:
        return server.wait()
    except (KeyboardInterrupt, _Stop):
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        typer.echo("Stopped: the UI's server and its workers have exited", err=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
    app.command("train")(command(train))
    app.command("promote")(command(promote))
    app.add_typer(models_app, name="models")
    app.command("ui")(command(ui))
