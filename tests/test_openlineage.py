"""OpenLineage run events (``[lineage]``): every step's START and COMPLETE or FAIL, its datasets linked from step to
step, the file and HTTP transports, and a backend that is down or hangs costing a step at most its timeout."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest

from lockstep import Project
from lockstep.docgen.openlineage import LineageEvents

from .conftest import EXAMPLES, TELCO_CSV, lockstep_here, read_rows, write_rows
from .openlineage_schema import validate
from .serving import TRAIN, free_port

pytestmark = [pytest.mark.integration]

STEPS = ("ingest", "features", "train", "promote", "verify", "run", "predict", "monitor")


def _lineage(project: Path, text: str) -> None:
    config = project / "lockstep.toml"
    config.write_text(config.read_text() + f"\n[lineage]\n{text}\n")


def _events(path: Path) -> list[dict]:
    return [validate(line) for line in path.read_text().splitlines()]


def _runs(events: list[dict]) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for event in events:
        runs.setdefault(event["run"]["runId"], []).append(event)
    return runs


def _step(events: list[dict], step: str, state: str = "COMPLETE") -> dict:
    found = [e for e in events if e["job"]["name"].endswith(f".{step}") and e["eventType"] == state]
    assert found, f"no {state} event of {step}"
    return found[-1]


def _datasets(event: dict, side: str) -> dict[str, dict]:
    return {d["facets"]["lockstep"]["kind"]: d for d in event[side]}


def _key(dataset: dict) -> tuple[str, str, str | None]:
    return dataset["namespace"], dataset["name"], dataset["facets"].get("version", {}).get("datasetVersion")


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, list[dict], Path]:
    """The telco example on 400 rows with ``[lineage] file``: ``run`` (without parity), a batch predict, a monitor."""
    folder = tmp_path_factory.mktemp("lineage") / "telco"
    shutil.copytree(EXAMPLES / "telco-churn", folder, ignore=shutil.ignore_patterns(".lockstep", "data"))
    header, rows = read_rows(TELCO_CSV)
    write_rows(folder / "data" / "wa_churn.csv", header, rows[:400])
    text = (folder / "lockstep.toml").read_text()
    text = text[: text.index("# Training:")] + TRAIN
    (folder / "lockstep.toml").write_text(text.replace("max_shared_fraction = 0.01", "max_shared_fraction = 0.05"))
    _lineage(folder, 'file = "lineage/events.jsonl"\nnamespace = "team-a"')
    project = Project(folder)
    project.run(parity=False)
    window = write_rows(folder.parent / "window.csv", header, rows[400:700])
    project.predict(str(folder.parent / "out.parquet"), input=window)
    project.monitor(data=window)
    return project, _events(folder / "lineage" / "events.jsonl"), window


def test_every_step_is_a_run_with_start_then_complete(traced) -> None:
    project, events, _ = traced
    runs = _runs(events)
    names = {e["job"]["name"] for e in events}
    assert names == {f"telco-churn.{step}" for step in STEPS}
    assert {e["job"]["namespace"] for e in events} == {"team-a"}
    for run_events in runs.values():
        assert [e["eventType"] for e in run_events] == ["START", "COMPLETE"], run_events[0]["job"]["name"]
        assert run_events[0]["eventTime"] <= run_events[1]["eventTime"]
        facet = run_events[1]["job"]["facets"]["lockstep"]
        assert facet["step"] == run_events[1]["job"]["name"].split(".")[-1] and facet["project"] == "telco-churn"
    # the steps of `run` name it as their parent; the later commands are runs of their own
    run_id = _step(events, "run")["run"]["runId"]
    for step in ("ingest", "features", "train", "promote", "verify"):
        parent = _step(events, step)["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == run_id and parent["job"]["name"] == "telco-churn.run"
    assert "parent" not in _step(events, "predict")["run"]["facets"]


def test_datasets_link_each_step_to_the_next(traced) -> None:
    project, events, window = traced
    ingest, features = _step(events, "ingest"), _step(events, "features")
    train, promote, verify = _step(events, "train"), _step(events, "promote"), _step(events, "verify")
    snapshot = project.snapshot()
    raw = _datasets(ingest, "outputs")["raw"]
    assert _key(raw) == ("file", (project.store.root / "raw").resolve().as_posix(), str(snapshot.version))
    assert raw["facets"]["lockstep"]["fingerprint"] == snapshot.fingerprint
    assert raw["outputFacets"]["outputStatistics"]["rowCount"] == snapshot.rows == 400
    assert {f["name"] for f in raw["facets"]["schema"]["fields"]} == set(snapshot.schema)
    source = _datasets(ingest, "inputs")["source"]
    assert source["name"] == (project.path / "data" / "wa_churn.csv").resolve().as_posix()
    # raw -> features -> model
    assert _key(_datasets(features, "inputs")["raw"]) == _key(raw)
    feature_set = _datasets(features, "outputs")["features"]
    assert _key(_datasets(train, "inputs")["features"]) == _key(feature_set)
    info = project.model_version("churn-serve@champion")
    model = _datasets(train, "outputs")["model"]
    assert _key(model) == (project.registry.location, "models/churn-serve", str(info.version))
    assert model["facets"]["lockstep"]["fingerprint"] == info.fingerprint
    assert train["run"]["facets"]["lockstep"]["mlflowRunId"] == info.run_id
    assert train["job"]["facets"]["lockstep"]["codeFingerprint"] == info.tags["lockstep.code.fingerprint"]
    assert features["job"]["facets"]["lockstep"]["codeFingerprint"] == project.feature_info().code["fingerprint"]
    # the model goes on to promotion, verification, predictions and monitoring
    assert _key(_datasets(promote, "inputs")["model"]) == _key(model)
    assert _datasets(promote, "outputs")["model"]["facets"]["lockstep"]["aliases"] == ["champion"]
    assert promote["run"]["facets"]["lockstep"]["outcome"]["promoted"] is True
    assert {_key(d) for d in verify["inputs"]} == {_key(model), _key(feature_set), _key(raw)}
    assert verify["run"]["facets"]["lockstep"]["outcome"]["reproduced"] is True
    predict, monitor = _step(events, "predict"), _step(events, "monitor")
    assert _key(_datasets(predict, "inputs")["model"]) == _key(model)
    assert _datasets(predict, "inputs")["prediction input"]["name"] == window.resolve().as_posix()
    out = _datasets(predict, "outputs")["predictions"]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 300
    batch = project.store.predictions.runs().to_pylist()[-1]
    assert out["facets"]["lockstep"]["fingerprint"] == batch["output_fingerprint"]
    assert _datasets(monitor, "inputs")["monitoring window"]["inputFacets"]["inputStatistics"]["rowCount"] == 300
    assert monitor["run"]["facets"]["lockstep"]["outcome"]["data_drift"] in (True, False)


def test_a_failed_step_sends_fail_with_the_error(traced, tmp_path: Path) -> None:
    project, _, _ = traced
    events = project.path / "lineage" / "events.jsonl"
    before = len(events.read_text().splitlines())
    result = lockstep_here("predict", "-o", "out.parquet", "--input", str(tmp_path / "missing.csv"), "--project",
                           str(project.path))
    assert result.returncode == 2, result.stderr
    new = _events(events)[before:]
    assert [e["eventType"] for e in new] == ["START", "FAIL"]
    assert new[0]["run"]["runId"] == new[1]["run"]["runId"]
    error = new[1]["run"]["facets"]["errorMessage"]
    assert "missing.csv" in error["message"] and error["programmingLanguage"] == "python"
    assert "Traceback" in error["stackTrace"]


def test_the_validator_rejects_broken_events(traced) -> None:
    """The schema the tests check against is strict enough to fail."""
    _, events, _ = traced
    good = _step(events, "train")
    for broken in ({**good, "run": {**good["run"], "runId": "not-a-uuid"}},
                   {k: v for k, v in good.items() if k != "job"},
                   {**good, "eventType": "FINISHED"},
                   {**good, "extra": 1}):
        with pytest.raises((jsonschema.ValidationError, ValueError)):
            validate(broken)
    facet = {**good["job"]["facets"]["lockstep"]}
    del facet["step"]
    with pytest.raises(jsonschema.ValidationError):
        validate({**good, "job": {**good["job"], "facets": {"lockstep": facet}}})


# ---------------------------------------------------------------------------------------------- the HTTP transport


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []
    delay = 0.0

    def do_POST(self) -> None:  # noqa: N802 - the standard library's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.delay)
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def collector():
    handler = type("Handler", (_Collector,), {"received": [], "delay": 0.0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def test_http_transport_posts_each_event(small_project: Path, collector) -> None:
    server, handler = collector
    _lineage(small_project, f'url = "http://127.0.0.1:{server.server_address[1]}"')
    result = lockstep_here("ingest", "--project", str(small_project))
    assert result.returncode == 0, result.stderr
    assert "lineage" not in result.stderr
    assert [path for path, _ in handler.received] == ["/api/v1/lineage"] * 2
    start, complete = (validate(event) for _, event in handler.received)
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert complete["job"] == {**complete["job"], "namespace": "lockstep", "name": "small.ingest"}
    assert complete["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 6


def test_a_backend_that_is_down_is_a_warning(small_project: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _lineage(small_project, f'url = "http://127.0.0.1:{port}"\nfile = "events.jsonl"')
    result = lockstep_here("ingest", "--project", str(small_project))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("lineage: could not send") == 1  # once: the command leaves it alone afterwards
    assert f"127.0.0.1:{port}" in result.stderr and "Snapshot version 0 written" in result.stdout
    # the file backend still got both events
    assert [e["eventType"] for e in _events(small_project / "events.jsonl")] == ["START", "COMPLETE"]


def test_a_backend_that_hangs_costs_at_most_its_timeout(small_project: Path, collector) -> None:
    server, handler = collector
    handler.delay = 30.0  # far beyond the timeout: without one the step would wait 30 s per event
    _lineage(small_project, f'url = "http://127.0.0.1:{server.server_address[1]}"\ntimeout = 0.5')
    began = time.perf_counter()
    result = lockstep_here("ingest", "--project", str(small_project))
    elapsed = time.perf_counter() - began
    assert result.returncode == 0, result.stderr
    assert "lineage: could not send the START event of small.ingest" in result.stderr
    assert "Timeout" in result.stderr
    assert elapsed < 10, elapsed  # one timeout (0.5 s), then no more attempts; 30 s or more otherwise


def test_off_by_default_and_bad_settings_are_user_errors(small_project: Path) -> None:
    result = lockstep_here("ingest", "--project", str(small_project))
    assert result.returncode == 0 and "lineage" not in result.stderr
    assert not list(small_project.rglob("*.jsonl"))
    _lineage(small_project, 'url = "ftp://marquez:5000"')
    result = lockstep_here("ingest", "--project", str(small_project))
    assert result.returncode == 2 and "lineage.url" in result.stderr
    port = free_port()
    text = (small_project / "lockstep.toml").read_text().replace("ftp://marquez:5000", f"http://127.0.0.1:{port}")
    (small_project / "lockstep.toml").write_text(text.replace("[lineage]\n", "[lineage]\ntimeout = 0\n"))
    result = lockstep_here("ingest", "--project", str(small_project))
    assert result.returncode == 2 and "lineage.timeout" in result.stderr


def test_lineage_never_undoes_a_step(small_project: Path, monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    """A bug in describing a finished step's datasets is a warning; the step's result stands, COMPLETE is sent."""
    def broken(self, result, call):
        raise KeyError("snapshot")

    monkeypatch.setattr(LineageEvents, "_ingest", broken)
    _lineage(small_project, 'file = "events.jsonl"')
    project = Project(small_project)
    result = project.ingest()
    assert result.changed and project.snapshot().rows == 6
    events = _events(small_project / "events.jsonl")
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"] and events[1]["outputs"] == []
    assert "could not describe the datasets of small.ingest" in caplog.text
