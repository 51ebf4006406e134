"""OpenLineage run events for lockstep's steps, built with the official client's classes.

Every step a :class:`~lockstep.project.Project` runs (``ingest``,
``features``, ``train``, ``promote``, ``predict``, ``monitor``, ``verify``,
and ``run`` around them) is one OpenLineage *run* of the job
``<project>.<step>`` in ``[lineage] namespace``: a START event when it
begins, then COMPLETE with its input and output datasets, or FAIL with the
error. Steps that ``run`` or the retraining loop start carry a ``parent``
facet naming that run.

Datasets are named by the OpenLineage naming conventions: a Delta table of
the store is ``file`` + its absolute path (or ``s3://BUCKET`` + its key), a
registered model is the registry's location (without a password) +
``models/<name>``; the version is the ``version`` facet (the Delta version,
the model version). The ``schema``, ``inputStatistics`` /
``outputStatistics`` (rows) and ``datasetType`` facets are the standard ones;
lockstep's own facets, all named ``lockstep``, hold the fingerprints, the
code fingerprint of the job and the MLflow run id. Their JSON schema ships
with the package (``openlineage_facets.json``).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    dataset_type_dataset,
    dataset_version_dataset,
    error_message_run,
    input_statistics_input_dataset,
    job_type_job,
    output_statistics_output_dataset,
    parent_run,
    processing_engine_run,
    schema_dataset,
)
from openlineage.client.generated.base import DatasetFacet, JobFacet, RunFacet
from openlineage.client.uuid import generate_new_uuid

from lockstep._version import __version__
from lockstep.core.config import Config
from lockstep.core.errors import LockstepError
from lockstep.registry.lineage_sink import LineageSink
from lockstep.registry.mlflow_registry import Registry
from lockstep.registry.refs import ModelRef
from lockstep.registry.versions import TAG, VersionInfo
from lockstep.store import Store

__all__ = ["FACETS_SCHEMA", "PRODUCER", "LineageEvents", "StepRun"]

#: Who made the events (a URI, as the specification asks).
PRODUCER = f"https://pypi.org/project/lockstep/{__version__}/"
#: The JSON schema of lockstep's own facets, shipped beside this module.
FACETS_SCHEMA = Path(__file__).with_name("openlineage_facets.json")
_FACETS_URL = f"{PRODUCER}openlineage_facets.json#/$defs/"

T = TypeVar("T")

log = logging.getLogger("lockstep.lineage")


@attr.define
class LockstepDatasetFacet(DatasetFacet):
    """What lockstep knows of a dataset: its kind and its data fingerprint."""

    kind: str
    fingerprint: str | None = attr.field(default=None)
    aliases: list[str] | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return _FACETS_URL + "LockstepDatasetFacet"


@attr.define
class LockstepJobFacet(JobFacet):
    """The step and its code: the fingerprint of the user code it runs (none for steps without any)."""

    project: str
    step: str
    lockstepVersion: str  # noqa: N815 - OpenLineage fields are camelCase
    codeFingerprint: str | None = attr.field(default=None)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return _FACETS_URL + "LockstepJobFacet"


@attr.define
class LockstepRunFacet(RunFacet):
    """The run's outcome: the MLflow run it is recorded as, whether it was skipped as up to date, and its verdict."""

    mlflowRunId: str | None = attr.field(default=None)  # noqa: N815
    skipped: bool | None = attr.field(default=None)
    outcome: dict[str, Any] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return _FACETS_URL + "LockstepRunFacet"


@dataclass
class Described:
    """What a finished step read and wrote, and what it found."""

    inputs: list[InputDataset] = field(default_factory=list)
    outputs: list[OutputDataset] = field(default_factory=list)
    code_fingerprint: str | None = None
    mlflow_run_id: str | None = None
    skipped: bool | None = None
    outcome: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepRun:
    """One run of a step."""

    step: str
    run_id: str
    parent: StepRun | None


class LineageEvents:
    """The events of one project's steps, sent to its ``[lineage]`` backends.

    Parameters
    ----------
    config : Config
    store : Store
    sink : LineageSink, optional
        Where the events go (default: the backends ``[lineage]`` names).
    """

    def __init__(self, config: Config, store: Store, sink: LineageSink | None = None) -> None:
        self.config = config
        self.store = store
        self.sink = sink if sink is not None else LineageSink(config.lineage, config.project_dir)
        self.namespace = config.lineage.namespace
        self._running: list[StepRun] = []

    def traced(self, step: str, work: Callable[[], T], call: dict[str, Any]) -> T:
        """Run ``work`` as one run of ``step``: START, then COMPLETE with its datasets, or FAIL and re-raise."""
        run = StepRun(step, str(generate_new_uuid()), self._running[-1] if self._running else None)
        self.sink.emit(self.event(RunState.START, run, Described()))
        self._running.append(run)
        try:
            result = work()
        except BaseException as exc:
            self._running.pop()
            state = RunState.ABORT if isinstance(exc, KeyboardInterrupt) else RunState.FAIL
            self.sink.emit(self.event(state, run, Described(), error=exc))
            raise
        self._running.pop()
        try:
            described = self.describe(step, result, call)
        except Exception as exc:  # noqa: BLE001 - the step succeeded; its lineage must never undo that
            log.warning("lineage: could not describe the datasets of %s (%s: %s); its COMPLETE event has none",
                        self.job_name(step), type(exc).__name__, exc)
            described = Described()
        self.sink.emit(self.event(RunState.COMPLETE, run, described))
        return result

    def event(self, state: RunState, run: StepRun, described: Described,
              error: BaseException | None = None) -> RunEvent:
        """The event of ``run`` reaching ``state``."""
        run_facets: dict[str, RunFacet] = {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=__version__, name="lockstep", openlineageAdapterVersion=__version__),
        }
        if run.parent is not None:
            run_facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=run.parent.run_id),
                job=parent_run.Job(namespace=self.namespace, name=self.job_name(run.parent.step)))
        if state != RunState.START:
            run_facets["lockstep"] = LockstepRunFacet(mlflowRunId=described.mlflow_run_id, skipped=described.skipped,
                                                      outcome=described.outcome)
        if error is not None:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=_message(error), programmingLanguage="python",
                stackTrace="".join(traceback.format_exception(error)))
        job_facets: dict[str, JobFacet] = {
            "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="LOCKSTEP",
                                                    jobType=run.step.upper()),
            "lockstep": LockstepJobFacet(project=self.config.project.name, step=run.step, lockstepVersion=__version__,
                                         codeFingerprint=described.code_fingerprint),
        }
        return RunEvent(eventType=state, eventTime=datetime.now(UTC).isoformat(), producer=PRODUCER,
                        run=Run(runId=run.run_id, facets=run_facets),
                        job=Job(namespace=self.namespace, name=self.job_name(run.step), facets=job_facets),
                        inputs=described.inputs, outputs=described.outputs)

    def job_name(self, step: str) -> str:
        return f"{self.config.project.name}.{step}"

    # ------------------------------------------------------------------ datasets of each step

    def describe(self, step: str, result: Any, call: dict[str, Any]) -> Described:
        """The datasets of a finished step, from its result and the arguments it was called with."""
        describer: Callable[[Any, dict[str, Any]], Described] = getattr(self, f"_{step}")
        return describer(result, call)

    def _ingest(self, result: Any, call: dict[str, Any]) -> Described:
        snapshot = result.snapshot
        source = snapshot.source or {}
        inputs = [self.file_input(self.config.project_dir / f["path"], kind="source", fingerprint=f.get("fingerprint"))
                  for f in source.get("files", [])]
        if source.get("query") is not None:
            inputs.append(InputDataset(namespace="sql", name=str(source.get("description") or "query"), facets={
                "lockstep": LockstepDatasetFacet(kind="source", fingerprint=source.get("query_fingerprint"))}))
        raw = self.table_output(self.store.snapshots.path, snapshot.version, "raw", snapshot.fingerprint,
                                snapshot.rows, snapshot.schema)
        return Described(inputs=inputs, outputs=[raw], skipped=not result.changed,
                         outcome={"raw_version": snapshot.version, "quarantined": result.quarantined})

    def _features(self, result: Any, call: dict[str, Any]) -> Described:
        info = result.info
        raw = self.table_input(self.store.snapshots.path, info.raw_version, "raw", info.raw_fingerprint)
        schema = {info.id_column: "id", **info.dtypes, info.label_column: "label"}
        out = self.table_output(self.store.features(info.name).path, info.version, "features", info.fingerprint,
                                info.rows, schema)
        return Described(inputs=[raw], outputs=[out], code_fingerprint=(info.code or {}).get("fingerprint"),
                         skipped=result.skipped, outcome={"features_version": info.version})

    def _train(self, result: Any, call: dict[str, Any]) -> Described:
        info: VersionInfo = result.version
        return Described(inputs=self._trained_on(info), outputs=[self.model_output(info)],
                         code_fingerprint=_code(info), mlflow_run_id=info.run_id,
                         skipped=result.skipped, outcome={"model": info.name, "version": info.version})

    def _promote(self, result: Any, call: dict[str, Any]) -> Described:
        info: VersionInfo = result.version
        outputs = [self.model_output(info, aliases=["champion"])] if result.promoted else []
        return Described(inputs=[self.model_input(info)], outputs=outputs,
                         code_fingerprint=_code(info), mlflow_run_id=info.run_id,
                         outcome={"promoted": result.promoted, "version": info.version,
                                  "previous_champion": result.previous.version if result.previous else None})

    def _predict(self, result: Any, call: dict[str, Any]) -> Described:
        info = self._version(result.model, result.version)
        inputs = [self.model_input(info)] if info is not None else []
        if call.get("input") is not None:
            inputs.append(self.file_input(Path(call["input"]), kind="prediction input",
                                          fingerprint=result.input_fingerprint))
        else:
            features = self.store.features(self.config.features.name)
            version = call.get("features_version")
            inputs.append(self.table_input(features.path, version, "features", None))
        output = self.file_output(result.output, "predictions", result.output_fingerprint, result.rows)
        return Described(inputs=inputs, outputs=[output],
                         code_fingerprint=_code(info),
                         outcome={"batch_run": result.run_id, "rows": result.rows, "quarantined": result.quarantined})

    def _monitor(self, result: Any, call: dict[str, Any]) -> Described:
        report, payload = result
        info = self._version(report.model, report.version)
        inputs = [self.model_input(info)] if info is not None else []
        if call.get("data") is not None:
            inputs.append(self.file_input(Path(call["data"]), kind="monitoring window", rows=report.rows))
        else:
            inputs.append(self.table_input(self.store.audit.root, None, "audit log", None, rows=report.rows))
        log = self.table_output(self.store.monitoring.root, None, "monitoring log", None, 1, None)  # one row added
        return Described(inputs=inputs, outputs=[log],
                         code_fingerprint=_code(info),
                         mlflow_run_id=payload.get("mlflow_run"),
                         outcome={"window": report.window, "data_drift": report.data_drift,
                                  "degraded": report.degraded, "actions": [a.get("action") for a in report.actions]})

    def _verify(self, result: Any, call: dict[str, Any]) -> Described:
        info = self._version(result.model, result.version)
        inputs = [self.model_input(info), *self._trained_on(info)] if info is not None else []
        return Described(inputs=inputs, outputs=[],
                         code_fingerprint=_code(info),
                         outcome={"reproduced": result.reproduced, "cause": result.cause,
                                  "stages": {s.name: s.status for s in result.stages}})

    def _run(self, result: Any, call: dict[str, Any]) -> Described:
        return Described(outcome={"steps": {s.name: s.status for s in result.steps}, "reproduced": result.reproduced,
                                  "identical": result.identical})

    # ------------------------------------------------------------------ datasets

    def _trained_on(self, info: VersionInfo) -> list[InputDataset]:
        tags = info.tags
        features = self.store.features(tags.get(f"{TAG}.features.name", self.config.features.name))
        out = [self.table_input(features.path, _int(tags.get(f"{TAG}.features.version")), "features",
                                tags.get(f"{TAG}.features.fingerprint"))]
        if f"{TAG}.raw.version" in tags:
            out.append(self.table_input(self.store.snapshots.path, _int(tags[f"{TAG}.raw.version"]), "raw",
                                        tags.get(f"{TAG}.raw.fingerprint")))
        return out

    @cached_property
    def registry(self) -> Registry:
        return Registry.of(self.config)

    def _version(self, name: str, version: int) -> VersionInfo | None:
        try:
            return self.registry.version(ModelRef(name=name, version=version))
        except LockstepError:
            return None

    def model_input(self, info: VersionInfo) -> InputDataset:
        return InputDataset(namespace=self.registry.location, name=f"models/{info.name}",
                            facets=self._model_facets(info))

    def model_output(self, info: VersionInfo, aliases: list[str] | None = None) -> OutputDataset:
        return OutputDataset(namespace=self.registry.location, name=f"models/{info.name}",
                             facets=self._model_facets(info, aliases))

    def _model_facets(self, info: VersionInfo, aliases: list[str] | None = None) -> dict[str, DatasetFacet]:
        return {
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(info.version)),
            "datasetType": dataset_type_dataset.DatasetTypeDatasetFacet(datasetType="MODEL", subType="MLFLOW"),
            "lockstep": LockstepDatasetFacet(kind="model", fingerprint=info.fingerprint or None, aliases=aliases),
        }

    def table_input(self, path: Any, version: int | None, kind: str, fingerprint: str | None, *,
                    rows: int | None = None) -> InputDataset:
        namespace, name = dataset_name(path)
        return InputDataset(namespace=namespace, name=name, facets=_table_facets(version, kind, fingerprint, None),
                            inputFacets=_input_rows(rows))

    def table_output(self, path: Any, version: int | None, kind: str, fingerprint: str | None, rows: int | None,
                     schema: dict[str, str] | None) -> OutputDataset:
        namespace, name = dataset_name(path)
        facets = _table_facets(version, kind, fingerprint, schema)
        return OutputDataset(namespace=namespace, name=name, facets=facets,
                             outputFacets=_output_rows(rows))

    def file_input(self, path: Path, *, kind: str, fingerprint: str | None = None,
                   rows: int | None = None) -> InputDataset:
        namespace, name = dataset_name(path)
        return InputDataset(namespace=namespace, name=name, facets=_file_facets(kind, fingerprint),
                            inputFacets=_input_rows(rows))

    def file_output(self, where: str, kind: str, fingerprint: str | None, rows: int) -> OutputDataset:
        namespace, name = dataset_name(where)  # a path as the command was given it (or the store's table)
        return OutputDataset(namespace=namespace, name=name, facets=_file_facets(kind, fingerprint),
                             outputFacets=_output_rows(rows))


def dataset_name(location: Any) -> tuple[str, str]:
    """OpenLineage's namespace and name of a file or folder: ``file`` and the absolute path, or
    ``s3://BUCKET`` and the key."""
    text = str(location)
    if "://" in text:
        scheme, rest = text.split("://", 1)
        bucket, _, key = rest.partition("/")
        return f"{scheme}://{bucket}", key.strip("/")
    return "file", Path(text).resolve().as_posix()


def _table_facets(version: int | None, kind: str, fingerprint: str | None,
                  schema: dict[str, str] | None) -> dict[str, DatasetFacet]:
    facets: dict[str, DatasetFacet] = {
        "datasetType": dataset_type_dataset.DatasetTypeDatasetFacet(datasetType="TABLE", subType="DELTA"),
        "lockstep": LockstepDatasetFacet(kind=kind, fingerprint=fingerprint),
    }
    if version is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(version))
    if schema:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=[
            schema_dataset.SchemaDatasetFacetFields(name=name, type=dtype, ordinal_position=i)
            for i, (name, dtype) in enumerate(schema.items(), start=1)])
    return facets


def _file_facets(kind: str, fingerprint: str | None) -> dict[str, DatasetFacet]:
    return {"datasetType": dataset_type_dataset.DatasetTypeDatasetFacet(datasetType="FILE"),
            "lockstep": LockstepDatasetFacet(kind=kind, fingerprint=fingerprint)}


def _input_rows(rows: int | None) -> dict[str, Any]:
    if rows is None:
        return {}
    return {"inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet(rowCount=rows)}


def _output_rows(rows: int | None) -> dict[str, Any]:
    if rows is None:
        return {}
    return {"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)}


def _code(info: VersionInfo | None) -> str | None:
    """The fingerprint of the code a model version was trained with."""
    return info.tags.get(f"{TAG}.code.fingerprint") if info is not None else None


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _message(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    hint = getattr(error, "hint", None)
    return f"{text} ({hint})" if hint else text
