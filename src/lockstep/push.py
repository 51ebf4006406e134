"""``lockstep store push``: move a project between an embedded store and shared services, or between two of either.

The push copies, in this order:

1. the audit log's records into its Delta table (compaction), so that every
   record is in a table; records of a service still writing are refused
   (stop it first), never left behind;
2. every Delta table (raw snapshots, quarantine, feature sets, predictions,
   the audit log, the monitoring log), every version, byte for byte
   (:mod:`lockstep.store.transfer`);
3. the registry: runs, logged models, versions under their numbers,
   aliases, with model files copied verbatim (:mod:`lockstep.registry.transfer`);
4. then reads the copy back: every table's versions and metadata, and every
   version's tags, metrics, aliases and model file digest.

Writers of the source and of the destination wait meanwhile (the store's
ingest, features, train and promote locks are held on both). A push can be
repeated: what the destination already holds is skipped, so an interrupted
push goes on, and a later one copies only what is new.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockstep.core.config import Config, check_locations
from lockstep.core.errors import StoreError, UserError
from lockstep.core.sections import DATABASE_SCHEMES, SERVER_SCHEMES, STORE_SCHEMES, uri_scheme
from lockstep.registry.mlflow_registry import Registry, redact
from lockstep.registry.transfer import RegistryCopy, check_copy, copy_registry, plan_registry
from lockstep.store import Store
from lockstep.store.transfer import TableCopy, copy_tables, plan_tables

__all__ = ["PushReport", "push_project"]

#: The store's writers: held on both sides while a push runs.
_WRITERS = ("ingest", "features", "train", "promote")

#: Called with (done, to do, what is being copied).
Progress = Callable[[int, int, str], None]


@dataclass
class PushReport:
    """What a push copied, and the settings that point a project at the copy."""

    source: str
    destination: str
    registry: str
    tables: list[TableCopy] = field(default_factory=list)
    models: RegistryCopy = field(default_factory=RegistryCopy)
    settings: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "destination": self.destination, "registry": self.registry,
                "tables": [t.to_dict() for t in self.tables], "registry_copy": self.models.to_dict(),
                "settings": self.settings}


def _destination_registry(config: Config, destination: str, registry: str | None, artifacts: str | None,
                          options: dict[str, str]) -> Registry:
    try:
        check_locations(destination, registry, artifacts, ("the destination", "--registry", "--artifacts"))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if registry is not None and uri_scheme(registry) not in (*DATABASE_SCHEMES, *SERVER_SCHEMES):
        raise UserError(f"--registry {redact(registry)} is neither a database (postgresql://...) nor an MLflow "
                        "tracking server (http://...)", hint="or leave it out to keep the registry in the "
                        "destination folder")
    if artifacts is not None and uri_scheme(artifacts) not in STORE_SCHEMES:
        raise UserError(f"--artifacts {artifacts} is not an s3:// location")
    root = None if registry is not None else Path(destination)
    return Registry(root, experiment=config.project.name, tracking_uri=registry, artifacts=artifacts,
                    storage_options=options)


def push_project(config: Config, destination: str, *, registry: str | None = None, artifacts: str | None = None,
                 progress: Progress | None = None) -> PushReport:
    """Copy a project's store and registry to ``destination`` (``s3://BUCKET/PREFIX`` or a folder).

    Parameters
    ----------
    config : Config
        The project whose store and registry are copied.
    destination : str
        Where the store goes. A folder keeps the registry inside it (the embedded default) unless ``registry``
        is given.
    registry : str, optional
        The destination registry: ``postgresql://...`` (with ``artifacts``) or ``http://HOST:PORT``.
    artifacts : str, optional
        ``s3://BUCKET/PREFIX`` for the model files, with a database ``registry``.
    progress : callable, optional
        Called with (done, to do, what) as tables and runs are copied.

    Raises
    ------
    UserError
        For a destination that is the source, settings that cannot work together, a destination holding
        another project's tables or runs, or audit records of a service still running.
    StoreError
        If the copy does not read back as the source.
    """
    source_store, target_store, source_registry, target_registry = _sides(config, destination, registry, artifacts)
    report = PushReport(str(source_store.root), str(target_store.root), target_registry.location)
    target_store.check()
    if not target_registry.embedded:
        target_registry.check()
    with ExitStack() as held:
        for kind in _WRITERS:
            held.enter_context(source_store.lock(kind, "push"))
        _compact_audit(source_store)
        plan_tables(source_store.root, target_store.root)  # refuses another project's tables: nothing written yet
        plan_registry(source_registry, target_registry)
        target_store.check_writable("push the project to")
        for kind in _WRITERS:
            held.enter_context(target_store.lock(kind, "push"))
        report.tables = plan_tables(source_store.root, target_store.root)
        copy_tables(source_store.root, target_store.root, report.tables, progress)
        if not target_store.remote:
            target_store.audit.compact()  # indexes the copied records for look-ups by request id
        report.models = copy_registry(source_registry, target_registry, progress)
    problems = check_copy(source_registry, target_registry)
    if problems:
        raise StoreError(f"the registry copy in {target_registry.location} differs from the source: "
                         + "; ".join(problems[:5]), hint="push again: what was copied is skipped")
    report.settings = _settings(target_store, registry, artifacts)
    return report


def _sides(config: Config, destination: str, registry: str | None,
           artifacts: str | None) -> tuple[Store, Store, Registry, Registry]:
    """The source's store and registry, and the destination's, checked not to be the source's."""
    source_store = Store.of(config)
    remote = uri_scheme(destination) in STORE_SCHEMES
    if not remote:
        destination = str(Path(destination).expanduser().resolve())
    # another S3 location is reached as the project's own store is, when that is in S3 too; else by AWS_*
    options = dict(config.project.storage_options) if remote and config.store_remote else {}
    target_store = Store(destination.rstrip("/"), options)
    if str(target_store.root) == str(source_store.root):
        raise UserError(f"the destination {destination} is the project's own store", hint="push somewhere else")
    source_registry = Registry.of(config)
    target_registry = _destination_registry(config, destination, registry, artifacts, options)
    if not source_registry.embedded and target_registry.uri == source_registry.uri:
        raise UserError(f"the destination registry {target_registry.location} is the project's own registry",
                        hint="give --registry another database or server")
    return source_store, target_store, source_registry, target_registry


def _compact_audit(store: Store) -> None:
    """Move every audit record into the audit table; refuse records a running service may still add to."""
    store.audit.compact()
    pending = store.audit.pending()
    if pending:
        raise UserError(f"the audit log of {store.root} has {pending} record file(s) of a service that is still "
                        "running", hint="stop `lockstep serve` first, then push again")


def _settings(store: Store, registry: str | None, artifacts: str | None) -> dict[str, dict[str, str]]:
    """The ``lockstep.toml`` values that point the project at the copy (a password left as ``${...}``)."""
    project = {"store": str(store.root)}
    found: dict[str, dict[str, str]] = {"project": project}
    if registry is not None:
        found["registry"] = {"tracking_uri": redact(registry).replace(":***@", ":${LOCKSTEP_REGISTRY_PASSWORD}@")}
        if artifacts is not None:
            found["registry"]["artifacts"] = artifacts
    return found
