"""``lockstep monitor --since/--until`` on a long audit log: time and peak memory by the log's length.

Run: ``.venv/bin/python bench/monitor_audit.py [--requests 1000000]`` (after ``bench/monitor.py``, whose
trained project it reuses).

The audit log of the benchmark project's champion is filled with
``--requests`` successful ``/predict`` records (one input record each, with
its probabilities, as the service writes them), compacted into the Delta
table in appends of 100,000, and then a quarter, a half and all of it are
monitored (``--inputs-only`` is not used: the predicted scores come from the
recorded outputs). Peak memory should not grow with the number of requests:
the log is streamed in batches with its filters pushed down. Baseline: the
time pyarrow takes to read the log's ``inputs`` and ``outputs`` columns whole.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

from _common import ROOT, run_python

PROJECT = ROOT / "bench" / "out" / "monitor" / "project"
START = datetime(2026, 1, 1, tzinfo=UTC)

MONITOR = r"""
import json, sys, time, resource
from datetime import datetime
from lockstep import Project
from lockstep.monitoring.monitor import monitor
p = Project(sys.argv[1])
ref = p.model_ref(None, "champion")
loaded = p.registry.load(ref)
since, until = datetime.fromisoformat(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
before = hwm()
start = time.perf_counter()
report = monitor(p.config, p.store, p.registry, ref, since=since, until=until, loaded=loaded)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": report.rows, "before_mb": before,
                  "peak_mb": hwm()}))
"""

READ = r"""
import json, sys, time, resource
from deltalake import DeltaTable
start = time.perf_counter()
import os, pyarrow.fs as fs
local = fs.SubTreeFileSystem(os.path.abspath(sys.argv[1]), fs.LocalFileSystem())
table = DeltaTable(sys.argv[1]).to_pyarrow_table(columns=["inputs", "outputs"], filesystem=local)
print(json.dumps({"seconds": time.perf_counter() - start, "rows": table.num_rows,
                  "peak_mb": hwm()}))
"""


def fill(requests: int) -> None:
    import numpy as np
    import pyarrow as pa
    from monitor import make_table

    from lockstep import Project
    from lockstep.store import _delta
    from lockstep.store.audit import _schema

    project = Project(PROJECT)
    info = project.registry.load(project.model_ref(None, "champion")).info
    log = project.store.audit
    if _delta.is_table(log.table) and _delta.open_table(log.table).to_pyarrow_dataset().count_rows() == requests:
        return
    import shutil

    shutil.rmtree(log.root, ignore_errors=True)
    step = 100_000
    rng = np.random.default_rng(0)
    for first in range(0, requests, step):
        count = min(step, requests - first)
        frame = make_table(count, 500 + first, shift=0.05).drop_columns(["id", "y"]).to_pandas()
        inputs = [json.dumps([{k: (None if v != v else v) for k, v in row.items()}], default=str)
                  for row in frame.to_dict("records")]
        p = rng.random(count)
        outputs = [json.dumps({"predictions": [int(x > 0.5)], "probabilities": [{"0": 1 - x, "1": x}]})
                   for x in p]
        times = [START + timedelta(seconds=first + i) for i in range(count)]
        table = pa.table({
            "request_id": [f"r{first + i}" for i in range(count)], "time": times,
            "endpoint": ["/predict"] * count, "status": [200] * count, "client": ["127.0.0.1"] * count,
            "model_name": [info.name] * count, "model_version": [info.version] * count,
            "model_fingerprint": [info.fingerprint] * count, "runtime": ["sklearn"] * count,
            "latency_ms": [1.0] * count, "rows": [1] * count, "inputs": inputs, "outputs": outputs,
            "error": [None] * count}, schema=_schema())
        _delta.write_table(log.table, table, {"kind": "audit", "segments": [], "rows": count}, mode="append")



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    args = parser.parse_args()
    if not (PROJECT / "lockstep.toml").exists():
        raise SystemExit("run bench/monitor.py first: it trains the project this benchmark reuses")
    fill(args.requests)
    read = run_python(READ, str(PROJECT / ".lockstep" / "audit" / "table"))
    print(f"audit log: {args.requests:,} requests of one record; reading inputs and outputs whole with "
          f"deltalake/pyarrow: {read['seconds']:.2f} s, peak {read['peak_mb']:.0f} MB")
    for fraction in (4, 2, 1):
        span = args.requests // fraction
        result = run_python(MONITOR, str(PROJECT), START.isoformat(), (START + timedelta(seconds=span)).isoformat())
        print(f"  monitor --since/--until over {result['rows']:>10,} requests: {result['seconds']:.2f} s "
              f"({result['rows'] / result['seconds']:,.0f} rows/s), peak memory {result['peak_mb']:.0f} MB "
              f"(before monitoring: {result['before_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
