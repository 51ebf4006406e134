"""``lockstep predict``, ``lockstep serve`` and ``lockstep audit show|export``."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from lockstep.cli._context import open_catalog, open_models
from lockstep.cli._options import ComputeOpt, JsonOpt, ProjectOpt
from lockstep.cli._output import Output, command, fmt_int
from lockstep.cli._render import short

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from lockstep.core.sections import ServeConfig
    from lockstep.inference.service import ServeSettings

__all__ = ["register"]

audit_app = typer.Typer(rich_markup_mode=None, help="The audit log of the prediction service: show, export.",
                        no_args_is_help=True)
export_app = typer.Typer(rich_markup_mode=None, help="Export a registered model: onnx.", no_args_is_help=True)
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="NAME@ALIAS or NAME/VERSION (default: the "
                                              "project's model @champion).")]


def predict(
    output: Annotated[str, typer.Option("--output", "-o", help="A .parquet or .csv file, a folder ending in / (one "
                                        "Parquet file per piece), or with --format delta a table name in the "
                                        "store.", show_default=False)],
    input: Annotated[Path | None, typer.Option("--input", "-i", help="Raw rows: a CSV or Parquet file, a folder "
                                               "or glob of Parquet files (quoted), or a Delta table's folder.")] = None,
    features_version: Annotated[int | None, typer.Option("--features-version", help="Predict the raw rows behind "
                                                         "this feature set version.")] = None,
    model: ModelOpt = None,
    fmt: Annotated[str | None, typer.Option("--format", help="parquet, csv or delta (default: the output's "
                                            "extension).")] = None,
    quarantine: Annotated[bool, typer.Option("--quarantine", help="Set rows that break the schema aside.")] = False,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", help="Rows per chunk (bounds memory).")] = 100_000,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
    compute: ComputeOpt = None,
) -> None:
    """Predict a file of raw rows with a registered model; every output row names the model version."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lockstep.inference.batch import predict_batch
    out = Output(json_mode)
    catalog, registry = open_models(project)
    ref = catalog.model_ref(model, "champion")
    path = input.resolve() if input is not None else None
    if json_mode or not out.err.is_terminal:
        result = catalog.traced("predict", lambda: predict_batch(
            catalog.config, catalog.store, registry, ref, input_path=path, features_version=features_version,
            output=output, fmt=fmt, quarantine=quarantine, chunk_rows=chunk_rows, compute=compute),
            input=path, features_version=features_version)
    else:
        with Progress(TextColumn("Predicting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=out.err, transient=True) as bar:
            task = bar.add_task("rows", total=None)
            result = catalog.traced("predict", lambda: predict_batch(
                catalog.config, catalog.store, registry, ref, input_path=path, features_version=features_version,
                output=output, fmt=fmt, quarantine=quarantine, chunk_rows=chunk_rows, compute=compute,
                progress=lambda done, total: bar.update(task, completed=done, total=total)),
                input=path, features_version=features_version)

    def render(console: Console) -> None:
        console.print(f"[green]{fmt_int(result.rows)} predictions written[/] to {escape(result.output)} by "
                      f"{escape(result.model)}/{result.version} (fingerprint {short(result.fingerprint)}) "
                      f"in {result.seconds:.2f} s")
        console.print(f"  input {escape(result.input)}, fingerprint {short(result.input_fingerprint)}; "
                      f"output fingerprint {short(result.output_fingerprint)}; run {result.run_id}")
        if result.quarantined:
            console.print(f"[yellow]{fmt_int(result.quarantined)} row(s) set aside in the quarantine table[/]")

    out.result(result.to_dict(), render)


def serve(
    model: ModelOpt = None,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default: [serve] host, "
                                             "127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: [serve] port, 8000).")] = None,
    runtime: Annotated[str | None, typer.Option("--runtime", help="sklearn or onnx (default: [serve] "
                                                "runtime).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Worker processes (default: [serve] "
                                                "workers).")] = None,
    max_batch: Annotated[int | None, typer.Option("--max-batch", min=1, help="Most records per request (default: "
                                                  "[serve] max_batch).")] = None,
    max_body_bytes: Annotated[int | None, typer.Option("--max-body-bytes", min=1, help="Largest request body "
                                                       "(default: [serve] max_body_bytes).")] = None,
    audit: Annotated[bool | None, typer.Option("--audit/--no-audit", help="Record every request in the audit log "
                                               "(default: [serve] audit).")] = None,
    bundle: Annotated[Path | None, typer.Option("--bundle", help="Serve a model bundle folder (written by "
                                                "`lockstep docker`) instead of a registered version; no project "
                                                "is needed.")] = None,
    store: Annotated[Path | None, typer.Option("--store", help="With --bundle: the folder for the audit log "
                                               "(default: ./.lockstep-serve).")] = None,
    public_key: Annotated[Path | None, typer.Option("--public-key", help="Serve only a model signed with the "
                                                    "matching private key (default: [registry] public_key).")] = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Serve a registered model over HTTP (FastAPI on uvicorn), with validation and an audit log."""
    import uvicorn

    from lockstep.inference.service import check_audit_writable, create_app, load_serving_model

    settings, cfg = _settings(model, project, bundle, store, public_key, runtime=runtime, max_batch=max_batch,
                              max_body_bytes=max_body_bytes, audit=audit)
    chosen_runtime = settings.runtime
    serving = load_serving_model(settings)  # refuse a model that does not check out before listening
    check_audit_writable(settings)  # and an audit log that can never be written
    host, port, workers = host or cfg.host, port if port is not None else cfg.port, workers or cfg.workers
    info = serving.info
    typer.echo(f"Serving {info.name}/{info.version} (fingerprint {short(info.fingerprint)}, runtime "
               f"{chosen_runtime}) on http://{host}:{port} - docs at /docs"
               + (", bearer token required" if settings.token else ""), err=True)
    with _stopped_by_sigterm():
        if workers > 1:
            os.environ["LOCKSTEP_SERVE_SETTINGS"] = settings.to_env()
            uvicorn.run("lockstep.inference.service:create_app_from_env", factory=True, host=host, port=port,
                        workers=workers, log_level="warning", access_log=False)
        else:
            uvicorn.run(create_app(settings, serving), host=host, port=port, log_level="warning", access_log=False)


def _settings(model: str | None, project: Path, bundle: Path | None, store: Path | None, public_key: Path | None,
              **options: Any) -> tuple[ServeSettings, ServeConfig]:
    """The service's settings from the options, the project's ``[serve]`` section and its defaults."""
    from lockstep.core.config import CONFIG_FILE
    from lockstep.core.errors import UserError
    from lockstep.core.sections import MonitorConfig, ServeConfig
    from lockstep.inference.service import ServeSettings
    from lockstep.registry.bundle import Bundle

    if bundle is not None:
        if model is not None:
            raise UserError("--model and --bundle exclude each other: a bundle holds one version")
        proj = open_catalog(project) if (project / CONFIG_FILE).is_file() else None
        cfg = proj.config.serve if proj else ServeConfig()
        window = proj.config.monitor.window if proj else MonitorConfig().window
        info = Bundle(bundle).info
        store_root, experiment = str((store or Path(".lockstep-serve")).resolve()), ""
        model_text, default_name = f"{info.name}/{info.version}", info.name
        shared: dict[str, Any] = {}
    else:
        if store is not None:
            raise UserError("--store only applies with --bundle (a project's service uses the project's store)")
        proj = open_catalog(project)
        cfg = proj.config.serve
        window = proj.config.monitor.window
        store_root, experiment = str(proj.store.root), proj.config.project.name
        model_text, default_name = model or cfg.model, proj.config.model_name
        shared = {"storage_options": dict(proj.config.project.storage_options) or None,
                  "tracking_uri": proj.config.registry.tracking_uri, "artifacts": proj.config.registry.artifacts}
    chosen_runtime = options["runtime"] or cfg.runtime
    if chosen_runtime not in ("sklearn", "onnx"):
        raise UserError(f"--runtime must be sklearn or onnx, got {chosen_runtime!r}")
    audit = options["audit"]
    settings = ServeSettings(
        store_root=store_root, experiment=experiment, model=model_text,
        default_name=default_name, runtime=chosen_runtime, max_batch=options["max_batch"] or cfg.max_batch,
        max_body_bytes=options["max_body_bytes"] or cfg.max_body_bytes, allow_unknown_fields=cfg.allow_unknown_fields,
        token=os.environ.get(cfg.token_env) or None, poll_seconds=float(cfg.poll_seconds),
        audit=cfg.audit if audit is None else audit,
        bundle=str(bundle.resolve()) if bundle is not None else None, drift_window=window,
        public_key=str(public_key.resolve()) if public_key is not None else (
            str(proj.config.public_key) if proj is not None and proj.config.public_key else None),
        **shared,
    )
    return settings, cfg


class _Terminated(Exception):
    """SIGTERM arrived and uvicorn has shut down gracefully."""


@contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """Exit 0 after a graceful shutdown on SIGTERM (how container runtimes stop a service).

    uvicorn finishes the requests in flight, then raises the signal again with the handler it found, so
    that the process ends as the signal would have ended it (status 143); this handler makes that a
    normal exit instead.
    """
    def terminated(_sig: int, _frame: Any) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    except _Terminated:
        typer.echo("Stopped (SIGTERM): requests in flight were answered and audited", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    from lockstep.core.errors import UserError

    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{text!r} is not an ISO date or time", hint="for example 2026-11-27 or "
                        "2026-11-27T08:30:00") from None


@audit_app.command("show")
@command
def audit_show(
    since: Annotated[str | None, typer.Option("--since", help="From this time (ISO 8601, UTC if no zone).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Before this time.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model (NAME or NAME/VERSION).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="The most recent records to show.")] = 20,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Show the most recent audit records."""
    from rich.table import Table

    out = Output(json_mode)
    table = open_catalog(project).store.audit.read(_when(since), _when(until), model)
    total = table.num_rows
    recent = table.slice(max(0, total - limit)).to_pylist()

    def render(console: Console) -> None:
        view = Table(title=f"Audit log: {fmt_int(total)} record(s), the last {len(recent)}")
        for col in ("time (UTC)", "request id", "status", "model", "rows", "latency ms", "outputs"):
            view.add_column(col)
        for r in recent:
            outputs = (r["outputs"] or r["error"] or "")[:60]
            view.add_row(r["time"].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], r["request_id"], str(r["status"]),
                         f"{r['model_name']}/{r['model_version']}", str(r["rows"]), f"{r['latency_ms']:.1f}",
                         escape(outputs))
        console.print(view)

    out.result({"total": total, "records": recent}, render)


@audit_app.command("export")
@command
def audit_export(
    file: Annotated[Path, typer.Argument(help="A .parquet or .csv file.", show_default=False)],
    since: Annotated[str | None, typer.Option("--since")] = None,
    until: Annotated[str | None, typer.Option("--until")] = None,
    model: Annotated[str | None, typer.Option("--model")] = None,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Export audit records to a Parquet or CSV file."""
    from lockstep.core.errors import UserError
    from lockstep.store import FileOutput

    out = Output(json_mode)
    table = open_catalog(project).store.audit.read(_when(since), _when(until), model)
    suffix = file.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise UserError(f"cannot tell the format of {file} from its extension", hint="use .parquet or .csv")
    writer = FileOutput(file, "parquet" if suffix == ".parquet" else "csv")
    writer.write(table)
    writer.commit()
    out.result({"file": str(file), "records": table.num_rows},
               lambda console: console.print(f"{fmt_int(table.num_rows)} audit record(s) written to {file}"))


@export_app.command("onnx")
@command
def export_onnx(
    ref: Annotated[str | None, typer.Argument(help="MODEL@ALIAS or MODEL/VERSION (default: @champion).")] = None,
    project: ProjectOpt = Path("."),
    json_mode: JsonOpt = False,
) -> None:
    """Convert a registered model to ONNX, check it against scikit-learn on the test split, store it."""
    from lockstep.inference.onnx.export import export_onnx as export_version
    out = Output(json_mode)
    catalog, registry = open_models(project)
    result = export_version(catalog.store, registry, catalog.model_ref(ref, "champion"))

    def render(console: Console) -> None:
        p = result.parity
        console.print(f"[green]Exported {escape(result.to_dict()['model'])}/{result.version.version} to ONNX[/]: "
                      f"{escape(result.path)}")
        if result.version.tags.get("lockstep.task") == "regression":
            console.print(f"  parity on {fmt_int(p['rows'])} test rows: largest difference {p['max_abs_diff']:.3g}, "
                          f"{p['max_rel_diff']:.3g} of the value (tolerance {p['tolerance']:g} of the value)")
        else:
            console.print(f"  parity on {fmt_int(p['rows'])} test rows: {p['label_mismatches']} label mismatches, "
                          f"largest probability difference {p['max_abs_diff']:.3g} (tolerance {p['tolerance']:g})")
        console.print("  serve it with: lockstep serve --runtime onnx")

    out.result(result.to_dict(), render)


def register(app: typer.Typer) -> None:
    app.command("predict")(command(predict))
    app.command("serve")(command(serve))
    app.add_typer(audit_app, name="audit")
    app.add_typer(export_app, name="export")
