"""Copying a project's registry to another (embedded SQLite, a database with S3 artifacts, a tracking server).

MLflow has no copy of its own, so the copy is made through its client, in
the order things happened: the experiment; every run (its start time, tags,
parameters, the whole history of every metric, its artifacts, its status
and end time); every logged model, with its files copied verbatim (the model
file, its stored code, the claims and signature of a signed model), so that
the digests and signatures recorded at registration hold on the copy; then
every registered model, its versions under the same numbers (a version
deleted in the source is deleted in the copy too, so the numbers line up),
their tags and the aliases.

What cannot be the same: MLflow gives the copied runs and logged models new
ids. Each copy carries the id it was copied from (the tags
``lockstep.copy.source_run`` and ``lockstep.copy.source_model``), and the
``MLmodel`` file inside a model's folder, copied verbatim, still names the
source's run. Versions are registered at the time of the copy.

Copying again is safe and cheap: runs and models already copied are found
by those tags and only what changed is sent (new runs and versions, new
artifacts such as a later ``verify`` report, changed tags and aliases). A
destination that holds runs or versions of its own is refused before
anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, ViewType

from lockstep.core.errors import StoreError, UserError
from lockstep.registry.mlflow_registry import Registry
from lockstep.registry.versions import TAG, VersionInfo

__all__ = ["COPY_TAGS", "RegistryCopy", "check_copy", "copy_registry", "plan_registry"]

SOURCE_RUN = f"{TAG}.copy.source_run"
SOURCE_MODEL = f"{TAG}.copy.source_model"
SOURCE_VERSION = f"{TAG}.copy.source_version"
#: When the source registered the version (milliseconds): a copy reports it as the version's creation.
SOURCE_CREATED = f"{TAG}.copy.created"
COPIED_FROM = f"{TAG}.copy.from"
_COMPLETE = f"{TAG}.copy.complete"
#: Tags a copy adds, and the tag it rewrites (a version's run id): left out when a copy is compared.
COPY_TAGS = (SOURCE_RUN, SOURCE_MODEL, SOURCE_VERSION, SOURCE_CREATED, COPIED_FROM, _COMPLETE, f"{TAG}.run_id")

#: Called with (items done, items to do, what is being copied).
Progress = Callable[[int, int, str], None]


@dataclass
class RegistryCopy:
    """What a push did to the registry."""

    runs: int = 0
    runs_copied: int = 0
    artifacts_copied: int = 0
    models: int = 0
    models_copied: int = 0
    versions: dict[str, list[int]] = field(default_factory=dict)
    versions_copied: int = 0
    aliases: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "runs_copied": self.runs_copied, "artifacts_copied": self.artifacts_copied,
                "logged_models": self.models, "logged_models_copied": self.models_copied,
                "versions": self.versions, "versions_copied": self.versions_copied, "aliases": self.aliases}


def _paged(call: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    """Every item of a paged MLflow search."""
    token = None
    while True:
        page = call(**kwargs, page_token=token) if token else call(**kwargs)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def _artifacts(client: Any, run_id: str, path: str | None = None) -> dict[str, int]:
    """Every artifact file of a run, by path, with its size."""
    out: dict[str, int] = {}
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            out.update(_artifacts(client, run_id, item.path))
        else:
            out[item.path] = int(item.file_size or 0)
    return out


class _Copier:
    """One copy from ``source`` to ``destination``; both registries' MLflow sessions are open meanwhile."""

    def __init__(self, source: Registry, destination: Registry, source_client: Any, client: Any,
                 progress: Progress | None) -> None:
        self.source, self.destination = source, destination
        self.src, self.dst = source_client, client
        self.progress = progress
        self.result = RegistryCopy()
        self.runs: dict[str, str] = {}
        self.models: dict[str, str] = {}

    # ------------------------------------------------------------------ planning

    def plan(self, mlflow: Any) -> tuple[str | None, list[Any], list[Any]]:
        """The source experiment's runs and logged models, after checking that the destination holds only
        copies of them."""
        experiment = self.src.get_experiment_by_name(self.source.experiment)
        if experiment is None:
            return None, [], []
        runs = sorted(_paged(self.src.search_runs, experiment_ids=[experiment.experiment_id],
                             run_view_type=ViewType.ACTIVE_ONLY, max_results=1000),
                      key=lambda r: (r.info.start_time or 0, r.info.run_id))
        models = sorted(_paged(self.src.search_logged_models, experiment_ids=[experiment.experiment_id],
                               max_results=100),
                        key=lambda m: (m.creation_timestamp or 0, m.model_id))
        ours = {r.info.run_id for r in runs}
        target = self.dst.get_experiment_by_name(self.destination.experiment)
        if target is not None:
            foreign = [r for r in _paged(self.dst.search_runs, experiment_ids=[target.experiment_id],
                                         run_view_type=ViewType.ACTIVE_ONLY, max_results=1000)
                       if r.data.tags.get(SOURCE_RUN) not in ours]
            if foreign:
                raise UserError(f"the destination registry {self.destination.location} already has {len(foreign)} "
                                f"run(s) in experiment '{self.destination.experiment}' that were not pushed from "
                                f"here (run {foreign[0].info.run_id})",
                                hint="push into a registry (database or server) that has no such experiment")
        for registered in self.src.search_registered_models():
            mine = {int(mv.version): mv for mv in self.src.search_model_versions(f"name='{registered.name}'")}
            for number, mv in self._target_versions(registered.name).items():
                source = mine.get(number)
                if source is None or (mv.tags or {}).get(SOURCE_RUN) != source.run_id:
                    raise UserError(f"the destination registry {self.destination.location} already has model "
                                    f"'{registered.name}' version {number}, not pushed from here",
                                    hint="push into a registry that does not have this model")
        return str(experiment.experiment_id), runs, models

    def _target_versions(self, name: str) -> dict[int, Any]:
        try:
            return {int(mv.version): mv for mv in self.dst.search_model_versions(f"name='{name}'")}
        except Exception:  # noqa: BLE001 - MLflow raises its own error for a model that does not exist
            return {}

    # ------------------------------------------------------------------ runs

    def copy_runs(self, mlflow: Any, runs: list[Any]) -> None:
        experiment_id = self.destination._experiment_id(mlflow)
        copied = {r.data.tags[SOURCE_RUN]: r for r in _paged(
            self.dst.search_runs, experiment_ids=[experiment_id], run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000) if SOURCE_RUN in r.data.tags}
        self.result.runs = len(runs)
        for i, run in enumerate(runs):
            target = copied.get(run.info.run_id)
            if target is not None and target.data.tags.get(_COMPLETE) != "true":
                self.dst.delete_run(target.info.run_id)  # an interrupted copy: made again, whole
                target = None
            if target is None:
                new_id = self._new_run(experiment_id, run)
                self.result.runs_copied += 1
            else:
                new_id = target.info.run_id
                changed = {k: v for k, v in self._run_tags(run).items() if target.data.tags.get(k) != v}
                for key, value in changed.items():
                    self.dst.set_tag(new_id, key, value)
            self.runs[run.info.run_id] = new_id
            self._sync_artifacts(run, new_id)
            if target is None:
                self.dst.set_tag(new_id, _COMPLETE, "true")
                if run.info.status != "RUNNING":
                    self.dst.set_terminated(new_id, status=run.info.status, end_time=run.info.end_time)
            if self.progress is not None:
                self.progress(i + 1, len(runs), "runs")

    def _new_run(self, experiment_id: str, run: Any) -> str:
        new_id = str(self.dst.create_run(experiment_id, start_time=run.info.start_time, tags=self._run_tags(run),
                                         run_name=run.info.run_name).info.run_id)
        params = [Param(k, v) for k, v in sorted(run.data.params.items())]
        for start in range(0, len(params), 100):
            self.dst.log_batch(new_id, params=params[start:start + 100])
        metrics = [Metric(m.key, m.value, m.timestamp, m.step) for key in sorted(run.data.metrics)
                   for m in self.src.get_metric_history(run.info.run_id, key)]
        for start in range(0, len(metrics), 1000):
            self.dst.log_batch(new_id, metrics=metrics[start:start + 1000])
        return new_id

    def _run_tags(self, run: Any) -> dict[str, str]:
        """The tags of a run's copy: the source's, and where it was copied from (a copy of a copy names the
        copy it was made from)."""
        tags = {**run.data.tags, SOURCE_RUN: run.info.run_id, COPIED_FROM: self.source.location}
        tags.pop(_COMPLETE, None)
        return tags

    def _sync_artifacts(self, run: Any, new_id: str) -> None:
        """Send the run's artifacts the destination run lacks (or holds with another size)."""
        wanted = _artifacts(self.src, run.info.run_id)
        there = _artifacts(self.dst, new_id) if wanted else {}
        for path, size in sorted(wanted.items()):
            if there.get(path) == size:
                continue
            local = self.source._local(run.info.artifact_uri, path)
            folder = str(Path(path).parent) if "/" in path else None
            with self.destination._s3_environment():
                self.dst.log_artifact(new_id, str(local), folder)
            self.result.artifacts_copied += 1

    # ------------------------------------------------------------------ logged models

    def copy_models(self, mlflow: Any, models: list[Any]) -> None:
        experiment_id = self.destination._experiment_id(mlflow)
        copied = {m.tags[SOURCE_MODEL]: m for m in _paged(self.dst.search_logged_models,
                                                           experiment_ids=[experiment_id], max_results=100)
                  if SOURCE_MODEL in (m.tags or {})}
        self.result.models = len(models)
        for i, model in enumerate(models):
            target = copied.get(model.model_id)
            if target is not None and (target.tags or {}).get(_COMPLETE) == "true":
                self.models[model.model_id] = target.model_id
                continue
            tags = {**(model.tags or {}), SOURCE_MODEL: model.model_id, COPIED_FROM: self.source.location}
            run_id = self.runs.get(model.source_run_id) if model.source_run_id else None
            new = self.dst.create_logged_model(experiment_id, name=model.name, source_run_id=run_id, tags=tags,
                                               params=dict(model.params or {}), model_type=model.model_type)
            local = self.source._local(model.artifact_location)
            with self.destination._s3_environment():
                self.dst.log_model_artifacts(new.model_id, str(local))
            status = str(getattr(model.status, "name", model.status))
            if status in ("READY", "FAILED"):
                self.dst.finalize_logged_model(new.model_id, status)
            self.dst.set_logged_model_tags(new.model_id, {_COMPLETE: "true"})
            self.models[model.model_id] = new.model_id
            self.result.models_copied += 1
            if self.progress is not None:
                self.progress(i + 1, len(models), "models")

    # ------------------------------------------------------------------ registered models

    def copy_registered(self) -> None:
        for registered in sorted(self.src.search_registered_models(), key=lambda m: m.name):
            name = registered.name
            existing = self._target_versions(name)
            if not existing and not self._registered_exists(name):
                self.dst.create_registered_model(name, tags=dict(registered.tags or {}),
                                                 description=registered.description)
            versions = sorted(self.src.search_model_versions(f"name='{name}'"), key=lambda mv: int(mv.version))
            for mv in versions:
                number = int(mv.version)
                tags = self._version_tags(mv)
                if number in existing:
                    changed = {k: v for k, v in tags.items() if (existing[number].tags or {}).get(k) != v}
                    for key, value in changed.items():
                        self.dst.set_model_version_tag(name, str(number), key, value)
                    continue
                self._create_version(name, number, mv, tags)
                self.result.versions_copied += 1
            self.result.versions[name] = [int(mv.version) for mv in versions]
            aliases = {alias: int(version) for alias, version in (registered.aliases or {}).items()}
            target_aliases = dict(self.dst.get_registered_model(name).aliases or {})
            for alias in sorted(set(target_aliases) - set(aliases)):
                self.dst.delete_registered_model_alias(name, alias)
            for alias, version in sorted(aliases.items()):
                if str(target_aliases.get(alias)) != str(version):
                    self.dst.set_registered_model_alias(name, alias, str(version))
            self.result.aliases[name] = aliases

    def _registered_exists(self, name: str) -> bool:
        return any(m.name == name for m in self.dst.search_registered_models(filter_string=f"name='{name}'"))

    def _version_tags(self, mv: Any) -> dict[str, str]:
        run_id = self.runs.get(mv.run_id, "") if mv.run_id else ""
        tags = {SOURCE_CREATED: str(mv.creation_timestamp), **dict(mv.tags or {}), SOURCE_VERSION: str(mv.version),
                SOURCE_RUN: mv.run_id or "", COPIED_FROM: self.source.location}
        if f"{TAG}.run_id" in tags:
            tags[f"{TAG}.run_id"] = run_id
        return tags

    def _create_version(self, name: str, number: int, mv: Any, tags: dict[str, str]) -> None:
        """Register version ``number``: versions the source deleted are made and deleted again first."""
        source_model = (mv.source or "").removeprefix("models:/")
        model_id = self.models.get(source_model)
        if model_id is None:
            raise StoreError(f"{name}/{number}: its logged model {mv.source} was not found in the source registry "
                             f"{self.source.location}")
        run_id = self.runs.get(mv.run_id) if mv.run_id else None
        while True:
            created = self.dst.create_model_version(name, f"models:/{model_id}", run_id=run_id, tags=tags,
                                                    description=mv.description, model_id=model_id)
            made = int(created.version)
            if made == number:
                return
            self.dst.delete_model_version(name, str(made))
            if made > number:
                raise StoreError(f"the destination registry {self.destination.location} has already used version "
                                 f"numbers of '{name}' up to {made}: version {number} cannot keep its number",
                                 hint="push into a registry that does not have this model")


def plan_registry(source: Registry, destination: Registry) -> None:
    """Check, reading only, that ``destination`` holds nothing but copies from ``source``.

    Raises
    ------
    UserError
        If it holds runs or versions that are not copies from here.
    """
    if not source.exists() or not destination.exists():
        return
    with source._mlflow() as mlflow_module, destination._mlflow() as mlflow:
        _Copier(source, destination, source._client(mlflow_module), destination._client(mlflow), None).plan(mlflow)


def copy_registry(source: Registry, destination: Registry, progress: Progress | None = None) -> RegistryCopy:
    """Copy every run, logged model, registered version and alias of ``source``'s experiment to ``destination``.

    Raises
    ------
    UserError
        If the destination already holds runs or versions that are not copies from here.
    StoreError
        If something cannot be copied; what was copied stays, and copying again goes on from there.
    """
    if not source.exists():
        return RegistryCopy()
    with source._mlflow() as mlflow_module, destination._mlflow() as mlflow:
        copier = _Copier(source, destination, source._client(mlflow_module), destination._client(mlflow), progress)
        experiment_id, runs, models = copier.plan(mlflow)
        if experiment_id is None:
            return copier.result
        copier.copy_runs(mlflow, runs)
        copier.copy_models(mlflow, models)
        copier.copy_registered()
        return copier.result


def _comparable(info: VersionInfo) -> dict[str, Any]:
    tags = {k: v for k, v in info.tags.items() if k not in COPY_TAGS}
    return {"aliases": info.aliases, "tags": tags, "metrics": info.metrics, "params": info.params,
            "created": info.created}


def check_copy(source: Registry, destination: Registry) -> list[str]:
    """What differs between every version of ``source`` and its copy in ``destination``: tags, metrics,
    parameters, aliases and the model file's digest read back from the copy (empty when they agree)."""
    problems = []
    for name in source.model_names():
        copies = {info.version: info for info in destination.versions(name)}
        for info in source.versions(name):
            copy = copies.get(info.version)
            if copy is None:
                problems.append(f"{name}/{info.version} is missing from the copy")
                continue
            mine, theirs = _comparable(info), _comparable(copy)
            # tags the copy has and the source has not are the destination's own records (a verify or parity
            # run there after an earlier push): not a difference of the copy
            theirs["tags"] = {k: v for k, v in theirs["tags"].items() if k in mine["tags"]}
            if mine != theirs:
                keys = sorted(k for k in mine if mine[k] != theirs[k])
                tags = sorted(k for k in mine["tags"] if mine["tags"][k] != theirs["tags"].get(k))
                problems.append(f"{name}/{info.version}: the copy's {', '.join(keys)} differ"
                                + (f" ({', '.join(tags)})" if tags else ""))
            digest = destination.model_file_digest(copy)
            recorded = info.tags.get(f"{TAG}.model.file_digest")
            if recorded and digest != recorded:
                problems.append(f"{name}/{info.version}: the copied model file's digest is {digest}, the "
                                f"recorded one {recorded}")
    return problems

