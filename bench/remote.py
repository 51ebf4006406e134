"""``lockstep run`` and ``verify`` on the telco example: the embedded store against S3 (moto's server) with a
PostgreSQL registry, measured in one run on loopback. Target: remote / local <= 2x.

    python bench/remote.py [--rows N] [--repeat K]

The services are started by this script on 127.0.0.1 (see tests/services.py) and stopped afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import LOCKSTEP, on_shared_services, telco_project  # noqa: E402
from tests.services import postgres_server, s3_server  # noqa: E402


def _timed(command: list[str], project: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([LOCKSTEP, *command, "-p", str(project)], check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=7043)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {"local": {"run": [], "verify": []},
                                                  "remote": {"run": [], "verify": []}}
    with s3_server() as s3, postgres_server() as pg, tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            local = telco_project(Path(tmp) / f"local-{i}", args.rows)
            env = {**os.environ}
            results["local"]["run"].append(_timed(["run"], local, env))
            results["local"]["verify"].append(_timed(["verify"], local, env))

            remote = telco_project(Path(tmp) / f"remote-{i}", args.rows)
            on_shared_services(remote, s3.bucket(), pg.uri(pg.database()))
            env = {**os.environ, **s3.env}
            results["remote"]["run"].append(_timed(["run"], remote, env))
            results["remote"]["verify"].append(_timed(["verify"], remote, env))
    print(f"telco-churn, {args.rows:,} rows, median of {args.repeat} (seconds, each command a fresh process)")
    print(f"{'command':10} {'local':>8} {'S3+PostgreSQL':>14} {'ratio':>7}")
    for command in ("run", "verify"):
        local_s = statistics.median(results["local"][command])
        remote_s = statistics.median(results["remote"][command])
        print(f"{command:10} {local_s:8.2f} {remote_s:14.2f} {remote_s / local_s:6.2f}x")


if __name__ == "__main__":
    main()
