"""A lockstep project: its configuration and its store, and what can be done with them.

This is the Python API behind the CLI.

Examples
--------
>>> import lockstep
>>> project = lockstep.Project("examples/telco-churn")      # doctest: +SKIP
>>> result = project.ingest()                               # doctest: +SKIP
>>> result.snapshot.version, result.changed                 # doctest: +SKIP
(0, True)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lockstep.catalog import Catalog
from lockstep.core.config import Config, load_config
from lockstep.core.environment import capture
from lockstep.core.lazy import lazy_module
from lockstep.core.requirements import lock_requirements, model_distributions
from lockstep.data.ingest import ingest
from lockstep.features.build import build_features
from lockstep.registry.mlflow_registry import Registry
from lockstep.reproducibility.lineage import load_lineage
from lockstep.store import Store, write_generated_folder
from lockstep.training.train import train
from lockstep.workflow import retrain_loop, run_system

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    import lockstep.docgen.card as card
    import lockstep.docgen.facts as docfacts
    import lockstep.docgen.lineage_graph as lineage_graph
    import lockstep.docgen.render as render
    import lockstep.evaluation.promotion as promotion
    import lockstep.inference.batch as batch
    import lockstep.inference.docker as docker
    import lockstep.inference.onnx.export as onnx_export
    import lockstep.monitoring.monitor as monitoring
    import lockstep.monitoring.quality as live
    import lockstep.monitoring.report as drift_report
    import lockstep.push as push
    import lockstep.reproducibility.check as checks
    import lockstep.reproducibility.envdiff as envdiff
    import lockstep.reproducibility.parity as parity_paths
    import lockstep.reproducibility.stages as stages
    import lockstep.reproducibility.verify as verification
    from lockstep.data.diff import TableDiff
    from lockstep.data.ingest import IngestResult, Progress
    from lockstep.evaluation.promotion import PromotionResult
    from lockstep.features.build import FeatureResult
    from lockstep.push import Progress as CopyProgress
    from lockstep.push import PushReport
    from lockstep.registry.versions import LoadedModel, VersionInfo
    from lockstep.store import FeatureInfo, SnapshotInfo
    from lockstep.training.train import TrainResult

else:  # what one command uses (the docs, the service's image, monitoring, the proofs): imported by it
    card = lazy_module("lockstep.docgen.card")
    docfacts = lazy_module("lockstep.docgen.facts")
    lineage_graph = lazy_module("lockstep.docgen.lineage_graph")
    render = lazy_module("lockstep.docgen.render")
    promotion = lazy_module("lockstep.evaluation.promotion")
    batch = lazy_module("lockstep.inference.batch")
    docker = lazy_module("lockstep.inference.docker")
    onnx_export = lazy_module("lockstep.inference.onnx.export")
    monitoring = lazy_module("lockstep.monitoring.monitor")
    live = lazy_module("lockstep.monitoring.quality")
    drift_report = lazy_module("lockstep.monitoring.report")
    push = lazy_module("lockstep.push")
    checks = lazy_module("lockstep.reproducibility.check")
    envdiff = lazy_module("lockstep.reproducibility.envdiff")
    parity_paths = lazy_module("lockstep.reproducibility.parity")
    stages = lazy_module("lockstep.reproducibility.stages")
    verification = lazy_module("lockstep.reproducibility.verify")

__all__ = ["Project"]

T = TypeVar("T")


class Project:
    """A project folder holding ``lockstep.toml``.

    Parameters
    ----------
    path : str or Path, default "."
        The project folder.
    config : Config, optional
        An already-loaded configuration (then ``path`` is ignored).

    Attributes
    ----------
    config : Config
    store : Store
    """

    def __init__(self, path: str | Path = ".", config: Config | None = None) -> None:
        self.config = config if config is not None else load_config(path)
        self.store: Store = Store.of(self.config)
        self.catalog = Catalog(self.config, self.store)

    def __repr__(self) -> str:
        return f"Project({str(self.config.project_dir)!r})"

    @property
    def path(self) -> Path:
        return self.config.project_dir

    def traced(self, step: str, work: Callable[[], T], **call: Any) -> T:
        """``work()`` as one step, an OpenLineage run with ``[lineage]`` on (see :meth:`Catalog.traced`)."""
        return self.catalog.traced(step, work, **call)

    def ingest(self, source: str | Path | None = None, *, quarantine: bool = False, force: bool = False,
               progress: Progress | None = None) -> IngestResult:
        """Validate the raw source and snapshot it if it changed (see :func:`lockstep.data.ingest`)."""
        return self.traced("ingest", lambda: ingest(
            self.config, self.store, source=Path(source) if source is not None else None, quarantine=quarantine,
            force=force, progress=progress))

    def snapshots(self) -> list[SnapshotInfo]:
        """Every raw snapshot, oldest first."""
        return self.catalog.snapshots()

    def snapshot(self, version: int | None = None) -> SnapshotInfo:
        """The metadata of snapshot ``version`` (default: the latest)."""
        return self.catalog.snapshot(version)

    def read_snapshot(self, version: int | None = None) -> pa.Table:
        """The rows of snapshot ``version`` (default: the latest)."""
        return self.catalog.read_snapshot(version)

    def describe(self, version: int | None = None) -> dict:
        """Metadata, column summaries, splits and target balance of a snapshot."""
        return self.catalog.describe(version)

    def diff(self, old: int, new: int) -> TableDiff:
        """What changed from snapshot ``old`` to snapshot ``new``."""
        return self.catalog.diff(old, new)

    # ------------------------------------------------------------------ features

    def build_features(self, raw_version: int | None = None, *, force: bool = False,
                       progress: Progress | None = None, compute: str | None = None) -> FeatureResult:
        """Compute the feature set from a raw snapshot, or find it up to date (see :mod:`lockstep.features.build`);
        ``compute`` (``"local"`` or ``"dask"``) overrides ``[compute] backend``."""
        return self.traced("features", lambda: build_features(
            self.config, self.store, raw_version=raw_version, force=force, progress=progress, compute=compute))

    def feature_versions(self) -> list[FeatureInfo]:
        """Every version of the project's feature set, oldest first."""
        return self.catalog.feature_versions()

    def feature_info(self, version: int | None = None) -> FeatureInfo:
        """The metadata of a feature set version (default: the latest)."""
        return self.catalog.feature_info(version)

    def read_features(self, version: int | None = None) -> pa.Table:
        """The rows of a feature set version: id, features, label, split."""
        return self.catalog.read_features(version)

    def describe_features(self, version: int | None = None) -> dict:
        """Metadata, lineage back to the raw snapshot, and a summary of every feature column."""
        return self.catalog.describe_features(version)

    def diff_features(self, old: int, new: int) -> dict:
        """What changed between two feature set versions: rows, columns, summaries and lineage."""
        return self.catalog.diff_features(old, new)

    # ------------------------------------------------------------------ training and the registry

    @property
    def registry(self) -> Registry:
        """The store's MLflow tracking and model registry."""
        return Registry.of(self.config)

    def push(self, destination: str, *, registry: str | None = None, artifacts: str | None = None,
             progress: CopyProgress | None = None) -> PushReport:
        """Copy the store and registry to ``destination`` (``s3://...`` or a folder; see :mod:`lockstep.push`)."""
        return push.push_project(self.config, destination, registry=registry, artifacts=artifacts, progress=progress)

    def train(self, features_version: int | None = None, *, candidate: str | None = None, force: bool = False,
              progress: Progress | None = None, compute: str | None = None) -> TrainResult:
        """Train, evaluate, track and register a model, or find it up to date (see :mod:`lockstep.training.train`);
        ``compute`` (``"local"`` or ``"dask"``) overrides ``[compute] backend``."""
        self.store.ensure()
        return self.traced("train", lambda: train(
            self.config, self.store, self.registry, features_version=features_version, candidate=candidate,
            force=force, progress=progress, compute=compute))

    def model_ref(self, text: str | None = None, default_alias: str | None = None):
        """Parse a model reference; the name defaults to the project's registered model."""
        return self.catalog.model_ref(text, default_alias)

    def model_version(self, ref: str | None = None) -> VersionInfo:
        """A registered version: ``NAME@ALIAS``, ``NAME/VERSION``, or the latest of the project's model."""
        return self.registry.version(self.model_ref(ref))

    def model_versions(self, name: str | None = None) -> list[VersionInfo]:
        """Every version of a registered model (default: the project's), oldest first."""
        return self.registry.versions(name or self.config.model_name)

    def promote(self, ref: str | None = None) -> PromotionResult:
        """Make a version (default: the project's ``@challenger``) the champion if the gates pass."""
        return self.traced("promote", lambda: promotion.promote(
            self.config, self.store, self.registry, self.model_ref(ref, default_alias="challenger")))

    def load_model(self, ref: str | None = None) -> LoadedModel:
        """Load a registered model (default: ``@champion``), checked against its recorded fingerprint."""
        return self.registry.load(self.model_ref(ref, default_alias="champion"))

    def export_onnx(self, ref: str | None = None):
        """Export a registered version (default: ``@champion``) to ONNX, check parity, store it with the version."""
        return onnx_export.export_onnx(self.store, self.registry, self.model_ref(ref, default_alias="champion"))

    def predict(self, output: str, *, input: str | Path | None = None, features_version: int | None = None,
                model: str | None = None, fmt: str | None = None, quarantine: bool = False,
                chunk_rows: int = 100_000, compute: str | None = None):
        """Batch predictions with a registered model (see :mod:`lockstep.inference.batch`); ``compute``
        (``"local"`` or ``"dask"``) overrides ``[compute] backend``."""
        return self.traced("predict", lambda: batch.predict_batch(
            self.config, self.store, self.registry, self.model_ref(model, "champion"),
            input_path=Path(input) if input is not None else None, features_version=features_version, output=output,
            fmt=fmt, quarantine=quarantine, chunk_rows=chunk_rows, compute=compute),
            input=input, features_version=features_version)

    # ------------------------------------------------------------------ reproducibility

    def verify(self, ref: str | None = None, *, recorded_code: bool = False, full: bool = False,
               threads: int | None = None, strict_env: bool = False, progress: Progress | None = None,
               compute: str | None = None):
        """Rebuild a registered version (default: ``@champion``) from its lineage and compare every stage
        (see :mod:`lockstep.reproducibility.verify`); with ``full``, the search runs where ``compute`` says."""
        return self.traced("verify", lambda: verification.verify(
            self.config, self.store, self.registry, self.model_ref(ref, default_alias="champion"),
            recorded_code=recorded_code, full=full, threads=threads, strict_env=strict_env, progress=progress,
            compute=compute))

    def parity(self, ref: str | None = None, *, rows: int | None = None, http: bool = True, batch: bool = True,
               progress: Progress | None = None):
        """Compare every prediction path of a version (default: ``@champion``) on the same rows
        (see :mod:`lockstep.reproducibility.parity`)."""
        return parity_paths.parity(self.config, self.store, self.registry,
                                   self.model_ref(ref, default_alias="champion"), rows=rows, http=http, batch=batch,
                                   progress=progress)

    def check(self, champion: str | None = None, challenger: str | None = None, *,
              only: tuple[str, ...] | None = None):
        """The ML regression gates for CI: golden predictions, promotion gates, schema compatibility
        (see :mod:`lockstep.reproducibility.check`)."""
        return checks.run_checks(self.config, self.store, self.registry,
                                 champion=self.model_ref(champion, default_alias="champion"),
                                 challenger=self.model_ref(challenger, default_alias="challenger"),
                                 only=only or checks.CHECKS)

    def env_diff(self, ref: str | None = None):
        """The current environment against the one a version (default: ``@champion``) was trained in."""
        info = self.registry.version(self.model_ref(ref, default_alias="champion"))
        lineage = load_lineage(self.registry, info, self.path)
        return info, envdiff.diff_environments(lineage.environment, capture(),
                                               model_packages=model_distributions(stages.model_modules(lineage)))

    def env_lock(self, ref: str | None = None):
        """The exact requirements of a version (default: ``@champion``), from its recorded environment."""
        info = self.registry.version(self.model_ref(ref, default_alias="champion"))
        lineage = load_lineage(self.registry, info, self.path)
        roots = ["lockstep", *sorted(model_distributions(stages.model_modules(lineage)))]
        return lock_requirements(lineage.environment, roots,
                                 title=f"requirements of {info.name}/{info.version} (model fingerprint "
                                 f"{info.fingerprint[:12]}), as recorded when it was trained")

    def docker(self, ref: str | None = None, *, out: str | Path, port: int = 8000):
        """Write the build context of an image serving a version (default: ``@champion``) to ``out``
        (see :mod:`lockstep.inference.docker`)."""
        info = self.registry.version(self.model_ref(ref, default_alias="champion"))
        lineage = load_lineage(self.registry, info, self.path)
        context = docker.docker_context(self.registry, info, self.env_lock(f"{info.name}/{info.version}"),
                                        lineage.environment, port=port)
        write_generated_folder(out, context.files, what=f"lockstep docker {info.name}/{info.version}")
        return info, context

    def docs(self, ref: str | None = None, *, out: str | Path):
        """Write the documentation of a version (default: ``@champion``) to ``out``: ``README.md`` (the model
        card), ``index.md``, ``index.html`` (self-contained), ``plots/`` and ``requirements.txt`` (see
        :mod:`lockstep.docgen`)."""
        info = self.registry.version(self.model_ref(ref, default_alias="champion"))
        facts = docfacts.gather(self.config, self.store, self.registry, info)
        pictures = lineage_graph.draw(lineage_graph.lineage_graph(self.store, self.registry, info, facts.lineage),
                                      f"{info.name}/{info.version}")
        facts.figures["lineage.png"] = pictures["png"]
        markdown = render.render_markdown(facts)
        files: dict[str, bytes | str] = {
            "README.md": card.render_model_card(facts, markdown),
            "index.md": markdown,
            "index.html": render.render_html(markdown, facts.figures, f"{info.name} version {info.version}"),
            "requirements.txt": self.env_lock(f"{info.name}/{info.version}").text(),
            "plots/lineage.svg": pictures["svg"],
            **{f"plots/{name}": data for name, data in facts.figures.items()},
        }
        write_generated_folder(out, files, what=f"lockstep docs {info.name}/{info.version}")
        return info, sorted(files)

    def lineage(self, ref: str | None = None, *, out: str | Path):
        """Draw the lineage of a version (default: ``@champion``) to ``out``: ``lineage.svg``, ``lineage.png``
        and ``lineage.json`` (see :mod:`lockstep.docgen.lineage_graph`)."""
        info = self.registry.version(self.model_ref(ref, default_alias="champion"))
        graph = lineage_graph.lineage_graph(self.store, self.registry, info, load_lineage(self.registry, info,
                                                                                          self.path))
        pictures = lineage_graph.draw(graph, f"{info.name}/{info.version}")
        files: dict[str, bytes | str] = {"lineage.svg": pictures["svg"], "lineage.png": pictures["png"],
                                         "lineage.json": json.dumps(graph.to_dict(), indent=1, default=str)}
        write_generated_folder(out, files, what=f"lockstep lineage {info.name}/{info.version}")
        return info, graph

    def run(self, *, candidates: bool = False, verify: bool = True, parity: bool = True,
            force_checks: bool = False, progress=None, compute: str | None = None):
        """Ingest, features, train, promote, verify and parity, each skipped when its inputs are unchanged
        (see :mod:`lockstep.workflow`); features and training run where ``compute`` says (default:
        ``[compute] backend``)."""
        return self.traced("run", lambda: run_system(
            self, candidates=candidates, verify=verify, parity=parity, force_checks=force_checks, progress=progress,
            compute=compute))

    # ------------------------------------------------------------------ monitoring

    def monitor(self, ref: str | None = None, *, data: str | Path | None = None, since=None, until=None,
                quality: bool = False, retrain: bool = False, inputs_only: bool = False,
                out: str | Path | None = None, chunk_rows: int = 250_000, progress=None, compute: str | None = None):
        """Compare a window (a file, or the audit log) with a version's reference profile (default:
        ``@champion``); optionally the live quality from feedback, and the retraining loop
        (see :mod:`lockstep.monitoring`). The run is recorded in the store's monitoring log. ``compute``
        (``"local"`` or ``"dask"``) overrides ``[compute] backend``."""
        self.store.check_writable("record the monitoring run in")  # before the work, not after it
        return self.traced("monitor", lambda: self._monitor(ref, data=data, since=since, until=until, quality=quality,
                                                            retrain=retrain, inputs_only=inputs_only, out=out,
                                                            chunk_rows=chunk_rows, progress=progress, compute=compute),
                           data=data)

    def _monitor(self, ref: str | None, *, data: str | Path | None, since, until, quality: bool, retrain: bool,
                 inputs_only: bool, out: str | Path | None, chunk_rows: int, progress, compute: str | None):
        registry = self.registry
        loaded = registry.load(self.model_ref(ref, default_alias="champion"))
        exact = self.model_ref(f"{loaded.info.name}/{loaded.info.version}")
        report = monitoring.monitor(self.config, self.store, registry, exact,
                                    data=Path(data) if data is not None else None, since=since, until=until,
                                    inputs_only=inputs_only, chunk_rows=chunk_rows, progress=progress, loaded=loaded,
                                    compute=compute)
        if quality:
            report.quality = live.live_quality(self.config, self.store, loaded.info, loaded.schema.classes,
                                               since=since, until=until)
        if retrain:
            report.actions = retrain_loop(self, report)
        files = drift_report.report_files(report)
        if out is not None:
            write_generated_folder(out, files, what=f"lockstep monitor {report.model}/{report.version}")
        payload = report.to_dict()
        if retrain:
            payload["mlflow_run"] = registry.log_monitor(payload, files)
        self.store.ensure()
        self.store.monitoring.append(payload)
        return report, payload
