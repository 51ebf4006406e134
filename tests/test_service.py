"""The prediction service: in process (TestClient) and as a real server process on 127.0.0.1."""

from __future__ import annotations

import concurrent.futures
import gc
import json
import signal
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from lockstep import Project
from lockstep.inference.service import ServeSettings, create_app

from .conftest import read_rows
from .serving import Server, make_trained_project, record

pytestmark = [pytest.mark.service]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return make_trained_project(tmp_path_factory.mktemp("serve") / "telco")


@pytest.fixture(scope="module")
def records(project: Project) -> list[dict]:
    header, rows = read_rows(project.path / "data" / "wa_churn.csv")
    return [record(dict(zip(header, row))) for row in rows]


def settings(project: Project, **overrides) -> ServeSettings:
    base = dict(store_root=str(project.store.root), experiment=project.config.project.name, model="@champion",
                default_name=project.config.model_name)
    return ServeSettings(**{**base, **overrides})


@pytest.fixture
def client(project: Project):
    with TestClient(create_app(settings(project))) as c:
        yield c


def test_one_record_and_a_batch(client: TestClient, project: Project, records: list[dict]) -> None:
    response = client.post("/predict", json=records[0])
    assert response.status_code == 200
    body = response.json()
    champion = project.model_version("churn-serve@champion")
    assert body["model"] == {"name": "churn-serve", "version": champion.version, "fingerprint": champion.fingerprint}
    assert response.headers["x-request-id"] == body["request_id"]
    assert body["predictions"][0] in ("No", "Yes")
    assert set(body["probabilities"][0]) == {"No", "Yes"}
    batch = client.post("/predict", json=records[:50]).json()
    assert len(batch["predictions"]) == 50
    # the service gives exactly what the registered model gives on the same rows
    loaded = project.load_model("churn-serve@champion")
    expected = loaded.model.predict_proba(loaded.schema.frame(project.read_snapshot().slice(0, 50)))[:, 1]
    assert [p["Yes"] for p in batch["probabilities"]] == expected.tolist()


def test_a_client_request_id_is_kept(client: TestClient, records: list[dict]) -> None:
    response = client.post("/predict", json=records[0], headers={"X-Request-ID": "order-42"})
    assert response.headers["x-request-id"] == "order-42" and response.json()["request_id"] == "order-42"


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        (lambda r: r.pop("tenure"), "tenure", "missing"),
        (lambda r: r.update(tenure="12"), "tenure", "int_type"),
        (lambda r: r.update(tenure=3.5), "tenure", "int_type"),
        (lambda r: r.update(tenure=-1), "tenure", "greater_than_equal"),
        (lambda r: r.update(contract="Weekly"), "contract", "literal_error"),
        (lambda r: r.update(monthly_charges=None), "monthly_charges", "float_type"),
        (lambda r: r.update(partner=2), "partner", "literal_error"),
        (lambda r: r.update(surprise=1), "surprise", "extra_forbidden"),
        (lambda r: r.update(monthly_charges="29.85"), "monthly_charges", "float_type"),
        (lambda r: r.update(tenure=2**70), "tenure", "less_than_equal"),  # found by schemathesis: was a 500
    ],
)
def test_bad_records_are_422_naming_field_and_rule(client: TestClient, records: list[dict], change, field,
                                                   rule) -> None:
    bad = dict(records[0])
    change(bad)
    response = client.post("/predict", json=bad)
    assert response.status_code == 422
    problems = response.json()["detail"]
    assert any(p["field"] == field and p["rule"] == rule for p in problems), problems


def test_nullable_fields_may_be_null_or_left_out(client: TestClient, records: list[dict]) -> None:
    left_out = {k: v for k, v in records[0].items() if k != "total_charges"}
    assert client.post("/predict", json=left_out).status_code == 200
    assert client.post("/predict", json={**records[0], "total_charges": None}).status_code == 200


def test_the_position_of_a_bad_record_in_a_batch_is_named(client: TestClient, records: list[dict]) -> None:
    batch = [records[0], {**records[1], "contract": "Daily"}, records[2]]
    problems = client.post("/predict", json=batch).json()["detail"]
    assert problems[0]["record"] == 1 and problems[0]["field"] == "contract"


def test_malformed_bodies_are_422(client: TestClient) -> None:
    for body in (b"not json", b"", b"[]", b"42", b'"text"', b"[1, 2]", b'{"a": ', b"null", b"Infinity", b"[NaN]",
                 b'{"monthly_charges": -Infinity}'):
        response = client.post("/predict", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, body


def test_oversized_bodies_and_batches_are_413(project: Project, records: list[dict]) -> None:
    with TestClient(create_app(settings(project, max_batch=10, max_body_bytes=20_000))) as c:
        assert c.post("/predict", json=records[:11]).status_code == 413
        assert c.post("/predict", json=records[:10]).status_code == 200
        assert c.post("/predict", content=b"[" + b" " * 30_000 + b"]",
                      headers={"content-type": "application/json"}).status_code == 413


def test_unknown_fields_can_be_allowed(project: Project, records: list[dict]) -> None:
    with TestClient(create_app(settings(project, allow_unknown_fields=True))) as c:
        assert c.post("/predict", json={**records[0], "surprise": 1}).status_code == 200


def test_predict_keeps_the_router_s_contract_outside_the_router(client: TestClient, records: list[dict]) -> None:
    """/predict is answered ahead of FastAPI's router (the hot path): methods, documentation and a bug's 500 are
    as a routed endpoint's."""
    wrong = client.get("/predict")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST" and wrong.headers["x-request-id"]
    operation = client.get("/openapi.json").json()["paths"]["/predict"]["post"]
    assert set(operation["responses"]) == {"200", "413", "422"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert body[0] == {"$ref": "#/components/schemas/Record"} and body[1]["items"] == body[0]
    state = client.app.state.lockstep
    runtime = state.model.runtime
    state.model.runtime = None  # a bug in the service: the client gets a 500 naming no internals
    try:
        broken = TestClient(client.app, raise_server_exceptions=False).post("/predict", json=records[0])
    finally:
        state.model.runtime = runtime
    assert broken.status_code == 500 and broken.json()["detail"] == "internal error: AttributeError"
    assert len(broken.json()["request_id"]) == 32
    assert client.post("/predict", json=records[0]).status_code == 200


def test_predict_is_answered_outside_fastapi_s_stack_and_the_rest_within_it(project: Project,
                                                                          records: list[dict]) -> None:
    """The service's layer is the app's entry point: /predict never enters FastAPI's middleware, other paths do,
    and both get the layer's request id and metrics."""
    app = create_app(settings(project))
    seen: list[str] = []

    class Counting:  # an ASGI middleware inside FastAPI's stack
        def __init__(self, inner) -> None:
            self.inner = inner

        async def __call__(self, scope, receive, send) -> None:
            if scope["type"] == "http":
                seen.append(scope["path"])
            await self.inner(scope, receive, send)

    app.add_middleware(Counting)
    with TestClient(app) as c:
        answered = c.post("/predict", json=records[0])
        health = c.get("/health")
        missing = c.get("/nowhere")
        text = c.get("/metrics").text
    assert answered.status_code == 200 and answered.headers["x-request-id"] == answered.json()["request_id"]
    assert health.status_code == 200 and health.headers["x-request-id"]
    assert missing.status_code == 404 and missing.headers["x-request-id"]
    assert seen == ["/health", "/nowhere", "/metrics"]
    version = project.model_version("churn-serve@champion").version
    assert f'lockstep_requests_total{{endpoint="/predict",model_version="{version}",status="200"}} 1.0' in text
    assert f'lockstep_requests_total{{endpoint="other",model_version="{version}",status="404"}} 1.0' in text


def test_health_ready_model_metrics_docs(client: TestClient, records: list[dict]) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["ready"] is True
    info = client.get("/model").json()
    assert info["name"] == "churn-serve" and info["task"] == "classification"
    assert info["input_schema"]["contract"]["allowed"] == ["Month-to-month", "One year", "Two year"]
    assert "roc_auc" in info["metrics"]["test"] and info["lineage"]["raw.version"] == "0"
    client.post("/predict", json=records[0])
    client.post("/predict", json={"bad": 1})
    text = client.get("/metrics").text
    assert 'lockstep_requests_total{endpoint="/predict",model_version="1",status="200"}' in text
    assert 'lockstep_errors_total{endpoint="/predict",model_version="1",status="422"}' in text
    assert "lockstep_request_duration_seconds_bucket" in text
    schema = client.get("/openapi.json").json()
    record_schema = schema["components"]["schemas"]["Record"]
    assert "contract" in record_schema["required"]
    assert client.get("/docs").status_code == 200


def test_metrics_follow_prometheus_naming_and_stay_bounded(client: TestClient, records: list[dict]) -> None:
    """The naming guide: a prefix, base units, _total on counters, _info on label-only gauges; and no label
    whose values grow with traffic (request ids, clients, unknown paths)."""
    from prometheus_client.parser import text_string_to_metric_families

    def families() -> dict:
        return {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}

    client.post("/predict", json=records[0])
    client.post("/predict", json={"bad": 0})
    client.get("/no-such-path")
    families()  # the scrape's own series
    before = families()
    for i in range(20):  # traffic that must not add series: new ids, unknown paths, bad bodies
        client.post("/predict", json=records[i % len(records)], headers={"X-Request-ID": f"client-{i}"})
        client.get(f"/no-such-path-{i}")
        client.post("/predict", json={"bad": i})
    after = families()
    assert after.keys() == before.keys()
    ours = {name: family for name, family in after.items() if name.startswith("lockstep_")}
    assert set(after) - set(ours) <= {n for n in after if n.startswith(("process_", "python_"))}
    assert {"lockstep_requests", "lockstep_request_duration_seconds", "lockstep_predicted_records",
            "lockstep_model_info", "lockstep_drift_psi", "process_cpu_seconds"} <= set(after)
    allowed = {"endpoint", "status", "model_version", "name", "version", "fingerprint", "column", "le"}
    for name, family in ours.items():
        samples = [s for s in family.samples if not s.name.endswith("_created")]
        if family.type == "counter":
            assert all(s.name == f"{name}_total" for s in samples), name
        if family.type == "gauge" and all(s.value == 1 for s in samples) and "fingerprint" in str(samples):
            assert name.endswith("_info"), name
        assert not any(unit in name for unit in ("_ms", "milli", "latency", "_minutes")), name
        assert all(set(s.labels) <= allowed for s in samples), (name, samples[:1])
        endpoints = {s.labels.get("endpoint") for s in samples} - {None}
        assert endpoints <= {"/predict", "/feedback", "/health", "/ready", "/model", "/metrics", "/admin/reload",
                             "/docs", "/openapi.json", "other"}, endpoints
    series = {name: len(f.samples) for name, f in ours.items()}
    assert series == {name: len(f.samples) for name, f in before.items() if name.startswith("lockstep_")}


def test_bearer_token(project: Project, records: list[dict]) -> None:
    with TestClient(create_app(settings(project, token="s3cret"))) as c:
        assert c.get("/health").status_code == 200
        for method, path in (("post", "/predict"), ("post", "/feedback"), ("get", "/model"), ("get", "/metrics"),
                             ("get", "/ready"),
                             ("get", "/docs"), ("get", "/openapi.json"), ("post", "/admin/reload")):
            response = getattr(c, method)(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
        wrong = c.post("/predict", json=records[0], headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = c.post("/predict", json=records[0], headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200


def test_every_answered_request_is_in_the_audit_log(project: Project, records: list[dict]) -> None:
    with TestClient(create_app(settings(project))) as c:
        ids = [c.post("/predict", json=records[i]).json()["request_id"] for i in range(5)]
        bad = c.post("/predict", json={"nope": 1})
    table = project.store.audit.read()
    by_id = {r["request_id"]: r for r in table.to_pylist()}
    for rid in ids:
        entry = by_id[rid]
        assert entry["status"] == 200 and entry["model_name"] == "churn-serve" and entry["rows"] == 1
        assert json.loads(entry["inputs"])[0]["contract"] in ("Month-to-month", "One year", "Two year")
        assert json.loads(entry["outputs"])["predictions"][0] in ("No", "Yes")
        assert entry["latency_ms"] > 0 and entry["model_fingerprint"]
    assert by_id[bad.json()["request_id"]]["status"] == 422


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_reload_switches_models_without_failing_requests(project: Project, records: list[dict]) -> None:
    with TestClient(create_app(settings(project))) as c:
        before = c.get("/model").json()["version"]
        # the heap is frozen once the model is loaded; the replaced model is unfrozen, collected, and then the
        # heap is frozen again. A reference cycle that only the model holds, frozen with it, tells.
        assert gc.get_freeze_count() > 0
        cycle = _Cycle()
        c.app.state.lockstep.model.__dict__["_probe"] = cycle
        replaced = weakref.ref(cycle)
        del cycle
        gc.freeze()
        project.train(force=True)
        project.registry.set_alias("churn-serve", "champion", before + 1)
        results: list[int] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                results.append(c.post("/predict", json=records[0]).status_code)

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        reloaded = c.post("/admin/reload")
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        assert reloaded.status_code == 200 and reloaded.json()["model"]["version"] == before + 1
        assert c.get("/model").json()["version"] == before + 1
        assert results and set(results) == {200}
        failed = c.post("/admin/reload", json={"model": "churn-serve/99"})
        assert failed.status_code == 409 and c.get("/model").json()["version"] == before + 1
        deadline = time.time() + 20
        while (replaced() is not None or not gc.get_freeze_count()) and time.time() < deadline:
            time.sleep(0.1)
        assert replaced() is None and gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0  # the lifespan's end unfreezes
    project.registry.set_alias("churn-serve", "champion", before)


def test_an_alias_change_is_picked_up_by_polling(project: Project) -> None:
    versions = [v.version for v in project.model_versions()]
    champion = project.model_version("churn-serve@champion").version
    others = [v for v in versions if v != champion]
    other = others[0] if others else project.train(force=True).version.version
    with TestClient(create_app(settings(project, poll_seconds=0.2))) as c:
        assert c.get("/model").json()["version"] == champion
        project.registry.set_alias("churn-serve", "champion", other)
        deadline = time.time() + 20
        while c.get("/model").json()["version"] != other and time.time() < deadline:
            time.sleep(0.2)
        assert c.get("/model").json()["version"] == other
    project.registry.set_alias("churn-serve", "champion", champion)


# ---------------------------------------------------------------------- a real server process


def _post(url: str, payload: object, headers: dict | None = None) -> tuple[int, dict, dict]:
    data = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"{}")


def test_real_server_process(project: Project, records: list[dict]) -> None:
    with Server(project.path) as server:
        status, headers, body = _post(server.url + "/predict", records[0])
        assert status == 200 and headers["x-request-id"] == body["request_id"]
        status, _, body = _post(server.url + "/predict", {"tenure": "x"})
        assert status == 422
        with httpx.Client() as h:
            assert h.get(server.url + "/docs").status_code == 200
            assert "lockstep_requests_total" in h.get(server.url + "/metrics").text


def test_sigterm_stops_the_service_gracefully_with_exit_0(project: Project, records: list[dict]) -> None:
    """Container runtimes stop services with SIGTERM: the requests in flight are answered, the exit is 0;
    load balancers probe with HEAD."""
    server = Server(project.path)
    server.wait_ready()
    with httpx.Client() as h:
        assert h.head(server.url + "/health").status_code == 200
        assert h.head(server.url + "/ready").status_code == 200
    assert _post(server.url + "/predict", records[0])[0] == 200
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0
    assert "Stopped (SIGTERM)" in server.proc.stderr.read()


def test_real_server_with_token_and_two_workers(project: Project, records: list[dict]) -> None:
    server = Server(project.path, "--workers", "2", env={"LOCKSTEP_API_TOKEN": "tok"})
    try:
        server.wait_ready()
        assert _post(server.url + "/predict", records[0])[0] == 401
        statuses = {_post(server.url + "/predict", records[i], {"Authorization": "Bearer tok"})[0]
                    for i in range(20)}
        assert statuses == {200}
    finally:
        server.stop()


def test_sigkill_mid_load_loses_no_acknowledged_request(project: Project, records: list[dict]) -> None:
    server = Server(project.path)
    server.wait_ready()
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(offset: int) -> None:
        with httpx.Client(timeout=10) as h:
            i = offset
            while not stop.is_set():
                try:
                    response = h.post(server.url + "/predict", json=records[i % len(records)])
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    with lock:
                        acknowledged.append(response.json()["request_id"])
                i += 7

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for k in range(8):
            pool.submit(client, k)
        deadline = time.time() + 30
        while len(acknowledged) < 150 and time.time() < deadline:
            time.sleep(0.05)
        server.stop(signal.SIGKILL)  # no shutdown, no compaction: only what was fsynced survives
        stop.set()
    assert server.proc.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 150
    # restart: the new process compacts the dead one's segments into the table
    with Server(project.path) as again:
        assert _post(again.url + "/predict", records[0])[0] == 200
    logged = set(project.store.audit.read().column("request_id").to_pylist())
    missing = [rid for rid in acknowledged if rid not in logged]
    assert not missing, f"{len(missing)} acknowledged requests are not in the audit log"


def test_a_tampered_model_is_refused_at_start(project: Project) -> None:
    import subprocess
    import sys

    champion = project.model_version("churn-serve@champion")
    model_file = project.registry._version_dir(champion) / "model.skops"
    original = model_file.read_bytes()
    exe = str(Path(sys.executable).with_name("lockstep"))
    try:
        model_file.write_bytes(original[:-10] + b"0123456789")
        out = subprocess.run([exe, "serve", "--project", str(project.path), "--port", "0"], capture_output=True,
                             text=True, timeout=120)
    finally:
        model_file.write_bytes(original)
    assert out.returncode == 2
    assert "changed since it was registered" in out.stderr


@pytest.mark.parametrize(("field", "value", "status"), [
    ("tenure", 2**53, 200), ("tenure", 2**53 + 1, 422), ("tenure", 2**63 - 1, 422), ("tenure", -(2**53) - 1, 422),
    ("tenure", 12.0, 422), ("tenure", True, 422),  # a plain integer field: integers only
    ("female", 1, 200), ("female", 1.0, 422), ("female", True, 422), ("female", 2, 422),  # allowed [0, 1]: the same
])
def test_integer_fields_are_one_range_and_one_rule(client: TestClient, records: list[dict], field: str, value,
                                                   status: int) -> None:
    """Integers beyond ±2**53 are refused on every path (here the service; ingest and predict by the schema),
    and a field with allowed values is as strict about types as a plain integer field."""
    response = client.post("/predict", json={**records[0], field: value})
    assert response.status_code == status, response.text


def test_integers_beyond_the_range_are_refused_at_ingest_and_predict_and_invalid_in_monitoring(
        project: Project, tmp_path: Path) -> None:
    import shutil

    from lockstep.core.errors import SchemaValidationError

    from .conftest import write_rows

    header, rows = read_rows(project.path / "data" / "wa_churn.csv")
    big = [list(r) for r in rows[:200]]
    big[3][header.index("tenure")] = str(2**53 + 1)
    write_rows(tmp_path / "big.csv", header, big)
    with pytest.raises(SchemaValidationError, match=r"column 'tenure': dtype int \(beyond ±2\*\*53"):
        project.predict(str(tmp_path / "out.parquet"), input=tmp_path / "big.csv")
    copy = tmp_path / "copy"
    shutil.copytree(project.path, copy)
    write_rows(copy / "data" / "wa_churn.csv", header, big)
    with pytest.raises(SchemaValidationError, match="beyond ±2"):
        Project(copy).ingest(force=True)
    report, payload = project.monitor(data=tmp_path / "big.csv")  # counted as invalid, not a crash
    assert payload["invalid"] >= 1
