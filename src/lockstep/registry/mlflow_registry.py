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
import importlib
import io
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from lockstep.core.config import Config
from lockstep.core.environment import put_back
from lockstep.core.errors import (
    FileSystemError,
    IntegrityError,
    NotFoundError,
    ServiceError,
    StoreError,
    UserError,
)
from lockstep.core.fingerprint import fingerprint_bytes
from lockstep.core.lazy import lazy_module, loaded
from lockstep.core.schema import ModelSchema
from lockstep.core.sections import SERVER_SCHEMES, uri_scheme
from lockstep.registry.loading import SKOPS_FILE, file_digest, load_checked, stored_code
from lockstep.registry.refs import ModelRef
from lockstep.registry.relocation import relocate
from lockstep.registry.signing import CLAIMS_FILE, SIGNATURE_FILE, claims_of, private_key, sign_model
from lockstep.registry.skops_import import skops_io
from lockstep.registry.sqlite_index import RegistryIndex, RunRecord, VersionRecord, open_index
from lockstep.registry.stored_code import StoredCode
from lockstep.registry.versions import TAG, LoadedModel, TrainingRecord, VersionInfo
from lockstep.store import atomic_write_text
from lockstep.store.location import S3Settings
from lockstep.store.locks import exclusive

if TYPE_CHECKING:
    import mlflow
    import mlflow.artifacts as mlflow_artifacts
    import mlflow.models as mlflow_models
    import mlflow.models.utils as mlflow_model_utils
    import mlflow.sklearn as mlflow_sklearn
    import mlflow.tracking._tracking_service.utils as mlflow_tracking_utils
    import mlflow.types.schema as mlflow_schema
    import mlflow.utils.environment as mlflow_environment
    import pyarrow as pa
    import pyarrow.parquet as pq
    import sqlalchemy
    import sqlalchemy.pool as sqlalchemy_pool
else:  # MLflow takes a second to import and open: reads of the embedded registry do without it (sqlite_index)
    mlflow = lazy_module("mlflow")
    mlflow_artifacts = lazy_module("mlflow.artifacts")
    mlflow_environment = lazy_module("mlflow.utils.environment")
    mlflow_model_utils = lazy_module("mlflow.models.utils")
    mlflow_sklearn = lazy_module("mlflow.sklearn")
    mlflow_tracking_utils = lazy_module("mlflow.tracking._tracking_service.utils")  # private (see below)
    mlflow_schema = lazy_module("mlflow.types.schema")
    pa = lazy_module("pyarrow")
    pq = lazy_module("pyarrow.parquet")
    mlflow_models = lazy_module("mlflow.models")
    sqlalchemy = lazy_module("sqlalchemy")
    sqlalchemy_pool = lazy_module("sqlalchemy.pool")

__all__ = ["Registry"]

_ARTIFACTS_DIR = "/mlartifacts/"
#: MLflow's checks in ``log_model`` that only warn, and the modules they are looked up in when it runs
#: (:func:`_without_discarded_checks`).
_DISCARDED_CHECKS = ((mlflow_environment, "warn_dependency_requirement_mismatches"),
                     (mlflow_model_utils, "_validate_serving_input"))
#: Store folders whose registry was checked for a move in this process.
_RELOCATED: set[str] = set()
#: Shared registries reached once in this process.
_REACHED: set[str] = set()
#: The variables set while MLflow is used (MLflow's quiet settings; the URIs, which ``mlflow.set_tracking_uri`` and
#: ``set_registry_uri`` set for its subprocesses), put back afterwards.
_SET_VARIABLES = ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT",
                  "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
#: The registry whose runs' artifact locations MLflow's process-wide cache holds (``[uri]``; see
#: :func:`_artifact_locations_for`).
_CACHED_FOR: list[str] = []
#: Seconds to wait for a shared registry to answer.
CONNECT_TIMEOUT = 5
#: What logging a training imports besides MLflow and skops (:meth:`Registry.warm`): MLflow's model flavour, what
#: ``log_model`` and ``start_run`` import when called (GitPython among them), and, for a database, its stores.
#: These are MLflow's own module names: one a later MLflow no longer has is skipped (it only costs the time).
_WRITING_MODULES = ("mlflow.sklearn", "mlflow.pyfunc", "mlflow.tracing.processor.otel", "git", "pyarrow.parquet")
_DATABASE_MODULES = ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store")


class Registry:
    """The MLflow tracking store and model registry of a lockstep project.

    By default both live in the store folder: a SQLite database and local
    artifact files. With ``tracking_uri`` they live on shared services: a
    database (PostgreSQL, with the files under ``artifacts`` in S3) or an
    MLflow tracking server (which keeps the files itself).

    Parameters
    ----------
    root : Path or None
        The store folder (``.lockstep``) of an embedded registry; None with a ``tracking_uri``.
    experiment : str
        The MLflow experiment runs go to (the project's name).
    public_key : Path, optional
        Sign every version registered and verify every version loaded with
        this key pair (see :mod:`lockstep.registry.signing`).
    tracking_uri : str, optional
        ``postgresql://...`` or ``http://HOST:PORT``.
    artifacts : str, optional
        ``s3://BUCKET/PREFIX`` for the files of runs and models, with a database ``tracking_uri``.
    storage_options : dict, optional
        How to reach ``artifacts`` (see :mod:`lockstep.store.location`).
    """

    def __init__(self, root: Path | None, experiment: str, public_key: Path | None = None, *,
                 tracking_uri: str | None = None, artifacts: str | None = None,
                 storage_options: dict[str, str] | None = None) -> None:
        if root is None and tracking_uri is None:
            raise ValueError("a registry needs a store folder or a tracking URI")
        self.root = Path(root) if root is not None else None
        self.experiment = experiment
        self.public_key = Path(public_key) if public_key is not None else None
        self.tracking_uri = tracking_uri
        self.artifacts = artifacts.rstrip("/") if artifacts else None
        self.storage_options = dict(storage_options or {})
        self._downloads: Path | None = None

    @classmethod
    def of(cls, config: Config) -> Registry:
        """The registry of a project: where ``[registry]`` says (by default in its store), its experiment named
        after the project, its public key."""
        root = None if config.store_remote else config.store_path
        return cls(root, experiment=config.project.name, public_key=config.public_key,
                   tracking_uri=config.registry.tracking_uri, artifacts=config.registry.artifacts,
                   storage_options=config.project.storage_options)

    @property
    def embedded(self) -> bool:
        """Whether the registry is the store folder's own SQLite database (not a shared service)."""
        return self.tracking_uri is None

    @property
    def uri(self) -> str:
        if self.tracking_uri is not None:
            return self.tracking_uri
        assert self.root is not None  # an embedded registry has a folder
        return f"sqlite:///{(self.root / 'mlflow.db').resolve()}"

    @property
    def location(self) -> str:
        """Where the registry is, for people: the tracking URI without its password."""
        return redact(self.uri)

    @property
    def artifact_root(self) -> Path:
        assert self.root is not None  # an embedded registry has a folder
        return (self.root / _ARTIFACTS_DIR.strip("/")).resolve()

    def exists(self) -> bool:
        if self.root is None:
            return True  # a shared service: reached (or reported unreachable) by the first call
        return (self.root / "mlflow.db").exists()

    def check(self) -> None:
        """Reach the registry (the database or server), or raise a :class:`StoreError` that names it."""
        with self._mlflow() as mlflow:
            self._client(mlflow).search_experiments(max_results=1)

    def warm(self) -> None:
        """Import what :meth:`log_training` needs (MLflow, its model flavour, this registry's stores, skops), and
        nothing else: the registry is neither read nor written. Training has a forked helper do this while the
        model fits, and then log there (:mod:`lockstep.training.train`)."""
        skops_io()
        for name in self._writing_modules():
            with contextlib.suppress(ImportError):
                importlib.import_module(name)

    @staticmethod
    def forkable() -> bool:
        """Whether a forked copy of this process may write to a registry: MLflow was never imported here, so no
        store, connection pool or client of MLflow's open here would be shared with the copy (a database
        connection used by two processes breaks: SQLite's files, PostgreSQL's prepared statements)."""
        return "mlflow" not in sys.modules

    def _writing_modules(self) -> tuple[str, ...]:
        server = self.tracking_uri is not None and uri_scheme(self.tracking_uri) in SERVER_SCHEMES
        return _WRITING_MODULES if server else _WRITING_MODULES + _DATABASE_MODULES

    def relocate(self) -> list[str]:
        """Point the registry's recorded artifact locations at this store's folder, if it was moved or copied
        (see :func:`lockstep.registry.relocation.relocate`); the old roots."""
        return relocate(self.root) if self.root is not None else []

    def _create(self) -> None:
        """Create the tracking database, one process at a time: MLflow's migrations are not safe to run twice
        at once (a second process died with "duplicate column name")."""
        assert self.root is not None  # only the embedded database is created here
        self.root.mkdir(parents=True, exist_ok=True)
        with exclusive(self.root / "locks" / "registry.lock", "registry creation"):
            with _quiet():
                mlflow.MlflowClient(tracking_uri=self.uri, registry_uri=self.uri).search_experiments(max_results=1)

    def _relocate_once(self) -> None:
        """Check once per process whether the store was moved (see :meth:`relocate`) before reading it."""
        if self.root is not None and str(self.root.resolve()) not in _RELOCATED:
            self.relocate()
            _RELOCATED.add(str(self.root.resolve()))

    def _index(self) -> RegistryIndex | None:
        """The embedded registry's database, to read without MLflow; None for a shared registry, or a database
        whose schema the reader does not know (then MLflow answers)."""
        if self.root is None:
            return None
        self._relocate_once()
        return open_index(self.root / "mlflow.db")

    @contextmanager
    def _mlflow(self) -> Iterator[Any]:
        """MLflow, pointed at this registry for the duration of the block (restored afterwards)."""
        with _mlflow_variables():
            self._relocate_once()
            if not self.exists():
                self._create()

            for name in ("mlflow", "alembic", "mlflow.store", "mlflow.tracking"):
                logging.getLogger(name).setLevel(logging.ERROR)
            if self.tracking_uri is not None and self.tracking_uri not in _REACHED:
                reach(self.tracking_uri)  # MLflow itself retries a dead database for 100 s and a server for minutes
                if uri_scheme(self.tracking_uri).startswith("postgresql"):
                    _create_schema(self.tracking_uri)
                _REACHED.add(self.tracking_uri)
            if self.root is not None:
                self.root.mkdir(parents=True, exist_ok=True)
            previous = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
            _artifact_locations_for(self.uri)
            mlflow.set_tracking_uri(self.uri)
            mlflow.set_registry_uri(self.uri)
            try:
                with self._users_errors(), self._s3_environment():
                    yield mlflow
            finally:
                mlflow.set_tracking_uri(previous[0])
                mlflow.set_registry_uri(previous[1])

    @contextmanager
    def _users_errors(self) -> Iterator[None]:
        """Errors that are the user's to fix, raised named: a full disk or a read-only store (an embedded
        registry, written through MLflow or directly), a shared registry that cannot be reached."""
        try:
            yield
        except Exception as exc:
            found = (unreachable_registry(exc, self.location) if self.root is None
                     else FileSystemError.of(exc, "write the model registry", self.root))
            if found is None:
                raise
            raise found from None

    @contextmanager
    def _s3_environment(self) -> Iterator[None]:
        """MLflow reaches S3 artifacts through boto3, configured by environment variables only: set them from
        the storage options for the block (an endpoint, credentials), and put the old values back."""
        if not (self.artifacts and self.artifacts.startswith("s3://")):
            yield
            return
        settings = S3Settings.resolve(self.storage_options)
        wanted = {"MLFLOW_S3_ENDPOINT_URL": settings.endpoint, "AWS_ACCESS_KEY_ID": settings.access_key,
                  "AWS_SECRET_ACCESS_KEY": settings.secret_key, "AWS_DEFAULT_REGION": settings.region,
                  "AWS_SESSION_TOKEN": settings.session_token}
        saved = {name: os.environ.get(name) for name in wanted}
        for name, value in wanted.items():
            if value:
                os.environ[name] = value
        try:
            yield
        finally:
            put_back(saved)

    def _client(self, mlflow: Any) -> Any:
        return mlflow.MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _experiment_id(self, mlflow: Any) -> str:
        client = self._client(mlflow)
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            return str(experiment.experiment_id)
        if self.tracking_uri is not None and uri_scheme(self.tracking_uri) in SERVER_SCHEMES:
            location = None  # the server's --artifacts-destination
        elif self.artifacts is not None:
            location = f"{self.artifacts}/{self.experiment}"
        else:
            location = (self.artifact_root / self.experiment).as_uri()
        return str(client.create_experiment(self.experiment, artifact_location=location))

    # ------------------------------------------------------------------ runs

    def find_run(self, inputs: str) -> dict[str, Any] | None:
        """The newest finished run with these input fingerprints and a registered version, if any."""
        if not self.exists():
            return None
        index = self._index()
        if index is not None:
            experiment_id = index.experiment_id(self.experiment)
            return None if experiment_id is None else _registered(
                index.finished_runs_tagged(experiment_id, f"{TAG}.inputs", inputs))
        with self._mlflow() as mlflow:
            client = self._client(mlflow)
            experiment = client.get_experiment_by_name(self.experiment)
            if experiment is None:
                return None
            query = f"tags.`{TAG}.inputs` = '{inputs}' and attributes.status = 'FINISHED'"
            runs = client.search_runs([experiment.experiment_id], filter_string=query,
                                      order_by=["attributes.start_time DESC"], max_results=5)
            return _registered([{"run_id": run.info.run_id, **run.data.tags} for run in runs])

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
                mlflow.set_tags(record.tags)
                _log_artifacts(mlflow, record)
                with _quiet(), _without_discarded_checks():
                    info = mlflow_sklearn.log_model(
                        record.model,
                        name="model",
                        serialization_format="skops",
                        skops_trusted_types=record.trusted_types,
                        code_paths=[str(p) for p in record.code_paths],
                        pip_requirements=record.pip_requirements,
                        signature=_signature(record.signature),
                        input_example=record.input_example,
                    )
                # after the model, naming it: log_model would otherwise link each metric logged before it to the
                # model by reading its history back, one query per metric, and logging it again
                mlflow.log_metrics({k: float(v) for k, v in record.metrics.items() if _finite(v)},
                                   model_id=info.model_id)
                _log_images(mlflow, record)
                model_dir = self._model_dir(client, info.model_id)
                digest = file_digest(model_dir / SKOPS_FILE)
                tags = {**record.version_tags, f"{TAG}.model.file_digest": digest,
                        f"{TAG}.model.trusted_types": json.dumps(sorted(record.trusted_types)),
                        f"{TAG}.run_id": run_id}
                try:
                    with _quiet():  # the version and all its tags in one transaction
                        version = int(mlflow.register_model(info.model_uri, record.model_name, tags=tags).version)
                    if signing_key is not None and self.public_key is not None:
                        all_tags = {**record.tags, **tags}
                        sign_model(model_dir, claims_of(record.model_name, version, all_tags), signing_key,
                                   self.public_key)
                        if self._downloads is not None and model_dir.is_relative_to(self._downloads):
                            for name in (CLAIMS_FILE, SIGNATURE_FILE):  # a shared registry: upload them
                                client.log_model_artifact(info.model_id, str(model_dir / name))
                    client.set_registered_model_alias(record.model_name, "challenger", str(version))
                    mlflow.set_tags({f"{TAG}.registered.name": record.model_name,
                                     f"{TAG}.registered.version": str(version),
                                     f"{TAG}.model.file_digest": digest})
                except BaseException:  # an interrupt too, even one inside MLflow's call: no version of a failed run
                    _remove_versions(client, run_id)
                    raise
        return self.version(ModelRef(record.model_name, version=version))

    def recover_training(self, key: str, value: str) -> VersionInfo | None:
        """What a logger that died left of a training whose run it tagged ``key`` = ``value``: its version, if it
        finished the run; else None, once its unfinished runs are marked FAILED and any version registered for
        them removed, so that the training can be logged again without a version left behind."""
        with self._mlflow() as mlflow:
            client = self._client(mlflow)
            experiment = client.get_experiment_by_name(self.experiment)
            runs = [] if experiment is None else client.search_runs(
                [experiment.experiment_id], filter_string=f"tags.`{key}` = '{value}'")
            for run in runs:
                name, version = (run.data.tags.get(f"{TAG}.registered.{k}") for k in ("name", "version"))
                if run.info.status == "FINISHED" and name and version:
                    return self.version(ModelRef(name, version=int(version)))
            for run in runs:
                _remove_versions(client, run.info.run_id)
                if run.info.status == "RUNNING":
                    client.set_terminated(run.info.run_id, status="FAILED")
        return None

    # ------------------------------------------------------------------ versions

    def model_names(self) -> list[str]:
        if not self.exists():
            return []
        index = self._index()
        if index is not None:
            return index.model_names()
        with self._mlflow() as mlflow:
            return sorted(m.name for m in self._client(mlflow).search_registered_models())

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of model ``name``, oldest first."""
        if not self.exists():
            return []
        index = self._index()
        if index is not None:
            aliases = index.aliases(name)
            return [_version_info(record, index.run(record.run_id), aliases) for record in index.versions(name)]
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
        index = self._index()
        if index is not None:
            return self._indexed_version(index, ref)
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
                versions = ([int(m.version) for m in client.search_model_versions(f"name='{ref.name}'")]
                            if ref.name in names else [])
                aliases = list(client.get_registered_model(ref.name).aliases) if ref.name in names else []
                raise _missing(ref, names, versions, aliases) from None
            return self._info(client, mv)

    def _indexed_version(self, index: RegistryIndex, ref: ModelRef) -> VersionInfo:
        """:meth:`version`, read from the database."""
        aliases = index.aliases(ref.name)
        if ref.alias:
            number = aliases.get(ref.alias)
            record = index.version(ref.name, number) if number is not None else None
        elif ref.version is not None:
            record = index.version(ref.name, ref.version)
        else:
            every = index.versions(ref.name)
            record = every[-1] if every else None
        if record is None:
            raise _missing(ref, index.model_names(), [v.version for v in index.versions(ref.name)], list(aliases))
        return _version_info(record, index.run(record.run_id), aliases)

    def _info(self, client: Any, mv: Any) -> VersionInfo:
        run = client.get_run(mv.run_id) if mv.run_id else None
        # Searches do not fill in aliases; the registered model knows them.
        aliases = client.get_registered_model(mv.name).aliases or {}
        record = VersionRecord(name=mv.name, version=int(mv.version), creation_time=int(mv.creation_timestamp or 0),
                               source=mv.source or "", run_id=mv.run_id or "", tags=dict(mv.tags or {}))
        found = None if run is None else RunRecord(
            run_id=run.info.run_id, artifact_uri=run.info.artifact_uri or "", tags=dict(run.data.tags),
            metrics=dict(run.data.metrics), params=dict(run.data.params))
        return _version_info(record, found, {alias: int(version) for alias, version in aliases.items()})

    def set_alias(self, name: str, alias: str, version: int) -> None:
        index = self._index()
        with self._users_errors():
            if index is not None and index.set_alias(name, alias, version):
                return
        with self._mlflow() as mlflow:
            self._client(mlflow).set_registered_model_alias(name, alias, str(version))

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        index = self._index()
        with self._users_errors():
            if index is not None and index.set_version_tag(name, version, key, value):
                return
        with self._mlflow() as mlflow:
            self._client(mlflow).set_model_version_tag(name, str(version), key, value)

    # ------------------------------------------------------------------ artifacts and models

    def _model_dir(self, client: Any, model_id: str) -> Path:
        logged = client.get_logged_model(model_id)
        return self._local(logged.artifact_location)

    def _local(self, uri: str, path: str = "") -> Path:
        """A local folder or file holding the artifact at ``uri`` (+ ``path``): the file itself when artifacts
        are local, else a fresh download into this registry's private temporary folder."""
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            return Path(unquote(parsed.path)) / path if path else Path(unquote(parsed.path))
        if self._downloads is None:
            self._downloads = Path(tempfile.mkdtemp(prefix="lockstep-artifacts-"))
            weakref.finalize(self, shutil.rmtree, str(self._downloads), True)
        target = Path(tempfile.mkdtemp(dir=self._downloads))
        source = f"{uri.rstrip('/')}/{path}" if path else uri
        try:
            with self._s3_environment(), _mlflow_variables(), _quiet():
                return Path(mlflow_artifacts.download_artifacts(artifact_uri=source, dst_path=str(target),
                                                               tracking_uri=self.uri))
        except Exception as exc:
            if "not found" in str(exc).lower() or "NoSuchKey" in str(exc) or "404" in str(exc):
                return target / "missing" / (path or "artifact")
            error = unreachable_registry(exc, redact(source))
            if error is None:
                raise
            raise error from None

    def _version_dir(self, info: VersionInfo) -> Path:
        """The folder holding a version's MLmodel and model file (the registry's own; never handed out)."""
        index = self._index()
        location = index.logged_model_location(info.source.removeprefix("models:/")) if index is not None else None
        if location is not None:
            return self._local(location)
        with self._mlflow() as mlflow:
            client = self._client(mlflow)
            model_id = info.source.removeprefix("models:/")
            return self._model_dir(client, model_id)

    def _artifact_path(self, run_id: str, path: str) -> Path:
        """Where a run's artifact is kept (the registry's own; callers get its bytes, a table or an object)."""
        index = self._index()
        run = index.run(run_id) if index is not None else None
        if run is not None:
            local = self._local(run.artifact_uri, path)
        else:
            with self._mlflow() as mlflow:
                local = self._local(self._client(mlflow).get_run(run_id).info.artifact_uri, path)
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
        A report with a ``key`` (what the check depended on: options, code,
        environment) is also kept as ``checks/<kind>/<key>.json``, so that a
        check with other options (``lockstep verify`` by hand) does not hide
        the result ``lockstep run`` looks for.
        """
        text = json.dumps(report, indent=2, sort_keys=True, default=str)
        tag = json.dumps(summary, sort_keys=True, default=str)
        paths = [f"checks/{kind}.json"] + ([f"checks/{kind}/{report['key']}.json"] if report.get("key") else [])
        index = self._index()
        run = index.run(info.run_id) if index is not None else None
        if index is not None and run is not None and urlparse(run.artifact_uri).scheme in ("", "file"):
            with self._users_errors():  # the report next to the run's other files, then the tag saying so
                for path in paths:
                    atomic_write_text(self._local(run.artifact_uri, path), text)
                if index.set_version_tag(info.name, info.version, f"{TAG}.{kind}", tag):
                    return
        with self._mlflow() as mlflow:
            client = self._client(mlflow)
            for path in paths:
                client.log_text(info.run_id, text, path)
            client.set_model_version_tag(info.name, str(info.version), f"{TAG}.{kind}", tag)

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

    def check_result(self, info: VersionInfo, kind: str, key: str | None = None) -> dict[str, Any] | None:
        """The recorded report of a check for a version, if any: the one made with ``key`` when given (else, or
        for a report older than keyed reports, the latest)."""
        if f"{TAG}.{kind}" not in info.tags:
            return None
        for path in ([f"checks/{kind}/{key}.json"] if key else []) + [f"checks/{kind}.json"]:
            try:
                found: dict[str, Any] = json.loads(self._artifact_path(info.run_id, path).read_text())
                return found
            except NotFoundError:
                continue
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


def _artifact_locations_for(uri: str) -> None:
    """Forget the artifact locations MLflow keeps for another registry's runs, before this one's are used.

    MLflow caches each run's artifact repository in a process-wide dictionary keyed by the run's id alone. Two
    copies of a project (a folder copied, or moved and relocated) hold runs with the same ids in different
    folders: without this, a process that opened one and then the other would write the second one's ONNX
    export, checks and monitoring reports into the first one's folder.
    """
    if _CACHED_FOR == [uri]:
        return
    try:  # MLflow's private module: a later MLflow without it (or without the cache) has nothing to forget here
        cache = getattr(mlflow_tracking_utils, "_artifact_repos_cache", None)
    except ImportError:
        cache = None
    if cache is not None:
        cache.clear()
    _CACHED_FOR[:] = [uri]


def _registered(runs: list[dict[str, str]]) -> dict[str, Any] | None:
    """The first of these runs (their ids and tags, newest first) that registered a version."""
    for tags in runs:
        version, name = tags.get(f"{TAG}.registered.version"), tags.get(f"{TAG}.registered.name")
        if version and name:
            return {"run_id": tags["run_id"], "name": name, "version": int(version)}
    return None


def _version_info(record: VersionRecord, run: RunRecord | None, aliases: dict[str, int]) -> VersionInfo:
    """What lockstep hands out about a version: its row, its run's tags (the version's own win), metrics and
    parameters, and the aliases (of all the model's) that point at it."""
    # a version pushed from another registry was created when the source registered it
    registered_at = record.tags.get(f"{TAG}.copy.created") or record.creation_time
    created = datetime.fromtimestamp(int(registered_at) / 1000, UTC).isoformat(timespec="seconds")
    return VersionInfo(
        name=record.name, version=record.version,
        aliases=sorted(alias for alias, version in aliases.items() if version == record.version),
        run_id=record.run_id, created=created, tags={**(run.tags if run else {}), **record.tags},
        metrics=dict(run.metrics) if run else {}, params=dict(run.params) if run else {}, source=record.source,
    )


def _missing(ref: ModelRef, names: list[str], versions: list[int], aliases: list[str]) -> NotFoundError:
    """The error for a reference to no version, naming the models, or the model's versions and aliases."""
    if ref.name not in names:
        return NotFoundError(f"no registered model named '{ref.name}' (models: {', '.join(sorted(names)) or 'none'})",
                             hint="`lockstep models list` shows them")
    wanted = f"alias {ref.alias}" if ref.alias else f"version {ref.version}"
    return NotFoundError(f"model '{ref.name}' has no {wanted} (versions: {', '.join(map(str, sorted(versions)))}; "
                         f"aliases: {', '.join(sorted(aliases)) or 'none'})",
                         hint="`lockstep models show` lists versions and aliases")


def _remove_versions(client: Any, run_id: str) -> None:
    """Remove every version registered from run ``run_id`` (a run that failed, or whose logger died)."""
    for mv in client.search_model_versions(f"run_id = '{run_id}'"):
        client.delete_model_version(mv.name, str(mv.version))


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow prints registry messages and warnings on stderr; lockstep reports for itself."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


@contextmanager
def _mlflow_variables() -> Iterator[None]:
    """MLflow's quiet settings for the block (no progress bar, no run URL on stdout: stdout is lockstep's, for
    ``--json``); afterwards this process's environment as it was, also the URIs that ``mlflow.set_tracking_uri``
    writes there for its subprocesses."""
    saved = {name: os.environ.get(name) for name in _SET_VARIABLES}
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    try:
        yield
    finally:
        put_back(saved)


@contextmanager
def _without_discarded_checks() -> Iterator[None]:
    """``log_model`` without two of MLflow's checks whose only outcome is a warning, which :func:`_quiet` drops.

    One checks that the installed packages satisfy the requirements given: it lists every file of every installed
    distribution (0.3 s), and lockstep's requirements are the installed versions, read from the same metadata. The
    other loads the saved model back to predict its input example; lockstep has checked the registered pipeline end
    to end on raw rows, and every load checks the model file against its digest. An MLflow without these functions
    is left as it is.
    """
    saved = []
    for lazy, name in _DISCARDED_CHECKS:
        module = loaded(lazy)  # the module itself: an attribute set on the stand-in would stay there
        if hasattr(module, name):
            saved.append((module, name, getattr(module, name)))
            setattr(module, name, _no_check)
    try:
        yield
    finally:
        for module, name, check in saved:
            setattr(module, name, check)


def _no_check(*args: Any, **kwargs: Any) -> None:
    return None


def _log_artifacts(mlflow: Any, record: TrainingRecord) -> None:
    """Log a training record's JSON documents and tables (Parquet or CSV) to the active run."""
    for path, obj in record.json_artifacts.items():
        mlflow.log_text(json.dumps(obj, indent=2, sort_keys=True, default=str), path)
    for path, frame in record.table_artifacts.items():
        if path.endswith(".parquet") and not hasattr(frame, "to_parquet"):
            _log_file(mlflow, path, partial(pq.write_table, frame))
        elif path.endswith(".parquet"):
            _log_file(mlflow, path, partial(frame.to_parquet, index=False))
        else:
            _log_file(mlflow, path, partial(frame.to_csv, index=False))


def _log_images(mlflow: Any, record: TrainingRecord) -> None:
    """Log a training record's PNG images to the active run: asked for last, after the model is saved, so that
    whatever draws them (a helper process) has had the longest."""
    for path, image in (record.images() if record.images is not None else {}).items():
        _log_file(mlflow, path, partial(Path.write_bytes, data=image))


def _log_file(mlflow: Any, path: str, write: Callable[[Path], Any]) -> None:
    """Log the artifact ``path`` (``"plots/roc_curve.png"``) that ``write`` writes to a local file."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(path).name
        write(local)
        mlflow.log_artifact(str(local), str(Path(path).parent) if "/" in path else None)


def _signature(spec: dict[str, Any]) -> mlflow_models.ModelSignature:
    """An MLflow signature from ``{"inputs": [(name, type, required)], "output": type}``."""
    schema, column = mlflow_schema.Schema, mlflow_schema.ColSpec
    inputs = schema([column(kind, name, required=required) for name, kind, required in spec["inputs"]])
    return mlflow_models.ModelSignature(inputs=inputs, outputs=schema([column(spec["output"])]))


def redact(uri: str) -> str:
    """``uri`` without the password it may hold (``postgresql://user:***@host/db``)."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]+):[^@]*@", r"\1:***@", uri)


def reach(uri: str) -> None:
    """Connect to a shared registry once, quickly: a database with a short connect timeout, a server's
    ``/health``.

    Raises
    ------
    ServiceError
        Naming the registry (without its password) and what failed.
    """
    where = redact(uri)
    try:
        if uri_scheme(uri) in SERVER_SCHEMES:
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=CONNECT_TIMEOUT) as answer:
                if answer.status != 200:
                    raise ServiceError(f"the registry {where} answered {answer.status} to /health")
            return
        if uri_scheme(uri).startswith("postgresql"):
            engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": CONNECT_TIMEOUT},
                                              poolclass=sqlalchemy_pool.NullPool)
            with engine.connect():
                pass
    except ServiceError:
        raise
    except Exception as exc:
        error = unreachable_registry(exc, where)
        raise (error or ServiceError(f"cannot reach the registry {where}: {' '.join(str(exc).split())[:300]}")
               ) from None


#: The PostgreSQL advisory lock that lockstep's processes hold while MLflow creates or upgrades its tables.
_SCHEMA_LOCK = 0x6C6F636B73746570  # "lockstep"


def _create_schema(uri: str) -> None:
    """Let MLflow create (or upgrade) its tables in a shared database one process at a time.

    MLflow runs its migrations when a process first opens the database, and
    two processes doing it at once on a fresh database fail ("duplicate key
    value ... alembic_version": 3 of 4 processes here). Machines share no
    folder for a file lock, so the database itself serializes them, with an
    advisory lock held only while MLflow opens it.
    """
    engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": CONNECT_TIMEOUT},
                                      poolclass=sqlalchemy_pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK})
            try:
                with _quiet():
                    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
                    client.search_experiments(max_results=1)
                    client.search_registered_models(max_results=1)
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": _SCHEMA_LOCK})
    finally:
        engine.dispose()


def unreachable_registry(exc: BaseException, where: str) -> ServiceError | None:
    """The user's error when a shared registry cannot be reached (a database, a server, S3); None otherwise."""
    text = " ".join(str(exc).split())
    lowered = text.lower()
    if "password authentication failed" in lowered or "authentication failed" in lowered:
        return ServiceError(f"the registry {where} refused the credentials", hint="check the user and password in "
                          "[registry] tracking_uri (or the variables it names)")
    if "does not exist" in lowered and "database" in lowered:
        return ServiceError(f"the registry database in {where} does not exist", hint="create it (createdb NAME), or "
                          "fix the database name in [registry] tracking_uri")
    words = ("connection refused", "could not connect", "timeout expired", "max retries exceeded",
             "failed to establish", "name or service not known", "could not translate host")
    if isinstance(exc, urllib.error.URLError) or any(word in lowered for word in words):
        return ServiceError(f"the registry {where} does not answer", hint="check the host and port in [registry] "
                          "tracking_uri and that the server is running")
    if "nosuchbucket" in lowered:
        return ServiceError(f"the registry's artifacts at {where}: the bucket does not exist",
                          hint="create it, or fix [registry] artifacts")
    if any(word in lowered for word in ("invalidaccesskeyid", "signaturedoesnotmatch", "accessdenied")):
        return ServiceError(f"the registry's artifacts at {where}: the credentials were refused",
                          hint="check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    return None


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:6000]


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
