"""Nothing a client sends produces a 5xx: property-based tests and schemathesis against the OpenAPI schema."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockstep import Project
from lockstep.inference.service import ServeSettings, create_app

from .conftest import read_rows
from .serving import Server, make_trained_project, record

pytestmark = [pytest.mark.service]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return make_trained_project(tmp_path_factory.mktemp("fuzz") / "telco", rows=300)


@pytest.fixture(scope="module")
def client(project: Project):
    base = ServeSettings(store_root=str(project.store.root), experiment=project.config.project.name,
                        model="@champion", default_name=project.config.model_name, max_batch=20)
    with TestClient(create_app(base)) as c:
        yield c


@pytest.fixture(scope="module")
def good(project: Project) -> dict:
    header, rows = read_rows(project.path / "data" / "wa_churn.csv")
    return record(dict(zip(header, rows[0])))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_arbitrary_json_is_never_a_server_error(client: TestClient, body) -> None:
    response = client.post("/predict", content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code in (200, 413, 422), response.text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_are_never_a_server_error(client: TestClient, raw: bytes) -> None:
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (413, 422) or (response.status_code == 200 and raw.strip()[:1] in (b"{", b"["))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_records_with_random_field_values(client: TestClient, good: dict, data) -> None:
    """Start from a valid record and replace some fields with anything: a valid result is 200, else 422."""
    candidate = dict(good)
    for name in data.draw(st.sets(st.sampled_from(sorted(good)), max_size=4)):
        candidate[name] = data.draw(st.none() | st.booleans() | st.integers(-10**6, 10**6)
                                    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
    response = client.post("/predict", json=candidate)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json()["predictions"][0] in ("No", "Yes")


def test_schemathesis_finds_no_server_error(project: Project) -> None:
    import schemathesis
    from schemathesis.checks import not_a_server_error

    with Server(project.path) as server:
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        failures: list[str] = []
        cases: list[int] = []

        def fuzz(op):
            @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy())
            def run(case) -> None:
                cases.append(1)
                response = case.call(base_url=server.url)
                try:
                    case.validate_response(response, checks=[not_a_server_error])
                except Exception as exc:  # noqa: BLE001 - collected and reported below
                    failures.append(f"{op.method.upper()} {op.path}: {exc}")

            return run

        for operation in schema.get_all_operations():
            fuzz(operation.ok())()
        assert len(cases) > 40
        assert not failures, failures[:3]


DEEP = "[" * 50_000 + "]" * 50_000
NASTY = [
    ("/feedback", DEEP),
    ("/feedback", json.dumps({"request_id": "x", "label": [[["Yes"]]]})),
    ("/feedback", json.dumps({"request_id": "x", "label": {"nested": {"label": "Yes"}}})),
    ("/feedback", '{"request_id": "x", "label": ' + "9" * 5000 + "}"),
    ("/feedback", '{"request_id": "\\ud800", "label": "Yes"}'),
    ("/feedback", json.dumps({"request_id": "x" * 10_000, "label": "Yes"})),
    ("/admin/reload", "[" * 4000 + "]" * 4000),
    ("/admin/reload", '{"model": {"a": 1}}'),
    ("/admin/reload", "[1, 2]"),
    ("/predict", DEEP),
    ("/predict", '{"contract": "\\ud800"}'),
    ("/predict", '{"tenure": ' + "9" * 5000 + "}"),
]


@pytest.mark.parametrize(("path", "body"), NASTY, ids=[f"{p}-{i}" for i, (p, _b) in enumerate(NASTY)])
def test_nasty_bodies_are_client_errors(client: TestClient, path: str, body: str) -> None:
    """Deep nesting, nested labels, 5,000-digit integers, lone surrogates, huge ids: 4xx, never a 500."""
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    response.json()  # and the answer is JSON


def test_the_openapi_document_describes_every_body(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    feedback = paths["/feedback"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert feedback == {"$ref": "#/components/schemas/Feedback"}
    components = client.get("/openapi.json").json()["components"]["schemas"]
    assert components["Feedback"]["required"] == ["request_id", "label"]
    assert components["Feedback"]["properties"]["label"]["anyOf"][0] == {"enum": ["No", "Yes"]}
    assert "requestBody" in paths["/admin/reload"]["post"]
