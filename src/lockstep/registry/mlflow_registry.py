"""The embedded MLflow tracking server and model registry of a store.

Every training run is an MLflow run (parameters, per-seed and aggregate
metrics, lineage tags, plots, predictions, the environment) and registers a
model version that gets the alias ``challenger``. Registered models are the
whole path from raw columns to prediction, saved with skops (never pickle)
with the user's modules as ``code_paths``, so they load from the registry
alone.

Loading checks, before deserializing anything, that the model file's hash
and its list of trusted types are those recorded at registration, then that
the loaded model's fingerprint is the recorded one.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import mlflow
import mlflow.sklearn
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from lockstep.core.config import Config
from lockstep.core.errors import FileSystemError, IntegrityError, NotFoundError, StoreError, UserError
from lockstep.core.fingerprint import fingerprint_bytes
from lockstep.core.schema import ModelSchema
from lockstep.registry.loading import SKOPS_FILE, file_digest, load_checked, stored_code
from lockstep.registry.refs import ModelRef
from lockstep.registry.relocation import relocate
from lockstep.registry.signing import claims_of, private_key, sign_model
from lockstep.registry.stored_code import StoredCode
from lockstep.registry.versions import TAG, LoadedModel, TrainingRecord, VersionInfo
from lockstep.store.locks import exclusive

__all__ = ["Registry"]

_ARTIFACTS_DIR = "/mlartifacts/"
#: Store folders whose registry was checked for a move in this process.
_RELOCATED: set[str] = set()


class Registry:
    """The MLflow tracking store and model registry of a lockstep store.

    Parameters
    ----------
    root : Path
        The store folder (``.lockstep``).
    experiment : str
        The MLflow experiment runs go to (the project's name).
    public_key : Path, optional
        Sign every version registered and verify every version loaded with
        this key pair (see :mod:`lockstep.registry.signing`).
    """

    def __init__(self, root: Path, experiment: str, public_key: Path | None = None) -> None:
        self.root = Path(root)
        self.experiment = experiment
        self.public_key = Path(public_key) if public_key is not None else None

    @classmethod
    def of(cls, config: Config) -> Registry:
        """The registry of a project: in its store, its experiment named after the project, its public key."""
        return cls(config.store_path, experiment=config.project.name, public_key=config.public_key)

    @property
    def uri(self) -> str:
        return f"sqlite:///{(self.root / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        return (self.root / _ARTIFACTS_DIR.strip("/")).resolve()

    def exists(self) -> bool:
        return (self.root / "mlflow.db").exists()

    def relocate(self) -> list[str]:
        """Point the registry's recorded artifact locations at this store's folder, if it was moved or copied
        (see :func:`lockstep.registry.relocation.relocate`); the old roots."""
        return relocate(self.root)

    def _create(self) -> None:
        """Create the tracking database, one process at a time: MLflow's migrations are not safe to run twice
        at once (a second process died with "duplicate column name")."""
        self.root.mkdir(parents=True, exist_ok=True)
        with exclusive(self.root / "locks" / "registry.lock", "registry creation"):
            with _quiet():
                mlflow.MlflowClient(tracking_uri=self.uri, registry_uri=self.uri).search_experiments(max_results=1)

    @contextmanager
    def _mlflow(self) -> Iterator[Any]:
        """MLflow, pointed at this store for the duration of the block (restored afterwards)."""
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        if str(self.root.resolve()) not in _RELOCATED:
            self.relocate()
            _RELOCATED.add(str(self.root.resolve()))
        if not self.exists():
            self._create()

        for name in ("mlflow", "alembic", "mlflow.store", "mlflow.tracking"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.root.mkdir(parents=True, exist_ok=True)
        previous = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        try:
            yield mlflow
        except Exception as exc:  # a full disk or a read-only registry is the user's to fix, and named
            error = FileSystemError.of(exc, "write the model registry", self.root)
            if error is None:
                raise
            raise error from None
        finally:
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])

    def _client(self, mlflow: Any) -> Any:
        return mlflow.MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _experiment_id(self, mlflow: Any) -> str:
        client = self._client(mlflow)
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            return str(experiment.experiment_id)
        location = (self.artifact_root / self.experiment).as_uri()
        return str(client.create_experiment(self.experiment, artifact_location=location))

    # ------------------------------------------------------------------ runs

    def find_run(self, inputs: str) -> dict[str, Any] | None:
        """The newest finished run with these input fingerprints and a registered version, if any."""
        if not self.exists():
            return None
        with self._mlflow() as mlflow:
            client = self._client(mlflow)
            experiment = client.get_experiment_by_name(self.experiment)
            if experiment is None:
                return None
            query = f"tags.`{TAG}.inputs` = '{inputs}' and attributes.status = 'FINISHED'"
            runs = client.search_runs([experiment.experiment_id], filter_string=query,
                                      order_by=["attributes.start_time DESC"], max_results=5)
            for run in runs:
                version = run.data.tags.get(f"{TAG}.registered.version")
                name = run.data.tags.get(f"{TAG}.registered.name")
                if version and name:
                    return {"run_id": run.info.run_id, "name": name, "version": int(version)}
        return None

    def log_training(self, record: TrainingRecord) -> VersionInfo:
        """Log a training run, register its model, give the new version the alias ``challenger``.

        If anything fails, the run is marked FAILED and no version is left registered. With a public key,
        the version is signed (a missing private key stops before anything is logged).
        """
        signing_key = private_key(self.public_key) if self.public_key is not None else None
        with self._mlflow() as mlflow:
            client = self._client(mlflow)
            experiment_id = self._experiment_id(mlflow)
            with mlflow.start_run(experiment_id=experiment_id, run_name=record.run_name) as run:
                run_id = run.info.run_id
                mlflow.log_params({k: _param(v) for k, v in record.params.items()})
                mlflow.log_metrics({k: float(v) for k, v in record.metrics.items() if _finite(v)})
                mlflow.set_tags(record.tags)
                _log_artifacts(mlflow, record)
                with _quiet():
                    info = mlflow.sklearn.log_model(
                        record.model,
                        name="model",
                        serialization_format="skops",
                        skops_trusted_types=record.trusted_types,
                        code_paths=[str(p) for p in record.code_paths],
                        pip_requirements=record.pip_requirements,
                        signature=_signature(record.signature),
                        input_example=record.input_example,
                        registered_model_name=record.model_name,
                    )
                version = int(info.registered_model_version)
                try:
                    model_dir = self._model_dir(client, info.model_id)
                    digest = file_digest(model_dir / SKOPS_FILE)
                    tags = {**record.version_tags, f"{TAG}.model.file_digest": digest,
                            f"{TAG}.model.trusted_types": json.dumps(sorted(record.trusted_types)),
                            f"{TAG}.run_id": run_id}
                    for key, value in tags.items():
                        client.set_model_version_tag(record.model_name, str(version), key, value)
                    if signing_key is not None and self.public_key is not None:
                        all_tags = {**record.tags, **tags}
                        sign_model(model_dir, claims_of(record.model_name, version, all_tags), signing_key,
                                   self.public_key)
                    client.set_registered_model_alias(record.model_name, "challenger", str(version))
                    mlflow.set_tags({f"{TAG}.registered.name": record.model_name,
                                     f"{TAG}.registered.version": str(version),
                                     f"{TAG}.model.file_digest": digest})
                except Exception:
                    client.delete_model_version(record.model_name, str(version))
                    raise
        return self.version(ModelRef(record.model_name, version=version))

    # ------------------------------------------------------------------ versions

    def model_names(self) -> list[str]:
        if not self.exists():
            return []
        with self._mlflow() as mlflow:
            return sorted(m.name for m in self._client(mlflow).search_registered_models())

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of model ``name``, oldest first."""
        if not self.exists():
            return []
        with self._mlflow() as mlflow:
            client = self._client(mlflow)
            found = client.search_model_versions(f"name='{name}'")
            return sorted((self._info(client, mv) for mv in found), key=lambda v: v.version)

    def version(self, ref: ModelRef) -> VersionInfo:
        """The version a reference points at (an alias, a number, or the latest).

        Raises
        ------
        NotFoundError
            Naming what exists.
        """
        if not self.exists():
            raise NotFoundError(f"no model is registered yet (looked for {ref})", hint="run `lockstep train` first")
        with self._mlflow() as mlflow:
            client = self._client(mlflow)
            exceptions = mlflow.exceptions.MlflowException
            try:
                if ref.alias:
                    mv = client.get_model_version_by_alias(ref.name, ref.alias)
                elif ref.version is not None:
                    mv = client.get_model_version(ref.name, str(ref.version))
                else:
                    found = client.search_model_versions(f"name='{ref.name}'")
                    if not found:
                        raise exceptions(f"no versions of {ref.name}")
                    mv = max(found, key=lambda m: int(m.version))
            except exceptions:
                names = [m.name for m in client.search_registered_models()]
                if ref.name not in names:
                    raise NotFoundError(f"no registered model named '{ref.name}' "
                                        f"(models: {', '.join(names) or 'none'})",
                                        hint="`lockstep models list` shows them") from None
                versions = sorted(int(m.version) for m in client.search_model_versions(f"name='{ref.name}'"))
                aliases = sorted(client.get_registered_model(ref.name).aliases)
                wanted = f"alias {ref.alias}" if ref.alias else f"version {ref.version}"
                raise NotFoundError(f"model '{ref.name}' has no {wanted} (versions: {', '.join(map(str, versions))}; "
                                    f"aliases: {', '.join(aliases) or 'none'})",
                                    hint="`lockstep models show` lists versions and aliases") from None
            return self._info(client, mv)

    def _info(self, client: Any, mv: Any) -> VersionInfo:
        run = client.get_run(mv.run_id) if mv.run_id else None
        # Searches do not fill in aliases; the registered model knows them.
        registered = client.get_registered_model(mv.name)
        aliases = [alias for alias, version in (registered.aliases or {}).items() if str(version) == str(mv.version)]
        created = datetime.fromtimestamp(int(mv.creation_timestamp) / 1000, UTC).isoformat(timespec="seconds")
        return VersionInfo(
            name=mv.name, version=int(mv.version), aliases=sorted(aliases), run_id=mv.run_id or "",
            created=created, tags={**(run.data.tags if run else {}), **dict(mv.tags or {})},
            metrics=dict(run.data.metrics) if run else {}, params=dict(run.data.params) if run else {},
            source=mv.source or "",
        )

    def set_alias(self, name: str, alias: str, version: int) -> None:
        with self._mlflow() as mlflow:
            self._client(mlflow).set_registered_model_alias(name, alias, str(version))

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        with self._mlflow() as mlflow:
            self._client(mlflow).set_model_version_tag(name, str(version), key, value)

    # ------------------------------------------------------------------ artifacts and models

    def _model_dir(self, client: Any, model_id: str) -> Path:
        logged = client.get_logged_model(model_id)
        return _local_path(logged.artifact_location)

    def _version_dir(self, info: VersionInfo) -> Path:
        """The folder holding a version's MLmodel and model file (the registry's own; never handed out)."""
        with self._mlflow() as mlflow:
            client = self._client(mlflow)
            model_id = info.source.removeprefix("models:/")
            return self._model_dir(client, model_id)

    def _artifact_path(self, run_id: str, path: str) -> Path:
        """Where a run's artifact is kept (the registry's own; callers get its bytes, a table or an object)."""
        with self._mlflow() as mlflow:
            run = self._client(mlflow).get_run(run_id)
            local = _local_path(run.info.artifact_uri) / path
        if not local.exists():
            raise NotFoundError(f"run {run_id} has no artifact {path}")
        return local

    def artifact_bytes(self, info: VersionInfo, path: str) -> bytes:
        """The bytes of an artifact of a version's training run (``golden/inputs.parquet``, ...).

        Raises
        ------
        NotFoundError
            If the run has no such artifact.
        """
        return self._artifact_path(info.run_id, path).read_bytes()

    def artifact_table(self, info: VersionInfo, path: str) -> pa.Table:
        """A Parquet artifact of a version's training run, as an Arrow table (see :meth:`artifact_bytes`)."""
        return pq.read_table(pa.BufferReader(self.artifact_bytes(info, path)))

    def artifact_files(self, info: VersionInfo, folder: str, suffix: str = "") -> dict[str, bytes]:
        """The files of a folder of a version's training run (``plots``), by name: empty when there is none."""
        try:
            root = self._artifact_path(info.run_id, folder)
        except NotFoundError:
            return {}
        return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file() and p.name.endswith(suffix)}

    def stored_code(self, info: VersionInfo, recorded: dict[str, str] | None = None) -> StoredCode:
        """The project's code stored with a version, to read, check and import (see :mod:`.stored_code`).

        ``recorded`` (file to fingerprint) defaults to the files the version's tags record.
        """
        code = stored_code(info, self._version_dir(info))
        return code if recorded is None else StoredCode(code.root, recorded, code.label)

    def run_json(self, info: VersionInfo, path: str) -> Any:
        """A JSON artifact of a version's training run (``training.json``, ``config.json``, ...).

        Raises
        ------
        NotFoundError
            If the run has no such artifact (a version registered by an older lockstep).
        """
        try:
            local = self._artifact_path(info.run_id, path)
        except NotFoundError:
            raise NotFoundError(f"{info.name}/{info.version} has no recorded {path} (registered by an older "
                                "lockstep?)", hint="train it again with this version of lockstep") from None
        return json.loads(local.read_text())

    def record_check(self, info: VersionInfo, kind: str, report: dict[str, Any], summary: dict[str, Any]) -> None:
        """Keep the result of a check (``verify``, ``parity``) with a version.

        The whole report goes to the run as ``checks/<kind>.json``, and
        ``summary`` to the version's tag ``lockstep.<kind>`` (the latest result
        of that check, shown by ``models show`` and in generated documentation).
        """
        with self._mlflow() as mlflow:
            client = self._client(mlflow)
            client.log_text(info.run_id, json.dumps(report, indent=2, sort_keys=True, default=str),
                            f"checks/{kind}.json")
            client.set_model_version_tag(info.name, str(info.version), f"{TAG}.{kind}",
                                         json.dumps(summary, sort_keys=True, default=str))

    def log_monitor(self, report: dict[str, Any], files: dict[str, bytes | str]) -> str:
        """Log a monitoring run (the retraining loop's report and decisions) to MLflow; its run id."""
        with self._mlflow() as mlflow:
            client = self._client(mlflow)
            experiment_id = self._experiment_id(mlflow)
            decisions = {a["step"]: a["decision"] for a in report.get("actions", [])}
            tags = {f"{TAG}.kind": "monitor", f"{TAG}.monitor.model": f"{report['model']}/{report['version']}",
                    f"{TAG}.monitor.drift": str(report["drift"]).lower(),
                    f"{TAG}.monitor.window": report["window"][:5000],
                    **{f"{TAG}.monitor.{step}": decision for step, decision in decisions.items()}}
            run = client.create_run(experiment_id, run_name=f"monitor-{report['model']}-{report['version']}",
                                    tags=tags)
            run_id = run.info.run_id
            client.log_metric(run_id, "rows", float(report["rows"]))
            client.log_metric(run_id, "drifted_columns", float(len(report.get("drifted", []))))
            for item in report.get("features", []):
                if item["group"] == "prediction" and isinstance(item["value"], (int, float)):
                    client.log_metric(run_id, f"prediction_{item['statistic']}", float(item["value"]))
            for path, content in files.items():
                if isinstance(content, str):
                    client.log_text(run_id, content, f"monitor/{path}")
                else:
                    with tempfile.TemporaryDirectory() as tmp:
                        local = Path(tmp) / Path(path).name
                        local.write_bytes(content)
                        client.log_artifact(run_id, str(local), str(Path("monitor") / Path(path).parent))
            client.set_terminated(run_id)
        return str(run_id)

    def check_result(self, info: VersionInfo, kind: str) -> dict[str, Any] | None:
        """The latest recorded report of a check for a version, if any."""
        if f"{TAG}.{kind}" not in info.tags:
            return None
        try:
            found: dict[str, Any] = json.loads(self._artifact_path(info.run_id, f"checks/{kind}.json").read_text())
            return found
        except NotFoundError:
            return None

    def model_file_digest(self, info: VersionInfo) -> str | None:
        """The fingerprint of a version's stored model file as it is now (None when the file is missing)."""
        model_file = self._version_dir(info) / SKOPS_FILE
        return file_digest(model_file) if model_file.exists() else None

    def load(self, ref: ModelRef) -> LoadedModel:
        """Load a registered model, refusing it unless its file, trusted types and fingerprint check out.

        Raises
        ------
        UserError
            If the model file changed since registration, lists types that
            were not trusted at registration, or loads to a model whose
            fingerprint differs from the recorded one.
        """
        info = self.version(ref)
        path = self._version_dir(info)
        return LoadedModel(model=load_checked(info, path, self.public_key), info=info,
                           schema=self.model_schema(info))

    def attach_onnx(self, info: VersionInfo, data: bytes, parity: dict[str, Any]) -> str:
        """Store an ONNX export with a version: the file in its run, its hash and parity in the version's tags.

        Returns where it is stored, for people to read (a location, not a path to open).
        """
        with self._mlflow() as mlflow, tempfile.TemporaryDirectory() as tmp:
            client = self._client(mlflow)
            local = Path(tmp) / "model.onnx"
            local.write_bytes(data)
            client.log_artifact(info.run_id, str(local), "onnx")
            client.log_text(info.run_id, json.dumps(parity, indent=2, sort_keys=True), "onnx/parity.json")
            client.set_model_version_tag(info.name, str(info.version), f"{TAG}.onnx.digest", fingerprint_bytes(data))
            client.set_model_version_tag(info.name, str(info.version), f"{TAG}.onnx.parity",
                                         json.dumps(parity, sort_keys=True))
        return str(self._artifact_path(info.run_id, "onnx/model.onnx"))

    def onnx(self, info: VersionInfo) -> tuple[bytes, dict[str, Any]]:
        """A version's ONNX export and its parity record, checked against the recorded hash."""
        digest = info.tags.get(f"{TAG}.onnx.digest")
        if not digest:
            raise UserError(f"{info.name}/{info.version} has no ONNX export",
                            hint=f"run `lockstep export onnx {info.name}/{info.version}` first")
        data = self._artifact_path(info.run_id, "onnx/model.onnx").read_bytes()
        if fingerprint_bytes(data) != digest:
            raise IntegrityError(f"{info.name}/{info.version}: the ONNX file changed since it was exported; "
                            "refusing to use it", hint="export it again")
        return data, json.loads(info.tags.get(f"{TAG}.onnx.parity", "{}"))

    def reference_profile(self, info: VersionInfo) -> dict[str, Any]:
        """The reference profile recorded with a version (its run's ``reference_profile.json``)."""
        profile: dict[str, Any] = self.run_json(info, "reference_profile.json")
        return profile

    def model_schema(self, info: VersionInfo) -> ModelSchema:
        """The input schema recorded with a version (its run's ``input_schema.json``)."""
        try:
            path = self._artifact_path(info.run_id, "input_schema.json")
        except NotFoundError:
            raise StoreError(f"{info.name}/{info.version} has no recorded input schema (trained by an older "
                             "lockstep?); retrain it") from None
        return ModelSchema.from_dict(json.loads(path.read_text()))


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow prints registry messages and warnings on stderr; lockstep reports for itself."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _log_artifacts(mlflow: Any, record: TrainingRecord) -> None:
    """Log a training record's JSON documents, tables (Parquet or CSV) and figures to the active run."""
    with tempfile.TemporaryDirectory() as tmp:
        for path, obj in record.json_artifacts.items():
            mlflow.log_text(json.dumps(obj, indent=2, sort_keys=True, default=str), path)
        for path, frame in record.table_artifacts.items():
            local = Path(tmp) / Path(path).name
            if path.endswith(".parquet") and not hasattr(frame, "to_parquet"):
                pq.write_table(frame, local)
            elif path.endswith(".parquet"):
                frame.to_parquet(local, index=False)
            else:
                frame.to_csv(local, index=False)
            mlflow.log_artifact(str(local), str(Path(path).parent) if "/" in path else None)
    for path, figure in record.figures.items():
        mlflow.log_figure(figure, path)


def _signature(spec: dict[str, Any]) -> ModelSignature:
    """An MLflow signature from ``{"inputs": [(name, type, required)], "output": type}``."""
    inputs = Schema([ColSpec(kind, name, required=required) for name, kind, required in spec["inputs"]])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(spec["output"])]))


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    raise StoreError(f"artifact location {uri} is not a local folder")


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:6000]


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
