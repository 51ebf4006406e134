"""Audit throughput of ``lockstep serve`` on a shared store: two replicas against one, measured in one run.

    python bench/audit_replicas.py [--seconds 20] [--clients 8]

The telco example is run (``lockstep run``) on S3 (moto's server) with a
PostgreSQL registry, both started by this script on 127.0.0.1 (see
tests/services.py). Then single-record ``POST /predict`` requests are sent
for ``--seconds`` by ``--clients`` threads, first to one replica, then spread
over two (``lockstep serve`` on two ports, one audit log in S3); every
answer waited for its batch's PUT. Printed: answered requests per second,
p50 and p99 latency, and whether every answered request id is in
``lockstep audit export`` afterwards. The embedded store (one replica,
fsynced segments) is measured in the same run for reference.

Everything shares this machine's cores (clients, replicas, moto, PostgreSQL),
so the figures say how the audit path scales here, not on a cluster.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench._common import LOCKSTEP, on_shared_services, telco_project  # noqa: E402
from tests.conftest import TELCO_CSV, read_rows  # noqa: E402
from tests.services import postgres_server, s3_server  # noqa: E402
from tests.serving import Server, record  # noqa: E402


def _cpu(pid: int) -> float:
    """CPU seconds a process has used (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pid_of(marker: str) -> int:
    """The process whose command line holds ``marker`` (moto's server, by its port)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    return int(entry.name)
            except OSError:
                continue
    raise LookupError(marker)


def _load(urls: list[str], records: list[dict], seconds: float, clients: int) -> tuple[list[str], list[float]]:
    """Send requests round-robin over ``urls`` for ``seconds``; the ids answered 200 and every latency."""
    answered: list[str] = []
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    guard = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(offset: int) -> None:
        i = offset
        with httpx.Client(timeout=30) as http:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                response = http.post(urls[i % len(urls)] + "/predict", json=records[i % len(records)])
                took = time.perf_counter() - started
                with guard:
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    with guard:
                        answered.append(response.json()["request_id"])
                        latencies.append(took)
                i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if set(statuses) - {200}:
        print(f"  answers other than 200: { {k: v for k, v in statuses.items() if k != 200} }", flush=True)
    return answered, latencies


def _measure(name: str, project: Path, replicas: int, env: dict[str, str], records: list[dict], seconds: float,
             clients: int, export: Path, runtime: str, moto: int | None) -> dict:
    servers = [Server(project, "--runtime", runtime, env=env) for _ in range(replicas)]
    try:
        for server in servers:
            server.wait_ready(timeout=180)
        _load([s.url for s in servers], records, 2.0, clients)  # warm-up
        pids = {"replicas": [s.proc.pid for s in servers], "S3 server": [moto] if moto else []}
        before = {k: sum(_cpu(p) for p in v) for k, v in pids.items()}
        client_before = time.process_time()
        answered, latencies = _load([s.url for s in servers], records, seconds, clients)
        used = {k: sum(_cpu(p) for p in v) - before[k] for k, v in pids.items()}
        used["clients"] = time.process_time() - client_before
    finally:
        for server in servers:
            server.stop()
    subprocess.run([LOCKSTEP, "audit", "export", str(export), "-p", str(project)], check=True, capture_output=True,
                   env={**os.environ, **env})
    logged = set(pq.read_table(export).column("request_id").to_pylist())
    ordered = sorted(latencies)
    result = {"name": name, "replicas": replicas, "requests_per_s": len(answered) / seconds,
              "p50_ms": 1000 * statistics.median(ordered),
              "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
              "answered": len(answered), "all_audited": all(rid in logged for rid in answered)}
    print(f"{name:<28} {replicas} replica(s): {result['requests_per_s']:7.1f} req/s   p50 {result['p50_ms']:6.1f} ms"
          f"   p99 {result['p99_ms']:6.1f} ms   {len(answered):,} answered, all in the audit log: "
          f"{result['all_audited']}", flush=True)
    cores = os.cpu_count() or 1
    print("  CPU used, in cores of " + str(cores) + ": " + ", ".join(f"{k} {v / seconds:.2f}" for k, v in used.items()
                                                                      if v), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--runtime", choices=("onnx", "sklearn"), default="onnx",
                        help="onnx (default): the model is fast, so the audit path dominates")
    args = parser.parse_args()
    header, rows = read_rows(TELCO_CSV)
    records = [record(dict(zip(header, r))) for r in rows[-500:]]
    with s3_server() as s3, postgres_server() as pg, tempfile.TemporaryDirectory() as tmp:
        local = telco_project(Path(tmp) / "local", args.rows)
        for command in (["run"], ["export", "onnx"]):
            subprocess.run([LOCKSTEP, *command, "-p", str(local)], check=True, capture_output=True)
        remote = telco_project(Path(tmp) / "remote", args.rows)
        on_shared_services(remote, s3.bucket(), pg.uri(pg.database()))
        env = dict(s3.env)
        for command in (["run"], ["export", "onnx"]):
            subprocess.run([LOCKSTEP, *command, "-p", str(remote)], check=True, capture_output=True,
                           env={**os.environ, **env})
        export = Path(tmp) / "audit.parquet"
        print(f"{args.clients} client threads, {args.seconds:g} s each, single-record POST /predict, runtime "
              f"{args.runtime}", flush=True)
        measured = (args.seconds, args.clients, export, args.runtime)
        moto = _pid_of(f"-p {s3.endpoint.rsplit(':', 1)[1]}")
        base = _measure("embedded store (reference)", local, 1, {}, records, *measured, None)
        one = _measure("S3 + PostgreSQL", remote, 1, env, records, *measured, moto)
        two = _measure("S3 + PostgreSQL", remote, 2, env, records, *measured, moto)
    print(f"two replicas / one: {two['requests_per_s'] / one['requests_per_s']:.2f}x requests/s; "
          f"one S3 replica / embedded: {one['requests_per_s'] / base['requests_per_s']:.2f}x")


if __name__ == "__main__":
    main()
