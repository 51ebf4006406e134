"""``lockstep parity``: the same rows through every path that makes predictions, compared.

The rows are the test split of the version's feature set (or its first
``rows`` rows). The paths:

``in-process``
    The reference: the features of those rows as the feature store holds
    them, through the model pipeline, in this process, the way training
    evaluated the model.
``training-run``
    The outputs the training run stored for the test split (only when the
    whole test split is compared: outputs depend on the batch, see below).
``registry``
    The registered pipeline (feature pipeline + model) loaded from the
    registry, on the raw rows: ``predict`` and ``predict_proba``.
``predict``
    ``lockstep predict`` run as a separate process on a Parquet file of the raw rows.
``http``
    ``lockstep serve`` started on a free local port, the rows sent as one
    ``POST /predict`` request.
``onnx``
    The version's ONNX export in onnxruntime, when there is one.

Every path gets the rows as one batch: numerical libraries choose their
kernels by the shape of the input, so the same row in batches of different
sizes may differ in its last bit. The Python paths must be bitwise identical
to the reference; ONNX, which computes in float32 in places, within its
stated tolerance.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lockstep._version import __version__
from lockstep.core.compare import compare_outputs, within_tolerance
from lockstep.core.errors import UserError
from lockstep.core.frames import feature_frame
from lockstep.core.prediction import model_outputs
from lockstep.core.values import plain
from lockstep.inference.onnx.export import TOLERANCE
from lockstep.inference.runtime import OnnxRuntime
from lockstep.reproducibility.keys import parity_key
from lockstep.store.exchange import file_exchange, scratch_file

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.refs import ModelRef
    from lockstep.registry.versions import LoadedModel
    from lockstep.store import Store

__all__ = ["ParityPath", "ParityReport", "parity"]

Progress = Callable[[str], None]
PYTHON_PATHS = ("training-run", "registry", "predict", "http")


@dataclass
class ParityPath:
    """One prediction path compared with the in-process reference."""

    name: str
    status: str  # PASS, FAIL or SKIPPED
    rows: int = 0
    label_mismatches: int = 0
    max_abs_diff: float = 0.0
    identical: bool = False
    tolerance: float = 0.0
    detail: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "rows": self.rows,
                "label_mismatches": self.label_mismatches, "max_abs_diff": self.max_abs_diff,
                "identical": self.identical, "tolerance": self.tolerance, "detail": self.detail,
                "seconds": round(self.seconds, 3)}


@dataclass
class ParityReport:
    """The outcome of :func:`parity`."""

    model: str
    version: int
    fingerprint: str
    rows: int
    paths: list[ParityPath] = field(default_factory=list)
    seconds: float = 0.0
    time: str = ""
    key: str = ""

    @property
    def identical(self) -> bool:
        """Every path that ran agrees: bit for bit for Python, within tolerance for ONNX."""
        return all(p.status != "FAIL" for p in self.paths)

    def to_dict(self) -> dict:
        return {"model": self.model, "version": self.version, "fingerprint": self.fingerprint,
                "identical": self.identical, "rows": self.rows, "paths": [p.to_dict() for p in self.paths],
                "seconds": round(self.seconds, 3), "time": self.time, "key": self.key, "lockstep_version": __version__}

    def summary(self) -> dict:
        return {"identical": self.identical, "rows": self.rows, "time": self.time, "key": self.key,
                "paths": {p.name: p.status for p in self.paths}, "lockstep_version": __version__}


def _lockstep_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lockstep", *args]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]




def _rows(store: Store, info, limit: int | None):
    """The raw rows and the stored features of the test split (its first ``limit`` rows)."""
    name = info.tags["lockstep.features.name"]
    table = store.features(name)
    feature = table.info(int(info.tags["lockstep.features.version"]))
    features = table.read(feature.version)
    test = np.flatnonzero(np.asarray(features.column("split").to_pylist(), dtype=object) == "test")
    if limit is not None:
        test = test[:limit]
    if len(test) == 0:
        raise UserError(f"feature set version {feature.version} has no test rows to compare")
    indices = pa.array(test, pa.int64())
    raw = store.snapshots.read(feature.raw_version).take(indices)
    return raw, features.take(indices), feature, len(test) == int(feature.splits.get("test", -1))


def _compare(name: str, reference: tuple, labels: Any, scores: Any, task: str, tolerance: float, started: float,
             detail: str = "") -> ParityPath:
    regression = task == "regression"
    comparison = compare_outputs(reference[0], reference[1], labels, scores, regression=regression)
    passed = within_tolerance(comparison, tolerance, regression=regression) if tolerance else comparison.identical
    return ParityPath(name, "PASS" if passed else "FAIL", comparison.rows, comparison.label_mismatches,
                      comparison.max_abs_diff, comparison.identical, tolerance, detail,
                      time.perf_counter() - started)


def _scores_from_table(table: Any, classes: list | None):
    if classes is None or f"proba_{classes[0]}" not in table.columns:
        return None
    return np.column_stack([np.asarray(table[f"proba_{c}"], dtype=np.float64) for c in classes])


def _predict_path(config: Config, ref_text: str, raw, loaded: LoadedModel, reference, task: str) -> ParityPath:
    started = time.perf_counter()
    classes = list(loaded.model.classes_) if task == "classification" else None
    with file_exchange(prefix="lockstep-parity-") as files:
        source, target = files.put_table("rows.parquet", raw), files.path("predictions.parquet")
        command = _lockstep_command("predict", "--project", str(config.project_dir), "--model", ref_text,
                                    "--input", str(source), "--output", str(target),
                                    "--chunk-rows", str(max(raw.num_rows, 1)), "--json")
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return ParityPath("predict", "FAIL", raw.num_rows, detail=f"`lockstep predict` exited {done.returncode}: "
                              f"{(done.stderr or done.stdout).strip()[-500:]}", seconds=time.perf_counter() - started)
        out = files.get_table("predictions.parquet").to_pandas()
    return _compare("predict", reference, out["prediction"].to_numpy(), _scores_from_table(out, classes), task, 0.0,
                    started, "lockstep predict in a separate process")


def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the service was not ready after {timeout:.0f} s")


class _Service:
    """``lockstep serve`` in a separate process on a free local port, started early so that it loads while
    the other paths run."""

    def __init__(self, config: Config, ref_text: str, body: bytes, rows: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = _lockstep_command("serve", "--project", str(config.project_dir), "--model", ref_text, "--host",
                                    "127.0.0.1", "--port", str(self.port), "--max-batch", str(max(rows, 1)),
                                    "--max-body-bytes", str(len(body) + 1024), "--no-audit", "--workers", "1")
        env = {k: v for k, v in os.environ.items() if k not in ("LOCKSTEP_API_TOKEN", config.serve.token_env)}
        self.log = scratch_file()
        self.started = time.perf_counter()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=self.log, env=env)

    def ask(self, body: bytes) -> dict:
        _wait_ready(self.url, self.process)
        request = urllib.request.Request(self.url + "/predict", data=body, headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())

    def log_tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace").strip()[-500:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _http_path(service: _Service, body: bytes, rows: int, loaded: LoadedModel, reference, task: str) -> ParityPath:
    try:
        answer = service.ask(body)
    except (OSError, RuntimeError, urllib.error.HTTPError) as exc:
        return ParityPath("http", "FAIL", rows, detail=f"the service did not answer: {exc}. {service.log_tail()}",
                          seconds=time.perf_counter() - service.started)
    labels = answer["predictions"]
    scores = None
    if task == "classification" and answer.get("probabilities") is not None:
        names = [str(c) for c in loaded.model.classes_]
        scores = np.array([[p[n] for n in names] for p in answer["probabilities"]], dtype=np.float64)
    return _compare("http", reference, labels, scores, task, 0.0, service.started,
                    f"lockstep serve on 127.0.0.1:{service.port}, one request of {rows} records")


def _onnx_path(registry: Registry, loaded: LoadedModel, records: list[dict], reference, task: str) -> ParityPath:
    started = time.perf_counter()
    if not loaded.info.tags.get("lockstep.onnx.digest"):
        return ParityPath("onnx", "SKIPPED", detail="no ONNX export (`lockstep export onnx` makes one)")
    runtime = OnnxRuntime(loaded, registry)
    labels, probabilities = runtime.predict(records)
    scores = None
    if probabilities is not None:
        names = [str(c) for c in loaded.model.classes_]
        scores = np.array([[p[n] for n in names] for p in probabilities], dtype=np.float64)
    return _compare("onnx", reference, labels, scores, task, TOLERANCE, started, "onnxruntime, one run")


def _training_run_path(registry: Registry, loaded: LoadedModel, reference: tuple[Any, Any], whole: bool,
                       ) -> ParityPath:
    """The outputs the training run stored for the test split, against the reference (all of the split only)."""
    if not whole:
        return ParityPath("training-run", "SKIPPED", detail="the training run stored outputs for the whole test "
                          "split; a part of it is a different batch")
    t0 = time.perf_counter()
    task = loaded.schema.task
    table = registry.artifact_table(loaded.info, "predictions.parquet").to_pandas()
    table = table[table["split"] == "test"]
    classes = list(loaded.model.classes_) if task == "classification" else None
    labels = table["prediction"].to_numpy()
    ref_labels = reference[0]
    if labels.dtype == object and np.asarray(ref_labels).dtype != object:  # stored as text
        ref_labels = np.asarray([str(v) for v in ref_labels], dtype=object)
    return _compare("training-run", (ref_labels, reference[1]), labels, _scores_from_table(table, classes), task,
                    0.0, t0, "the outputs the training run stored for the test split")


def _raw_row_paths(config: Config, ref_text: str, raw: pa.Table, loaded: LoadedModel, reference: tuple[Any, Any],
                   batch: bool, service: _Service | None, body: bytes, step: Progress) -> list[ParityPath]:
    """The paths that start from raw rows: the registered pipeline, ``lockstep predict`` and the service."""
    task = loaded.schema.task
    step("predicting with the registered pipeline")
    t0 = time.perf_counter()
    labels, scores = model_outputs(loaded.model, loaded.schema.frame(raw), task)
    paths = [_compare("registry", reference, labels, scores, task, 0.0, t0,
                      "the registered pipeline loaded from the registry, on raw rows")]
    if batch:
        step("running lockstep predict")
        paths.append(_predict_path(config, ref_text, raw, loaded, reference, task))
    else:
        paths.append(ParityPath("predict", "SKIPPED", detail="not requested"))
    if service is not None:
        step("sending the rows to the service")
        paths.append(_http_path(service, body, raw.num_rows, loaded, reference, task))
    else:
        paths.append(ParityPath("http", "SKIPPED", detail="not requested"))
    return paths


def parity(config: Config, store: Store, registry: Registry, ref: ModelRef, *, rows: int | None = None,
           http: bool = True, batch: bool = True, progress: Progress | None = None,
           record: bool = True) -> ParityReport:
    """Compare every prediction path of a registered version on the same rows.

    Parameters
    ----------
    config : Config
    store : Store
    registry : Registry
    ref : ModelRef
    rows : int, optional
        Compare the first ``rows`` rows of the test split (default: all of it).
    http, batch : bool, default True
        Include the HTTP service and the ``lockstep predict`` paths (each starts a process).
    progress : callable, optional
    record : bool, default True
        Keep the report with the model version in the registry.
    """
    step = progress or (lambda _name: None)
    started = time.perf_counter()
    step("loading the model")
    loaded = registry.load(ref)
    info = loaded.info
    ref_text = f"{info.name}/{info.version}"
    task = loaded.schema.task
    step("reading the test rows")
    raw, features, feature, whole = _rows(store, info, rows)
    report = ParityReport(info.name, info.version, info.fingerprint, raw.num_rows,
                          key=parity_key(info, rows, http, batch))

    # The reference: stored features through the model pipeline, as training evaluated it.
    t0 = time.perf_counter()
    columns = list(feature.columns)
    reference = model_outputs(loaded.model[-1], feature_frame(features, columns)[columns], task)
    report.paths.append(ParityPath("in-process", "PASS", raw.num_rows, identical=True,
                                   detail="feature store rows through the model pipeline, as training evaluated it",
                                   seconds=time.perf_counter() - t0))
    report.paths.append(_training_run_path(registry, loaded, reference, whole))

    names = list(dict.fromkeys(loaded.schema.inputs))
    records = [{k: plain(v) for k, v in row.items() if k in names} for row in raw.select(names).to_pylist()]
    body = json.dumps(records).encode()
    service = _Service(config, ref_text, body, len(records)) if http else None
    try:
        report.paths += _raw_row_paths(config, ref_text, raw, loaded, reference, batch, service, body, step)
    finally:
        if service is not None:
            service.stop()

    step("running the ONNX export")
    report.paths.append(_onnx_path(registry, loaded, records, reference, task))
    report.seconds = time.perf_counter() - started
    report.time = datetime.now(UTC).isoformat(timespec="seconds")
    if record:
        registry.record_check(info, "parity", report.to_dict(), report.summary())
    return report
