"""Helpers for the inference tests: a trained telco project, free ports, a real server process."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from lockstep import Project

from .conftest import copy_of_built, telco_sample

TRAIN = '''
[train]
model = "pipeline:model"
seeds = [0]
primary_metric = "roc_auc"

[registry]
model = "churn-serve"
'''


def make_trained_project(folder: Path, rows: int = 600) -> Project:
    """The telco example on ``rows`` rows, ingested, featurized, trained and promoted, in ``folder``.

    Built once per test process and number of rows, then copied: each test still gets a folder, a store and a
    registry of its own.
    """
    return Project(copy_of_built(f"telco-trained-{rows}", folder, functools.partial(_build_trained_project,
                                                                                    rows=rows)))


def _build_trained_project(folder: Path, rows: int) -> None:
    telco_sample(folder, rows)
    text = (folder / "lockstep.toml").read_text()
    (folder / "lockstep.toml").write_text(text[: text.index("# Training:")] + TRAIN)
    project = Project(folder)
    project.ingest()
    project.build_features()
    project.train()
    project.promote()


def record(row: dict) -> dict:
    """A raw CSV row (strings) as a JSON request record of the telco model."""
    ints = ("female", "senior_citizen", "partner", "dependents", "tenure", "phone_service", "paperless_billing")
    floats = ("monthly_charges", "total_charges")
    out = {}
    for key, value in row.items():
        if key in ("rownames", "churn"):
            continue
        if key in ints:
            out[key] = int(value)
        elif key in floats:
            out[key] = float(value) if value not in ("", "NA") else None
        else:
            out[key] = value
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``lockstep serve`` as a real process on a free port of 127.0.0.1."""

    def __init__(self, project: Path, *args: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = str(Path(sys.executable).with_name("lockstep"))
        self.proc = subprocess.Popen([exe, "serve", "--project", str(project), "--port", str(self.port), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})}, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0, headers: dict | None = None) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                request = urllib.request.Request(self.url + "/health", headers=headers or {})
                with urllib.request.urlopen(request, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("the server did not become ready")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=60)

    def __enter__(self) -> Server:
        self.wait_ready()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
