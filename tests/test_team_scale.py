"""A project on shared, real services: Delta tables in S3 (moto's server), MLflow on PostgreSQL 15.

The services run on 127.0.0.1 for this module (see :mod:`tests.services`).
Commands in the project folder run in this process through the CLI's own app
(:func:`_here`, with the command's environment; a process costs about 2 s of
imports here). Commands from a second folder that holds only ``lockstep.toml``
and the project's code (another machine), and commands that run at the same
time, run in processes of their own: they share nothing with the first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import EXAMPLES, TELCO_CSV, lockstep_here, read_rows, write_rows
from .services import PG_PASSWORD, postgres_server, s3_server

pytestmark = [pytest.mark.slow, pytest.mark.integration]

LOCKSTEP = [sys.executable, "-m", "lockstep"]


@pytest.fixture(scope="module")
def s3():
    with s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server:
        yield server


def _telco(folder: Path, rows: int = 600) -> Path:
    shutil.copytree(EXAMPLES / "telco-churn", folder, ignore=shutil.ignore_patterns(".lockstep", "data"))
    header, data = read_rows(TELCO_CSV)
    write_rows(folder / "data" / "wa_churn.csv", header, data[:rows])
    text = (folder / "lockstep.toml").read_text().replace("max_shared_fraction = 0.01", "max_shared_fraction = 0.05")
    (folder / "lockstep.toml").write_text(text)
    return folder


def _remote(folder: Path, bucket: str, tracking_uri: str, prefix: str = "telco") -> None:
    """Point a project at the shared services; the password comes from an environment variable."""
    text = (folder / "lockstep.toml").read_text()
    text = text.replace('store = ".lockstep"', f'store = "s3://{bucket}/{prefix}"', 1)
    text = text.replace("[registry]\n", f'[registry]\ntracking_uri = "{tracking_uri}"\n'
                                        f'artifacts = "s3://{bucket}/mlflow"\n', 1)
    (folder / "lockstep.toml").write_text(text)


def _env(s3, **extra: str) -> dict[str, str]:
    return {**os.environ, **s3.env, "LOCKSTEP_PG_PASSWORD": PG_PASSWORD, **extra}


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*LOCKSTEP, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _here(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """A command on the project folder (``--project`` in ``args``), run in this process with ``env``."""
    return lockstep_here(*args, env=env)


def _json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def shared(s3, pg, tmp_path_factory):
    """The telco example run with ``lockstep run`` on S3 + PostgreSQL, and the same project run locally."""
    root = tmp_path_factory.mktemp("team")
    bucket, database = s3.bucket(), pg.database()
    project = _telco(root / "first")
    # the bucket and the password come from the environment: the recorded configuration keeps ${NAME}, and
    # verify reads that record on another machine
    _remote(project, "${LOCKSTEP_TEST_BUCKET}", pg.uri(database, password="${LOCKSTEP_PG_PASSWORD}"))
    env = _env(s3, LOCKSTEP_TEST_BUCKET=bucket)
    # parity on the shared services is proved from the second folder (test_a_second_folder_...), where it is
    # the stronger claim; here the run proves the rest (ingest .. verify)
    done = _here(["run", "--no-parity", "--project", str(project), "--json"], env)
    assert done.returncode == 0, done.stderr
    local = _telco(root / "local")
    # the local twin is only compared and pushed: its proofs are those of every other test of a local store
    done_local = _here(["run", "--no-verify", "--no-parity", "--project", str(local), "--json"], {**os.environ})
    assert done_local.returncode == 0, done_local.stderr
    return {"project": project, "local": local, "bucket": bucket, "database": database, "env": env,
            "report": json.loads(done.stdout), "local_report": json.loads(done_local.stdout)}


def _second_folder(shared, root: Path) -> Path:
    """Another machine: only lockstep.toml and the project's code."""
    other = root / "second"
    other.mkdir()
    for name in ("lockstep.toml", "pipeline.py", "drift.py"):
        shutil.copy2(shared["project"] / name, other / name)
    return other


def test_the_store_is_in_s3_and_the_project_folder_has_no_store(shared, s3) -> None:
    keys = s3.keys(shared["bucket"])
    assert any(k.startswith("telco/raw/_delta_log/") for k in keys)
    assert any(k.startswith("telco/features/") for k in keys)
    assert any(k.startswith("mlflow/telco-churn/models/") and k.endswith("model.skops") for k in keys)
    assert not (shared["project"] / ".lockstep").exists()


def test_fingerprints_are_the_same_on_s3_and_on_a_local_store(shared) -> None:
    remote, local = shared["report"], shared["local_report"]

    def steps(report: dict) -> dict:
        return {s["name"]: (s.get("version"), s.get("fingerprint")) for s in report["steps"]
                if s["name"] in ("ingest", "features", "train", "promote")}

    assert steps(remote) == steps(local) and len(steps(local)) == 4
    assert remote["reproduced"]


def test_a_second_folder_sees_and_proves_the_same_versions(shared, tmp_path: Path) -> None:
    other = _second_folder(shared, tmp_path)
    env = shared["env"]
    first_data = _json(_here(["data", "list", "--json", "--project", str(shared["project"])], env))
    data = _json(_run(["data", "list", "--json"], env, cwd=other))
    assert data == first_data and data
    models = _json(_run(["models", "list", "--json"], env, cwd=other))
    first_models = _json(_here(["models", "list", "--json", "--project", str(shared["project"])], env))
    assert models == first_models

    verified = _json(_run(["verify", "telco-churn@champion", "--json"], env, cwd=other))
    assert verified["reproduced"], verified
    parity = _json(_run(["parity", "telco-churn@champion", "--json"], env, cwd=other))
    assert parity["identical"], parity

    rows = tmp_path / "rows.csv"
    header, data_rows = read_rows(TELCO_CSV)
    write_rows(rows, [h for h in header if h != "churn"],
               [[v for h, v in zip(header, r) if h != "churn"] for r in data_rows[600:700]])
    out_first, out_other = tmp_path / "first.parquet", tmp_path / "other.parquet"
    assert _here(["predict", "--input", str(rows), "--output", str(out_first), "--project", str(shared["project"])],
                 env).returncode == 0
    done = _run(["predict", "--input", str(rows), "--output", str(out_other)], env, cwd=other)
    assert done.returncode == 0, done.stderr
    import pyarrow.parquet as pq

    first, second = pq.read_table(out_first), pq.read_table(out_other)
    columns = [c for c in first.column_names if c.startswith(("prediction", "proba_"))]
    assert columns and first.select(columns).equals(second.select(columns))

    first_monitor = _here(["monitor", "--data", str(rows), "--json", "--project", str(shared["project"])], env)
    monitored = _run(["monitor", "--data", str(rows), "--json"], env, cwd=other)
    assert monitored.returncode == first_monitor.returncode and monitored.returncode in (0, 3), monitored.stderr
    report, first_report = json.loads(monitored.stdout), json.loads(first_monitor.stdout)
    assert report["model"] == "telco-churn" and report["drifted"] == first_report["drifted"]


def test_secrets_from_the_environment_are_never_recorded(shared, s3) -> None:
    client = s3.client()
    keys = [k for k in s3.keys(shared["bucket"], "mlflow/") if k.endswith("/config.json")]
    assert keys
    recorded = client.get_object(Bucket=shared["bucket"], Key=keys[0])["Body"].read().decode()
    assert PG_PASSWORD not in recorded
    assert "${LOCKSTEP_PG_PASSWORD}" in recorded and "s3://${LOCKSTEP_TEST_BUCKET}/telco" in recorded


def test_env_show_reports_where_the_store_and_registry_are(shared) -> None:
    shown = _json(_here(["env", "show", "--json", "--project", str(shared["project"])], shared["env"]))
    where = shown["project"]
    assert where["store"] == f"s3://{shared['bucket']}/telco"
    assert PG_PASSWORD not in where["registry"] and where["registry"].startswith("postgresql://lockstep:***@")
    assert where["artifacts"] == f"s3://{shared['bucket']}/mlflow"


@pytest.mark.parametrize("fault", ["endpoint", "bucket", "password", "database", "port"])
def test_a_wrong_service_setting_is_exit_2_naming_it_within_10_s(shared, s3, pg, fault: str,
                                                                  tmp_path: Path) -> None:
    other = _second_folder(shared, tmp_path)
    env = dict(shared["env"])
    text = (other / "lockstep.toml").read_text()
    expected = {"endpoint": "does not answer", "bucket": "does not exist", "password": "refused the credentials",
                "database": "does not exist", "port": "does not answer"}[fault]
    if fault == "endpoint":
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
    elif fault == "bucket":
        env["LOCKSTEP_TEST_BUCKET"] = "no-such-bucket-here"
    elif fault == "password":
        env["LOCKSTEP_PG_PASSWORD"] = "wrong"
    elif fault == "database":
        text = text.replace(shared["database"], "no_such_database")
    else:
        text = text.replace(f":{pg.port}/", ":9/")
    (other / "lockstep.toml").write_text(text)
    started = time.monotonic()
    done = _run(["env", "show", "--json"], env, cwd=other, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr, done.stderr
    assert elapsed < 10, elapsed
    if fault == "bucket":
        assert "no-such-bucket-here" in done.stderr
    if fault == "endpoint":
        assert "127.0.0.1:9" in done.stderr
    assert PG_PASSWORD not in done.stderr


def test_a_missing_environment_variable_is_a_user_error_naming_it(shared, tmp_path: Path) -> None:
    other = _second_folder(shared, tmp_path)
    env = {k: v for k, v in shared["env"].items() if k != "LOCKSTEP_PG_PASSWORD"}
    done = _run(["models", "list"], env, cwd=other)
    assert done.returncode == 2
    assert "LOCKSTEP_PG_PASSWORD" in done.stderr and "registry.tracking_uri" in done.stderr


def _two_machines(s3, pg, tmp_path: Path) -> tuple[list[Path], dict[str, str]]:
    """Two folders (machines) with the telco example on 300 rows, on one fresh bucket and database."""
    bucket, database = s3.bucket(), pg.database()
    folders = []
    for name in ("a", "b"):
        folder = _telco(tmp_path / name, rows=300)
        _remote(folder, bucket, pg.uri(database, password="${LOCKSTEP_PG_PASSWORD}"))
        folders.append(folder)
    return folders, _env(s3)


def test_concurrent_ingests_then_trainings_from_two_machines_write_one_version_each(s3, pg, tmp_path: Path) -> None:
    folders, env = _two_machines(s3, pg, tmp_path)

    def both(step: str) -> list[dict]:
        processes = [subprocess.Popen([*LOCKSTEP, step, "--json", "--project", str(f)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in folders]
        outputs = [p.communicate(timeout=600) for p in processes]
        assert all(p.returncode == 0 for p in processes), outputs
        return [json.loads(out) for out, _ in outputs]

    ingested = both("ingest")
    listed = _json(_here(["data", "list", "--json", "--project", str(folders[0])], env))
    assert [s["version"] for s in listed] == [0]
    assert sorted(r["changed"] for r in ingested) == [False, True]

    done = _here(["features", "--project", str(folders[0])], env)
    assert done.returncode == 0, done.stderr
    trained = both("train")
    assert sorted(r["skipped"] for r in trained) == [False, True]  # the second found the first's model
    assert {(r["version"], r["fingerprint"]) for r in trained} == {(1, trained[0]["fingerprint"])}
    models = _json(_here(["models", "list", "--json", "--project", str(folders[1])], env))
    assert [m["version"] for m in models] == [1]


def test_machines_opening_a_fresh_registry_database_at_once_all_succeed(s3, pg, tmp_path: Path) -> None:
    """MLflow creates its tables when a process first opens the database; four at once used to fail three
    times out of four ("duplicate key value ... alembic_version")."""
    bucket, database = s3.bucket(), pg.database()
    folders = []
    for name in "abcd":
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy2(EXAMPLES / "telco-churn" / "lockstep.toml", folder / "lockstep.toml")
        _remote(folder, bucket, pg.uri(database, password="${LOCKSTEP_PG_PASSWORD}"))
        folders.append(folder)
    processes = [subprocess.Popen([*LOCKSTEP, "models", "list", "--json", "--project", str(f)], env=_env(s3),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in folders]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], [err[-500:] for _, err in outputs]
    assert all(json.loads(out) == [] for out, _ in outputs)


def test_signed_models_on_a_shared_registry_are_checked_from_another_machine(s3, pg, tmp_path: Path) -> None:
    """The claims and signature are uploaded to the model's files in S3; a second folder (and a folder the
    project is pushed to) loads the model only if they verify, and refuses it once the claims are changed."""
    from .test_signing import _key_pair

    private, public = _key_pair(tmp_path, "team")
    bucket, database = s3.bucket(), pg.database()
    project = _telco(tmp_path / "signed", rows=300)
    _remote(project, bucket, pg.uri(database, password="${LOCKSTEP_PG_PASSWORD}"))
    toml = project / "lockstep.toml"
    toml.write_text(toml.read_text().replace("[registry]\n", f'[registry]\npublic_key = "{public}"\n', 1))
    env = _env(s3, LOCKSTEP_SIGNING_KEY=str(private))
    for step in ("ingest", "features", "train"):
        done = _here([step, "--project", str(project)], env)
        assert done.returncode == 0, done.stderr
    claims = [k for k in s3.keys(bucket, "mlflow/") if k.endswith("/lockstep-claims.json")]
    assert len(claims) == 1 and f"{claims[0].rsplit('/', 1)[0]}/model.sig" in s3.keys(bucket, "mlflow/")

    other = tmp_path / "other"
    other.mkdir()
    for name in ("lockstep.toml", "pipeline.py", "drift.py"):
        shutil.copy2(project / name, other / name)
    reader_env = {k: v for k, v in env.items() if k != "LOCKSTEP_SIGNING_KEY"}  # loading needs the public key only
    rows = tmp_path / "rows.csv"
    header, data = read_rows(TELCO_CSV)
    target = header.index("churn")
    write_rows(rows, [h for i, h in enumerate(header) if i != target],
               [[v for i, v in enumerate(r) if i != target] for r in data[300:350]])
    def predict(output: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
        return _run(["predict", "-m", "telco-churn/1", "--input", str(rows), "--output", str(tmp_path / output)],
                    env, cwd=cwd)

    predicted = predict("p.parquet", reader_env, other)
    assert predicted.returncode == 0, predicted.stderr

    copy = tmp_path / "copy"
    assert _here(["store", "push", str(copy), "--project", str(project)], reader_env).returncode == 0
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    for name in ("pipeline.py", "drift.py"):
        shutil.copy2(project / name, pulled / name)
    text = (tmp_path / "signed" / "lockstep.toml").read_text()
    text = text.replace(f's3://{bucket}/telco', str(copy)).replace(
        f'tracking_uri = "{pg.uri(database, password="${LOCKSTEP_PG_PASSWORD}")}"\n', "").replace(
        f'artifacts = "s3://{bucket}/mlflow"\n', "")
    (pulled / "lockstep.toml").write_text(text)
    clean = {k: v for k, v in reader_env.items() if not k.startswith("AWS_")}
    done = predict("q.parquet", clean, pulled)
    assert done.returncode == 0, done.stderr  # the signature holds on the copy: its files are copied verbatim

    client = s3.client()
    forged = json.loads(client.get_object(Bucket=bucket, Key=claims[0])["Body"].read())
    forged["tags"]["lockstep.model.fingerprint"] = "0" * 64
    client.put_object(Bucket=bucket, Key=claims[0], Body=json.dumps(forged).encode())
    refused = predict("r.parquet", reader_env, other)
    assert refused.returncode == 2
    assert "sign" in refused.stderr.lower() or "claims" in refused.stderr.lower(), refused.stderr


def _without_copy_tags(models: list) -> list:
    copy_tags = {"copy.complete", "copy.from", "copy.source_run", "copy.source_model", "copy.source_version",
                 "copy.created", "run_id"}
    for model in models:
        model.pop("run_id")
        model["lineage"] = {k: v for k, v in model["lineage"].items() if k not in copy_tags}
    return models


def test_a_local_project_is_pushed_to_the_shared_services_and_verifies_there(shared, s3, pg,
                                                                              tmp_path: Path) -> None:
    local = shared["local"]
    bucket, database = s3.bucket(), pg.database()
    env = _env(s3)
    pushed = _json(_here(["store", "push", f"s3://{bucket}/telco", "--registry", pg.uri(database), "--artifacts",
                         f"s3://{bucket}/mlflow", "--json", "--project", str(local)], env))
    assert pushed["settings"]["registry"]["tracking_uri"] == pg.uri(database, password="${LOCKSTEP_REGISTRY_"
                                                                                       "PASSWORD}")
    keys = s3.keys(bucket)
    for table in ("raw", "features/churn-features"):
        assert (sorted(k.removeprefix(f"telco/{table}/") for k in keys if k.startswith(f"telco/{table}/"))
                == sorted(str(p.relative_to(local / ".lockstep" / table))
                          for p in (local / ".lockstep" / table).rglob("*") if p.is_file()))
    other = tmp_path / "other"
    other.mkdir()
    for name in ("lockstep.toml", "pipeline.py", "drift.py"):
        shutil.copy2(local / name, other / name)
    _remote(other, bucket, pg.uri(database, password="${LOCKSTEP_PG_PASSWORD}"))
    assert (_json(_run(["data", "list", "--json"], env, cwd=other))
            == _json(_here(["data", "list", "--json", "--project", str(local)], env)))
    assert (_without_copy_tags(_json(_run(["models", "list", "--json"], env, cwd=other)))
            == _without_copy_tags(_json(_here(["models", "list", "--json", "--project", str(local)], env))))
    verified = _json(_run(["verify", "telco-churn@champion", "--json"], env, cwd=other))
    assert verified["reproduced"], verified
    again = _json(_here(["store", "push", f"s3://{bucket}/telco", "--registry", pg.uri(database), "--artifacts",
                        f"s3://{bucket}/mlflow", "--json", "--project", str(local)], env))
    assert sum(t["copied"] for t in again["tables"]) == 0 and again["registry_copy"]["runs_copied"] == 0


def test_a_shared_project_is_pushed_back_into_a_folder_and_verifies_there(shared, tmp_path: Path) -> None:
    env = shared["env"]
    destination = tmp_path / "store"
    pushed = _json(_here(["store", "push", str(destination), "--json", "--project", str(shared["project"])], env))
    assert {t["table"] for t in pushed["tables"]} >= {"raw", "features/churn-features"}
    other = tmp_path / "other"
    other.mkdir()
    for name in ("pipeline.py", "drift.py"):
        shutil.copy2(shared["local"] / name, other / name)
    text = (shared["local"] / "lockstep.toml").read_text()
    (other / "lockstep.toml").write_text(text.replace('store = ".lockstep"', f'store = "{destination}"', 1))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # no service is needed any more
    assert (_json(_run(["data", "list", "--json"], clean, cwd=other))
            == _json(_here(["data", "list", "--json", "--project", str(shared["project"])], env)))
    verified = _json(_run(["verify", "telco-churn@champion", "--json"], clean, cwd=other))
    assert verified["reproduced"], verified


_APPENDER = """
import sys
import time
import pyarrow as pa
from lockstep.store import _delta
from lockstep.store.location import store_path
table = store_path(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # both start at once: both create the table
for i in range(12):
    _delta.write_table(table, pa.table({"i": [i], "writer": [sys.argv[2]]}), {"kind": "test", "i": i}, mode="append")
"""


def test_appends_from_two_machines_at_once_all_land(s3) -> None:
    """Batch run records and the monitoring log are appended without a lock: delta-rs rebases appends, and the
    one race it reports (both processes creating the table: "Metadata changed", seen in one trial of two by
    hand, rarely here) is tried again."""
    from lockstep.store import _delta
    from lockstep.store.location import store_path

    bucket = s3.bucket()
    start = str(time.time() + 4)
    processes = [subprocess.Popen([sys.executable, "-c", _APPENDER, f"s3://{bucket}/log", writer, start], env=_env(s3),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for writer in "ab"]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    table = store_path(f"s3://{bucket}/log", {k.lower(): v for k, v in s3.env.items()})
    rows = _delta.to_table(table).to_pylist()
    assert sorted((r["writer"], r["i"]) for r in rows) == [(w, i) for w in "ab" for i in range(12)]
    assert len(_delta.commit_metadata(table)) == 24


def test_a_lock_in_s3_excludes_other_holders_and_is_freed_when_its_lease_runs_out(s3, monkeypatch) -> None:
    from lockstep.core.errors import UserError
    from lockstep.store.location import RemotePath
    from lockstep.store.locks import remote_exclusive

    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    lock = RemotePath(f"s3://{s3.bucket()}/store/locks/train.lock")
    inside, overlaps = [], []

    def hold(name: str) -> None:
        with remote_exclusive(lock, "training", timeout=30):
            if inside:
                overlaps.append(name)
            inside.append(name)
            time.sleep(0.3)
            inside.remove(name)

    threads = [threading.Thread(target=hold, args=(str(i),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []

    # a holder that died (its lock object left behind, never renewed) blocks others only until its lease ends
    from lockstep.store import objects

    objects.put(lock, json.dumps({"holder": "dead:1", "expires": time.time() + 1.5}).encode())
    with pytest.raises(UserError, match="dead:1"):
        with remote_exclusive(lock, "training", timeout=0.5):
            pass
    started = time.monotonic()
    with remote_exclusive(lock, "training", timeout=10):
        assert time.monotonic() - started < 5
    assert objects.get(lock) is None  # released


def test_the_audit_log_in_s3_keeps_every_writers_records(s3, monkeypatch) -> None:
    from lockstep.store import Store

    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    store = Store(f"s3://{s3.bucket()}/store")
    writers = [store.audit.writer(), store.audit.writer()]
    sent = []
    for i in range(6):
        record = {"request_id": f"r{i}", "time": f"2026-11-29T10:00:0{i}+00:00", "endpoint": "/predict",
                  "status": 200, "model_name": "m", "model_version": 1, "rows": 1, "inputs": [{"x": i}]}
        writers[i % 2].write([record])
        sent.append(record["request_id"])
    assert sorted(store.audit.read().column("request_id").to_pylist()) == sent
    assert store.audit.prediction("r3") == ("m", 1, 1)
    assert store.audit.compact() == 6
    assert sorted(store.audit.read().column("request_id").to_pylist()) == sent  # now from the Delta table
    assert store.audit.prediction("r4") == ("m", 1, 1) and store.audit.prediction("nope") is None
    assert store.audit.compact() == 0


def test_two_replicas_share_one_audit_log_and_a_sigkill_loses_no_answered_request(shared, tmp_path: Path) -> None:
    import concurrent.futures
    import signal

    import httpx
    import pyarrow.parquet as pq

    from .serving import Server, record

    started = time.time()
    header, rows = read_rows(TELCO_CSV)
    records = [record(dict(zip(header, r))) for r in rows[600:700]]
    env = {k: v for k, v in shared["env"].items() if k not in os.environ or os.environ[k] != v}
    replicas = [Server(shared["project"], env=env), Server(shared["project"], env=env)]
    for replica in replicas:
        replica.wait_ready(timeout=120)
    answered: list[str] = []
    guard = threading.Lock()
    stop = threading.Event()

    def client(offset: int) -> None:
        with httpx.Client(timeout=30) as http:
            i = offset
            while not stop.is_set():
                replica = replicas[i % 2]
                try:
                    response = http.post(replica.url + "/predict", json=records[i % len(records)])
                except httpx.HTTPError:  # the killed replica: its requests were never answered
                    i += 1
                    continue
                if response.status_code == 200:
                    with guard:
                        answered.append(response.json()["request_id"])
                i += 1

    try:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            for k in range(6):
                pool.submit(client, k)
            deadline = time.time() + 60
            while len(answered) < 120 and time.time() < deadline:
                time.sleep(0.05)
            replicas[0].stop(signal.SIGKILL)  # no shutdown: only what was written to S3 survives
            killed_at = len(answered)
            deadline = time.time() + 30
            while len(answered) < killed_at + 40 and time.time() < deadline:
                time.sleep(0.05)
            stop.set()
    finally:
        for replica in replicas:
            replica.stop()
    assert len(answered) >= 160

    export = tmp_path / "audit.parquet"
    done = _here(["audit", "export", str(export), "--project", str(shared["project"])], shared["env"])
    assert done.returncode == 0, done.stderr
    logged = set(pq.read_table(export).column("request_id").to_pylist())
    missing = [rid for rid in answered if rid not in logged]
    assert not missing, f"{len(missing)} answered requests are not in the audit log"

    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started - 1))
    monitored = _here(["monitor", "--since", since, "--json", "--project", str(shared["project"])], shared["env"])
    assert monitored.returncode in (0, 3), monitored.stderr
    assert json.loads(monitored.stdout)["rows"] >= len(answered)


def test_a_project_on_an_mlflow_tracking_server_is_proved_from_a_second_folder(s3, pg, tmp_path: Path) -> None:
    """``[registry] tracking_uri = "http://..."``: the server keeps the files (no database password, no artifact
    bucket in the project); the store stays in S3."""
    from .services import mlflow_server

    bucket, database = s3.bucket(), pg.database()
    with mlflow_server(pg.uri(database), f"s3://{bucket}/mlflow-server", s3) as url:
        project = _telco(tmp_path / "served")
        text = (project / "lockstep.toml").read_text()
        text = text.replace('store = ".lockstep"', f'store = "s3://{bucket}/telco"', 1)
        text = text.replace("[registry]\n", f'[registry]\ntracking_uri = "{url}"\n', 1)
        (project / "lockstep.toml").write_text(text)
        env = {**os.environ, **s3.env}
        ran = _json(_here(["run", "--json", "--project", str(project)], env))
        assert ran["reproduced"] and ran["identical"]
        other = tmp_path / "other"
        other.mkdir()
        for name in ("lockstep.toml", "pipeline.py"):
            shutil.copy2(project / name, other / name)
        verified = _json(_run(["verify", "telco-churn@champion", "--json"], env, cwd=other))
        assert verified["reproduced"], verified
        assert any(k.startswith("mlflow-server/") and k.endswith("model.skops") for k in s3.keys(bucket))


def test_a_run_logged_by_the_trainings_helper_lands_on_the_shared_services(s3, pg, tmp_path: Path) -> None:
    """Training's forked helper opens its own connections (PostgreSQL, and S3 through boto3) and writes the run
    there; another machine reads the version and proves it. Forced: the look-up of a finished run with the same
    inputs goes through MLflow on a shared registry, and a process that imported MLflow forks no helper."""
    from .test_training_helper import helped

    folders, env = _two_machines(s3, pg, tmp_path)
    for step in ("ingest", "features"):
        done = _here([step, "--project", str(folders[0])], env)
        assert done.returncode == 0, done.stderr
    report = helped(folders[0], [{"force": True}], env=env)
    assert report["helpers"][0] is not None and report["logged_here"] == []  # the helper logged the run
    ref = report["versions"][0]
    trained = _json(_run(["models", "show", ref, "--json"], env, cwd=folders[0]))
    shown = _json(_run(["models", "show", ref, "--json"], env, cwd=folders[1]))
    assert shown["fingerprint"] == trained["fingerprint"] and "challenger" in shown["aliases"]
    verified = _json(_run(["verify", ref, "--json"], env, cwd=folders[1]))
    assert verified["reproduced"], verified
