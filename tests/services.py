"""Real shared services for the team-scale tests, started on 127.0.0.1 and stopped afterwards.

* S3: moto's server mode, in a process of its own (deltalake's Rust calls hold
  the GIL, so a server thread in the test process would starve).
* PostgreSQL 15 from Debian's packages: ``initdb`` and ``pg_ctl`` as the
  ``postgres`` user when the tests run as root (``initdb`` refuses root),
  password authentication over TCP.
* An MLflow tracking server on that database and bucket.

Each is a context manager, so that a fixture of any scope can hold one.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
KEY, SECRET, REGION = "lockstep-test-key", "lockstep-test-secret", "us-east-1"
PG_USER, PG_PASSWORD = "lockstep", "s3cret-for-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check, what: str, process: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s")


def _stop(process: subprocess.Popen) -> None:
    """Stop a server started in its own process group, and everything it spawned."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class S3:
    """A running S3-compatible server."""

    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables that point a client at it."""
        return {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_ALLOW_HTTP": "true"}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                            region_name=REGION)

    def bucket(self, name: str | None = None) -> str:
        """Create a fresh bucket; its name."""
        name = name or f"lockstep-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        out, token = [], None
        while True:
            page = self.client().list_objects_v2(Bucket=bucket, Prefix=prefix,
                                                 **({"ContinuationToken": token} if token else {}))
            out += [item["Key"] for item in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return out
            token = page["NextContinuationToken"]


@contextlib.contextmanager
def s3_server() -> Iterator[S3]:
    port = free_port()
    process = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2), "moto_server", process)
        yield S3(endpoint)
    finally:
        _stop(process)


@dataclass
class Postgres:
    """A running PostgreSQL server with a user that logs in with a password."""

    port: int
    bindir: Path
    socket_dir: Path
    as_postgres: list[str]

    def uri(self, database: str, password: str = PG_PASSWORD, host: str = "127.0.0.1",
            port: int | None = None) -> str:
        return f"postgresql://{PG_USER}:{password}@{host}:{port or self.port}/{database}"

    def database(self, name: str | None = None) -> str:
        """Create a fresh database owned by the test user; its name."""
        name = name or f"db_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}" OWNER {PG_USER}')
        return name

    def psql(self, sql: str) -> None:
        subprocess.run([*self.as_postgres, str(self.bindir / "psql"), "-h", str(self.socket_dir), "-p",
                        str(self.port), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
                       check=True, capture_output=True)


def postgres_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        which = shutil.which("initdb")
        if which is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql); .ci/run installs it")
        return Path(which).parent
    return Path(found[-1]).parent


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    bindir = postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="lockstep-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    try:
        subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                        "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-o",
                        f"-p {port} -k {root} -h 127.0.0.1 -c fsync=off", "-l", str(root / "log"), "-w", "start"],
                       check=True, capture_output=True)
        server = Postgres(port, bindir, root, as_postgres)
        server.psql(f"CREATE USER {PG_USER} WITH PASSWORD '{PG_PASSWORD}' CREATEDB")
        yield server
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(database_uri: str, artifacts: str, s3: S3) -> Iterator[str]:
    """An MLflow tracking server on ``database_uri`` keeping files under ``artifacts``; its URL."""
    port = free_port()
    env = {**os.environ, **s3.env, "MLFLOW_S3_ENDPOINT_URL": s3.endpoint,
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri", database_uri,
                                "--artifacts-destination", artifacts, "--host", "127.0.0.1", "--port", str(port),
                                "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: urllib.request.urlopen(f"{url}/health", timeout=2).status == 200, "mlflow server", process,
              timeout=120)
        yield url
    finally:
        _stop(process)
