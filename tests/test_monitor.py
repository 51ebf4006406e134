"""Monitoring: drift statistics against known answers, the monitor command, feedback and live quality,
the service's drift gauges and the retraining loop."""

from __future__ import annotations

import json
import math
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from scipy import stats
from scipy.spatial.distance import jensenshannon
from typer.testing import CliRunner

from lockstep import Project
from lockstep.cli import app
from lockstep.core.sections import MonitorConfig
from lockstep.inference.service import ServeSettings, create_app
from lockstep.monitoring.drift import judge_column
from lockstep.profiles.stats import categorical_stats, numeric_stats, psi
from lockstep.profiles.summary import new_summary

from .conftest import EXAMPLES, TELCO_CSV, read_rows
from .serving import TRAIN, Server, make_trained_project, record

pytestmark = [pytest.mark.slow, pytest.mark.service]

runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def window(reference_series: pd.Series, values) -> tuple:
    reference = new_summary(reference_series)
    current = reference.empty_like()
    if reference.kind == "numeric":
        current.update(np.asarray(values, dtype=np.float64))
    else:
        current.update(pd.Series(values, dtype=object))
    return reference, current


# ---------------------------------------------------------------------------------------------- statistics


def test_psi_by_hand() -> None:
    expected = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.7 - 0.5) * math.log(0.7 / 0.5)
    assert psi([50, 50], [30, 70]) == pytest.approx(expected, rel=1e-12)
    assert psi([10, 10, 10], [10, 10, 10]) == 0.0
    # an empty bin is smoothed to a share of 1e-4, not infinite
    smoothed = (1e-4 - 0.5) * math.log(1e-4 / 0.5) + (1 - 0.5) * math.log(1 / 0.5)
    assert psi([5, 5], [0, 9]) == pytest.approx(smoothed, rel=1e-12)


def test_numeric_statistics_match_scipy() -> None:
    rng = np.random.default_rng(7)
    ref = rng.normal(10, 2, 40_000)
    for cur in (rng.normal(10, 2, 15_000), rng.normal(10.8, 2.5, 15_000), rng.lognormal(2.3, 0.2, 15_000)):
        reference, current = window(pd.Series(ref), cur)
        got = numeric_stats(reference, current)
        exact = stats.ks_2samp(ref, cur)
        assert got["ks"]["value"] == pytest.approx(exact.statistic, abs=2e-3)  # the grid has 1,000 bins
        if exact.pvalue > 1e-6:
            assert got["ks"]["p_value"] == pytest.approx(exact.pvalue, rel=0.25, abs=0.01)
        wasserstein = stats.wasserstein_distance(ref, cur) / ref.std()
        assert got["wasserstein"]["value"] == pytest.approx(wasserstein, rel=0.02, abs=1e-3)
        # PSI on the reference deciles, by hand
        edges = np.quantile(ref, np.linspace(0, 1, 11))
        edges[0], edges[-1] = -np.inf, np.inf
        by_hand = psi(np.histogram(ref, edges)[0], np.histogram(cur, edges)[0])
        assert got["psi"]["value"] == pytest.approx(by_hand, rel=0.05, abs=2e-3)


def test_values_beyond_the_grid_count_in_the_tails() -> None:
    ref = np.arange(1000, dtype=float)
    reference, current = window(pd.Series(ref), ref + 500)  # half of the window is above the reference
    got = numeric_stats(reference, current)
    assert 500 <= current.above <= 502 and current.below == 0  # 999 and up lie above the 99.9% quantile
    assert got["wasserstein"]["distance"] == pytest.approx(stats.wasserstein_distance(ref, ref + 500), rel=0.01)
    assert got["ks"]["value"] == pytest.approx(0.5, abs=2e-3)


def test_categorical_statistics_match_scipy() -> None:
    rng = np.random.default_rng(3)
    ref = pd.Series(rng.choice(["a", "b", "c"], 20_000, p=[0.5, 0.3, 0.2]))
    cur = list(rng.choice(["a", "b", "c", "d"], 8_000, p=[0.4, 0.3, 0.2, 0.1]))
    reference, current = window(ref, cur)
    got = categorical_stats(reference, current)
    counts_ref = ref.value_counts().reindex(["a", "b", "c"]).to_numpy().tolist() + [0]
    counts_cur = pd.Series(cur).value_counts().reindex(["a", "b", "c", "d"]).to_numpy().tolist()
    chi2, p_value, _, _ = stats.chi2_contingency(np.array([counts_ref, counts_cur]), correction=False)
    assert got["chi2"]["chi2_statistic"] == pytest.approx(chi2, rel=1e-12)
    assert got["chi2"]["p_value"] == pytest.approx(p_value, abs=1e-300)
    assert got["chi2"]["value"] == pytest.approx(math.sqrt(chi2 / (len(ref) + len(cur))), rel=1e-12)
    p = np.array(counts_ref) / len(ref)
    q = np.array(counts_cur) / len(cur)
    assert got["jensen_shannon"]["value"] == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    assert got["unseen"]["value"] == pytest.approx(counts_cur[3] / len(cur))
    assert got["unseen"]["categories"] == ["d"] and got["unseen"]["exact"] is True


def _synthetic(n: int, rng: np.random.Generator, missing: float = 0.05) -> pd.DataFrame:
    income = rng.lognormal(10, 0.6, n)
    income[rng.random(n) < missing] = np.nan
    return pd.DataFrame({"age": rng.normal(40, 12, n).round(), "income": income,
                         "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1]),
                         "member": rng.random(n) < 0.4})


def _drifted(reference: pd.DataFrame, current: pd.DataFrame, cfg: MonitorConfig) -> dict[str, set[str]]:
    out = {}
    for name in reference.columns:
        ref = new_summary(reference[name])
        cur = ref.empty_like()
        if ref.kind == "numeric":
            cur.update(current[name].to_numpy(dtype=np.float64, na_value=np.nan))
            stat = numeric_stats(ref, cur)
        else:
            cur.update(current[name])
            stat = categorical_stats(ref, cur)
        out[name] = {s.name for s in judge_column(ref.kind, stat, cfg, cur.present) if s.drift}
    return out


def test_no_drift_on_resamples_of_the_reference_false_alarm_rate() -> None:
    """The defaults' false-alarm rate on windows drawn from the reference's own distribution."""
    rng = np.random.default_rng(11)
    reference = _synthetic(50_000, rng)
    cfg = MonitorConfig()
    alarms = 0
    repeats = 40
    for _ in range(repeats):
        current = _synthetic(2_000, rng)
        if any(_drifted(reference, current, cfg).values()):
            alarms += 1
    assert alarms / repeats <= 0.05, alarms  # measured 0 of 40; docs/monitoring.md has the full figures


def test_controlled_shifts_are_found_by_the_right_statistics() -> None:
    rng = np.random.default_rng(5)
    reference = _synthetic(50_000, rng)
    cfg = MonitorConfig()
    shifted = _synthetic(3_000, rng)
    shifted["age"] += 9  # three quarters of a standard deviation
    got = _drifted(reference, shifted, cfg)
    assert {"ks", "psi", "wasserstein"} <= got["age"] and not got["plan"] and not got["income"]
    mix = _synthetic(3_000, rng)
    mix["plan"] = rng.choice(["basic", "plus", "pro"], 3_000, p=[0.3, 0.3, 0.4])
    got = _drifted(reference, mix, cfg)
    assert {"chi2", "jensen_shannon", "psi"} <= got["plan"] and not got["age"]
    holes = _synthetic(3_000, rng, missing=0.25)
    got = _drifted(reference, holes, cfg)
    assert got["income"] == {"missing"} and not got["age"]
    new_category = _synthetic(3_000, rng)
    new_category.loc[new_category.index[:150], "plan"] = "enterprise"
    got = _drifted(reference, new_category, cfg)
    assert "unseen" in got["plan"]


def test_distances_count_only_with_a_significant_test_and_p_values_are_corrected() -> None:
    def judged(stats: dict, cfg: MonitorConfig, tests: int = 1) -> set[str]:
        return {s.name for s in judge_column("numeric", stats, cfg, 500, tests) if s.drift}

    cfg = MonitorConfig()
    noise = {"psi": {"value": 0.3}, "wasserstein": {"value": 0.2}, "ks": {"value": 0.08, "p_value": 0.2},
             "missing": {"value": 0.0, "p_value": 1.0}}
    assert judged(noise, cfg) == set()  # large distances, but the KS test sees no difference: noise
    real = {**noise, "ks": {"value": 0.2, "p_value": 1e-3}}
    assert judged(real, cfg) == {"psi", "wasserstein", "ks"}
    # p = 1e-3 is significant alone, not among 40 columns (0.01 / 40 = 2.5e-4), unless uncorrected
    assert judged(real, cfg, tests=40) == set()
    assert judged(real, MonitorConfig(pvalue_correction="none"), tests=40) == {"psi", "wasserstein", "ks"}


def test_missing_rate_change_is_tested_exactly() -> None:
    from scipy.stats import binomtest

    reference = pd.Series(np.where(np.arange(10_000) % 10 == 0, np.nan, 1.0))  # 10% missing
    ref = new_summary(reference)
    for missing, drift in ((20, False), (45, True)):  # of 200 rows: 10% (as trained) and 22.5%
        cur = ref.empty_like()
        cur.update(np.where(np.arange(200) < missing, np.nan, 1.0))
        got = numeric_stats(ref, cur)["missing"]
        assert got["value"] == pytest.approx(abs(missing / 200 - 0.1))
        assert got["p_value"] == pytest.approx(binomtest(missing, 200, 0.1).pvalue, rel=1e-12)
        flagged = {s.name for s in judge_column("numeric", numeric_stats(ref, cur), MonitorConfig(), cur.present)
                   if s.drift}
        assert ("missing" in flagged) is drift


def test_a_mostly_missing_column_is_not_judged_on_a_handful_of_values() -> None:
    rng = np.random.default_rng(1)
    reference = pd.Series(np.where(rng.random(20_000) < 0.97, None, rng.choice(["x", "y"], 20_000)), dtype=object)
    current = pd.Series(np.where(rng.random(500) < 0.97, None, rng.choice(["x", "y"], 500, p=[0.9, 0.1])),
                        dtype=object)
    ref = new_summary(reference)
    cur = ref.empty_like()
    cur.update(current)
    judged = judge_column("categorical", categorical_stats(ref, cur), MonitorConfig(), cur.present)
    assert not any(s.drift for s in judged)
    assert all("too_few_values" in s.detail for s in judged if s.name != "missing")


# ---------------------------------------------------------------------------------------------- monitor command


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Project:
    return make_trained_project(tmp_path_factory.mktemp("monitor") / "telco", rows=2000)


def _batch(folder: Path, name: str, shift: bool, rows: int = 1500, seed: int = 0, factor: float = 1.25) -> Path:
    data = pd.read_csv(TELCO_CSV).sample(rows, replace=False, random_state=seed)
    if shift:
        data["monthly_charges"] = (data["monthly_charges"] * factor).round(2)
        data.loc[data["contract"] != "Month-to-month", "contract"] = "Month-to-month"
    path = folder / name
    data.to_csv(path, index=False)
    return path


def test_monitor_a_file_finds_drift_and_no_drift(trained: Project, tmp_path: Path) -> None:
    shifted = _batch(tmp_path, "shifted.csv", True)
    fresh = _batch(tmp_path, "fresh.csv", False, seed=1)
    code, out, err = cli("monitor", "--data", str(shifted), "--out", str(tmp_path / "report"), "--project",
                         str(trained.path), "--json")
    assert code == 3, err
    payload = json.loads(out)
    assert payload["drift"] is True and payload["rows"] == 1500
    flagged = {(f["group"], f["name"], f["statistic"]) for f in payload["features"] if f["drift"]}
    assert ("raw", "monthly_charges", "ks") in flagged and ("raw", "contract", "chi2") in flagged
    assert ("features", "monthly_charges", "psi") in flagged
    assert any(group == "prediction" for group, _, _ in flagged)
    for item in payload["features"]:
        assert {"name", "statistic", "value", "threshold", "drift"} <= set(item)
    report = tmp_path / "report"
    assert json.loads((report / "report.json").read_text())["drift"] is True
    page = (report / "report.html").read_text()
    assert "monthly_charges" in page and page.count("data:image/png;base64,") == len(payload["drifted"])
    assert (report / "plots" / "raw-monthly_charges.png").stat().st_size > 1000
    code, out, _ = cli("monitor", "--data", str(fresh), "--project", str(trained.path), "--json")
    assert code == 0 and json.loads(out)["drift"] is False
    # every run is in the store's monitoring log
    log = trained.store.monitoring.read().to_pylist()
    assert [r["drift"] for r in log[-2:]] == [True, False]


def test_parquet_and_csv_windows_give_the_same_statistics(trained: Project, tmp_path: Path) -> None:
    """Parquet text is read dictionary-encoded and counted by code; CSV text as strings: the same numbers."""
    shifted = _batch(tmp_path, "shifted.csv", True, rows=800, seed=5)
    pd.read_csv(shifted).to_parquet(tmp_path / "shifted.parquet", index=False)
    results = []
    for path in (shifted, tmp_path / "shifted.parquet"):
        code, out, _ = cli("monitor", "--data", str(path), "--chunk-rows", "1000", "--project", str(trained.path),
                           "--json")
        assert code == 3
        results.append([(f["group"], f["name"], f["statistic"], f["value"]) for f in json.loads(out)["features"]])
    assert results[0] == results[1]


def test_monitor_inputs_only_and_bad_input(trained: Project, tmp_path: Path) -> None:
    shifted = _batch(tmp_path, "shifted.csv", True, rows=500)
    code, out, _ = cli("monitor", "--data", str(shifted), "--inputs-only", "--project", str(trained.path), "--json")
    assert code == 3 and {f["group"] for f in json.loads(out)["features"]} == {"raw"}
    code, _, err = cli("monitor", "--data", str(tmp_path / "nope.csv"), "--project", str(trained.path))
    assert code == 2 and "nope.csv does not exist" in err
    code, _, err = cli("monitor", "--data", str(shifted), "--since", "2026-01-01", "--project", str(trained.path))
    assert code == 2 and "either --data or a time window" in err
    pd.read_csv(shifted).drop(columns=["tenure"]).to_csv(tmp_path / "narrow.csv", index=False)
    code, _, err = cli("monitor", "--data", str(tmp_path / "narrow.csv"), "--project", str(trained.path))
    assert code == 2 and "no column(s) tenure" in err
    code, _, err = cli("monitor", "--since", "yesterday", "--project", str(trained.path))
    assert code == 2 and "is not an ISO date" in err
    code, _, err = cli("monitor", "--since", "2999-01-01", "--project", str(trained.path))
    assert code == 2 and "no rows to monitor" in err


def test_a_model_with_an_old_profile_asks_for_retraining(tmp_path: Path) -> None:
    project = make_trained_project(tmp_path / "telco", rows=600)
    info = project.model_version("churn-serve@champion")
    path = project.registry._artifact_path(info.run_id, "reference_profile.json")
    profile = json.loads(path.read_text())
    del profile["version"]
    path.write_text(json.dumps(profile))
    code, _, err = cli("monitor", "--data", str(TELCO_CSV), "--project", str(project.path))
    assert code == 2 and "older format" in err and "train it again" in err


# ---------------------------------------------------------------------------------------------- audit window


def _settings(project: Project, **overrides) -> ServeSettings:
    return ServeSettings(store_root=str(project.store.root), experiment=project.config.project.name,
                         model="@champion", default_name=project.config.model_name, **overrides)


def test_the_audit_log_is_streamed_with_its_filters_pushed_down(tmp_path: Path) -> None:
    from lockstep.store.audit import AuditLog

    log = AuditLog(tmp_path / "audit")
    start = datetime(2026, 11, 1, tzinfo=UTC)

    def records(first: int, count: int) -> list[dict]:
        return [{"request_id": f"r{i}", "time": (start + timedelta(minutes=i)).isoformat(),
                 "endpoint": "/predict" if i % 4 else "/feedback", "status": 422 if i % 7 == 0 else 200,
                 "model_name": "m", "model_version": 1 + i % 2, "rows": 1, "inputs": json.dumps([{"x": i}]),
                 "outputs": "{}"} for i in range(first, first + count)]

    writer = log.writer(max_records=100)
    writer.write(records(0, 100))
    writer.write(records(100, 100))  # a second segment: the first is finished
    writer.close()
    assert log.compact() == 100  # the writer's process is alive: its newest segment stays a segment
    writer = log.writer()
    writer.write(records(200, 50))  # still in a segment
    since, until = start + timedelta(minutes=30), start + timedelta(minutes=230)
    batches = list(log.scan(since=since, until=until, model="m/2", endpoint="/predict", status=200,
                            columns=["request_id", "time"], batch_rows=16))
    assert batches and all(b.num_rows <= 16 for b in batches) and batches[0].schema.names == ["request_id", "time"]
    got = sorted(r for b in batches for r in b.column("request_id").to_pylist())
    expected = sorted(f"r{i}" for i in range(30, 230) if i % 2 == 1 and i % 4 and i % 7)
    assert got == expected
    whole = log.read(since=since, until=until, model="m/2")
    assert sorted(r["request_id"] for r in whole.to_pylist() if r["endpoint"] == "/predict"
                  and r["status"] == 200) == expected
    writer.close()


def test_audit_window_feedback_and_live_quality(tmp_path: Path) -> None:
    project = make_trained_project(tmp_path / "telco", rows=1200)
    header, rows = read_rows(TELCO_CSV)
    rows = [dict(zip(header, r)) for r in rows[1200:1600]]
    with TestClient(create_app(_settings(project))) as client:
        answered = []
        for i in range(0, 300, 3):  # one batch of three records per request
            batch = rows[i:i + 3]
            body = client.post("/predict", json=[record(r) for r in batch]).json()
            answered.append((body["request_id"], [r["churn"] for r in batch], body["predictions"]))
        first, labels, _ = answered[0]
        assert client.post("/feedback", json={"request_id": first, "label": ["Yes", "Yes", "Yes"]}).status_code == 200
        # the latest feedback for a request wins
        for request_id, truth, _ in answered:
            response = client.post("/feedback", json={"request_id": request_id, "label": truth})
            assert response.status_code == 200 and response.json()["rows"] == 3
        unknown = client.post("/feedback", json={"request_id": "does-not-exist", "label": "No"})
        assert unknown.status_code == 404 and unknown.json()["detail"][0]["field"] == "request_id"
        wrong = client.post("/feedback", json={"request_id": first, "label": "Maybe"})
        assert wrong.status_code == 422 and wrong.json()["detail"][0]["rule"] == "enum"
        short = client.post("/feedback", json={"request_id": first, "label": "No"})
        assert short.status_code == 422 and "a list of 3" in short.json()["detail"][0]["message"]
        missing = client.post("/feedback", json={"label": "No"})
        assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "request_id"
        text = client.get("/metrics").text
    assert 'lockstep_drift_psi{column="raw:monthly_charges",model_version="1"}' in text
    assert 'lockstep_drift_window_records{model_version="1"} 300.0' in text
    assert 'lockstep_feedback_records_total{model_version="1"} 303.0' in text

    # the audit window holds exactly the answered requests' records
    code, out, _ = cli("monitor", "--quality", "--project", str(project.path), "--json")
    payload = json.loads(out)
    assert payload["rows"] == 300 and "300 rows in 100 requests" in payload["window"]
    quality = payload["quality"]
    assert quality["rows"] == 300 and quality["requests"] == 100
    # the live metrics are sklearn's on the joined pairs
    from sklearn.metrics import accuracy_score

    truth = [t for _, labels, _ in answered for t in labels]
    predicted = [p for _, _, preds in answered for p in preds]
    assert quality["metrics"]["accuracy"]["live"] == pytest.approx(accuracy_score(truth, predicted))
    low, high = quality["metrics"]["roc_auc"]["live_low"], quality["metrics"]["roc_auc"]["live_high"]
    assert low <= quality["metrics"]["roc_auc"]["live"] <= high
    assert code == (3 if payload["drift"] else 0)
    # time windows select requests by their time
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    code, _, err = cli("monitor", "--since", future, "--project", str(project.path))
    assert code == 2 and "no rows to monitor" in err
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    code, out, _ = cli("monitor", "--since", past, "--until", future, "--project", str(project.path), "--json")
    assert json.loads(out)["rows"] == 300


def test_degraded_live_quality_is_drift(tmp_path: Path) -> None:
    project = make_trained_project(tmp_path / "telco", rows=1200)
    header, rows = read_rows(TELCO_CSV)
    rows = [dict(zip(header, r)) for r in rows[1200:1500]]
    with TestClient(create_app(_settings(project))) as client:
        for row in rows:
            body = client.post("/predict", json=record(row)).json()
            flipped = "No" if row["churn"] == "Yes" else "Yes"  # the world turned upside down
            assert client.post("/feedback", json={"request_id": body["request_id"], "label": flipped}).status_code \
                == 200
    code, out, _ = cli("monitor", "--quality", "--project", str(project.path), "--json")
    payload = json.loads(out)
    assert code == 3 and payload["degraded"] is True and payload["drift"] is True
    assert payload["quality"]["metrics"]["roc_auc"]["degraded"] is True
    assert "degraded beyond the spread" in payload["quality"]["summary"]


def test_feedback_through_a_real_server(tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    project = make_trained_project(tmp_path / "telco", rows=600)
    header, rows = read_rows(TELCO_CSV)
    row = dict(zip(header, rows[700]))

    def post(url: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    with Server(project.path) as server:
        status, answer = post(server.url + "/predict", record(row))
        assert status == 200
    # a new process finds the request in the store's audit log, not in its memory
    with Server(project.path) as server:
        status, body = post(server.url + "/feedback", {"request_id": answer["request_id"], "label": row["churn"]})
        assert status == 200 and body["recorded"] == answer["request_id"]
        status, _ = post(server.url + "/feedback", {"request_id": "nope", "label": "No"})
        assert status == 404


# ---------------------------------------------------------------------------------------------- retraining


# the served project's training section, with a gate and an improvement rule any retrained model passes
RETRAIN = TRAIN + 'gates = { min_roc_auc = 0.6 }\nimprovement = -1.0\n'


def _retrain_project(folder: Path) -> Project:
    project = make_trained_project(folder, rows=1500)
    toml = project.path / "lockstep.toml"
    text = toml.read_text()
    toml.write_text(text[: text.index("[train]")] + RETRAIN)
    return Project(project.path)


def test_the_retraining_loop_promotes_only_when_the_gates_pass(tmp_path: Path) -> None:
    project = _retrain_project(tmp_path / "telco")
    first = project.train()  # the configuration changed: a new version, made champion
    assert project.promote().promoted
    champion = first.version.version
    fresh = _batch(tmp_path, "fresh.csv", False, rows=1000, seed=3)

    # no drift: nothing is retrained
    code, out, _ = cli("monitor", "--data", str(fresh), "--retrain", "--project", str(project.path), "--json")
    payload = json.loads(out)
    assert code == 0 and [a["decision"] for a in payload["actions"]] == ["keep"]
    assert project.model_version("churn-serve@champion").version == champion

    # drift, but the source has not changed: nothing new to learn from
    shifted = _batch(tmp_path, "shifted.csv", True, rows=1000, seed=4)
    code, out, _ = cli("monitor", "--data", str(shifted), "--retrain", "--project", str(project.path), "--json")
    steps = {a["step"]: a for a in json.loads(out)["actions"]}
    assert code == 3 and steps["ingest"]["decision"] == "unchanged" and steps["train"]["decision"] == "up to date"
    assert steps["promote"]["decision"] == "keep"

    # the source now holds recent rows (labelled): a challenger is trained and, passing the gates, promoted
    header, rows = read_rows(project.path / "data" / "wa_churn.csv")
    more = pd.read_csv(shifted)
    more["rownames"] = range(100_000, 100_000 + len(more))
    source = project.path / "data" / "wa_churn.csv"
    pd.concat([pd.read_csv(source), more]).to_csv(source, index=False)
    code, out, _ = cli("monitor", "--data", str(shifted), "--retrain", "--project", str(project.path), "--json")
    payload = json.loads(out)
    steps = {a["step"]: a for a in payload["actions"]}
    assert code == 3 and steps["decide"]["decision"] == "retrain"
    assert steps["ingest"]["decision"] == "new snapshot" and steps["train"]["decision"] == "registered"
    assert steps["promote"]["decision"] == "promoted"
    new = steps["train"]["version"]
    assert project.model_version("churn-serve@champion").version == new
    # recorded: the monitoring log and an MLflow run with the decisions
    assert json.loads(project.store.monitoring.read().to_pylist()[-1]["actions"])[-1]["decision"] == "promoted"
    run = payload["mlflow_run"]
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=project.registry.uri)
    tags = client.get_run(run).data.tags
    assert tags["lockstep.kind"] == "monitor" and tags["lockstep.monitor.promote"] == "promoted"

    # gates that cannot pass: the next challenger stays a challenger
    toml = project.path / "lockstep.toml"
    toml.write_text(toml.read_text().replace("min_roc_auc = 0.6", "min_roc_auc = 0.999"))
    again = _batch(tmp_path, "again.csv", True, rows=500, seed=9, factor=1.3)  # not copies of earlier rows
    extra = pd.read_csv(again)
    extra["rownames"] = range(200_000, 200_000 + len(extra))
    pd.concat([pd.read_csv(source), extra]).to_csv(source, index=False)
    code, out, err = cli("monitor", "--data", str(shifted), "--retrain", "--project", str(project.path), "--json")
    assert code == 3, out + err
    steps = {a["step"]: a for a in json.loads(out)["actions"]}
    assert steps["train"]["decision"] == "registered" and steps["promote"]["decision"] == "refused"
    assert "min_roc_auc" in steps["promote"]["detail"]
    assert project.model_version("churn-serve@champion").version == new


# ---------------------------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize("name", ["telco-churn", "ames-housing"])
def test_the_example_drift_scenarios(name: str, tmp_path: Path) -> None:
    import runpy

    folder = tmp_path / name
    shutil.copytree(EXAMPLES / name, folder, ignore=shutil.ignore_patterns(".lockstep", "scenario"))
    project = Project(folder)
    # a quicker training (one seed, no thread check): the scenario is about the data
    text = (folder / "lockstep.toml").read_text()
    text = text.replace("seeds = [0, 1, 2]", "seeds = [0]").replace("thread_check = true", "thread_check = false")
    (folder / "lockstep.toml").write_text(text)
    project = Project(folder)
    project.ingest()
    project.build_features()
    project.train()
    project.promote()
    scenario = runpy.run_path(str(folder / "drift.py"))["scenario"]
    shifted, fresh = scenario(1000, 0)
    shifted.to_csv(tmp_path / "shifted.csv", index=False)
    fresh.to_csv(tmp_path / "fresh.csv", index=False)
    code, out, _ = cli("monitor", "--data", str(tmp_path / "shifted.csv"), "--project", str(folder), "--json")
    assert code == 3 and json.loads(out)["drift"] is True
    code, out, _ = cli("monitor", "--data", str(tmp_path / "fresh.csv"), "--project", str(folder), "--json")
    assert code == 0 and json.loads(out)["drift"] is False, [f for f in json.loads(out)["features"] if f["drift"]]



@pytest.mark.parametrize(("distinct", "rows"), [(50, 5_000), (800, 5_000), (3_000, 20_000), (20_000, 30_000)])
def test_a_sample_of_the_reference_never_drifts_however_many_categories(distinct: int, rows: int) -> None:
    """Beyond the 1,000 categories a reference keeps, values are counted as 'others': a window drawn from the
    reference's own rows has about the same share of them, which is no drift (it was once 'unseen')."""
    from lockstep.core.sections import MonitorConfig
    from lockstep.monitoring.drift import judge_column
    from lockstep.profiles.stats import categorical_stats
    from lockstep.profiles.summary import new_summary

    rng = np.random.default_rng(0)
    weights = 1 / np.arange(1, distinct + 1) ** 1.1
    values = rng.choice([f"v{i}" for i in range(distinct)], size=rows, p=weights / weights.sum())
    reference = new_summary(pd.Series(values, dtype=object))
    assert (reference.other > 0) == (distinct > 1000)
    for _ in range(20):
        window = reference.empty_like()
        window.update(pd.Series(rng.choice(values, size=2000, replace=False), dtype=object))
        stats = categorical_stats(reference, window)
        assert not any(s.drift for s in judge_column("categorical", stats, MonitorConfig(), 2000, tests=10)), stats
    # a real shift still shows: a quarter of the window in values the reference never had
    window = reference.empty_like()
    window.update(pd.Series(np.r_[rng.choice(values, 1500), [f"new{i}" for i in range(500)]], dtype=object))
    judged = judge_column("categorical", categorical_stats(reference, window), MonitorConfig(), 2000, tests=10)
    assert next(s for s in judged if s.name == "unseen").drift
