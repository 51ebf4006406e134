"""Features and batch predictions on N rows: this process alone against a LocalCluster of 2 Dask workers.

    python bench/dask_data.py [--rows 10000000 20000000] [--partition-rows 1000000]

The telco example's rows resampled to each size (new ids), stored as
Parquet. One project: a model is trained and promoted on the example's own
7,043 rows first (one seed, no search); then each size is ingested as a new
snapshot, and each step runs in a fresh process:

* ``features --force``: locally (partition by partition, in the lockstep
  process), then on a ``LocalCluster`` of 2 worker processes of 1 thread
  started by this script (``[compute] address``);
* ``predict --features-version V`` (the rows of that snapshot) to a Parquet
  file with the champion: locally, then on the cluster.

Printed: wall times, their ratio, the peak memory (``VmHWM``) of the
lockstep process and of each worker (a fresh cluster for every step), and
whether the feature set and predictions fingerprints are equal. On 2 cores
the cluster cannot be faster than one process: the figures show Dask's
overhead and the memory bound, not a speed-up.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import LOCKSTEP, ROOT, run_python  # noqa: E402

OUT = ROOT / "bench" / "out" / "dask_data"
EXAMPLE = ROOT / "examples" / "telco-churn"

STEP = """
import json, sys, time
from lockstep import Project
project, what, compute = Project(sys.argv[1]), sys.argv[2], sys.argv[3]
started = time.perf_counter()
if what == "features":
    info = project.build_features(force=True, compute=compute).info
    out = {"fingerprint": info.fingerprint, "rows": info.rows}
else:
    version = project.feature_versions()[-1].version
    result = project.predict(sys.argv[4], features_version=version, compute=compute)
    out = {"fingerprint": result.output_fingerprint, "rows": result.rows}
out.update(seconds=time.perf_counter() - started, peak_mb=hwm())
print(json.dumps(out))
"""


def _worker_peak() -> float:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM")).split()[1]) / 1024


def make_data(rows: int) -> Path:
    """The example's rows resampled to ``rows`` (seeded), ids 1..rows, as Parquet in row groups of 1M."""
    path = OUT / f"telco_{rows}.parquet"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        base = pacsv.read_csv(EXAMPLE / "data" / "wa_churn.csv")
        with pq.ParquetWriter(path, base.schema) as writer:
            generator = np.random.default_rng(0)
            for start in range(0, rows, 1_000_000):
                n = min(1_000_000, rows - start)
                piece = base.take(pa.array(generator.integers(0, base.num_rows, n)))
                piece = piece.set_column(0, "rownames", pa.array(np.arange(start + 1, start + n + 1)))
                writer.write_table(piece)
    return path


def make_project(partition_rows: int) -> Path:
    """The project, with a champion trained on the example's rows."""
    project = OUT / "project"
    if not (project / "trained").exists():
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir(parents=True)
        shutil.copy(EXAMPLE / "pipeline.py", project)
        text = (EXAMPLE / "lockstep.toml").read_text()
        text = text.replace("max_shared_fraction = 0.01", "max_shared_fraction = 1.0")
        text = text.replace("seeds = [0, 1, 2]", "seeds = [0]").replace("thread_check = true", "thread_check = false")
        text = text.replace('search = { kind = "grid", cv = 5, space = { "estimator__C" = [0.1, 0.3, 1.0, 3.0] } }\n',
                            "")
        (project / "lockstep.toml").write_text(text)
        _ingest(project, EXAMPLE / "data" / "wa_churn.csv")
        for command in (["features"], ["train"], ["promote"]):
            subprocess.run([LOCKSTEP, *command, "-p", str(project)], check=True, capture_output=True)
        (project / "trained").write_text("the example's rows")
    _set_compute(project, None, partition_rows)
    return project


def _ingest(project: Path, source: Path) -> None:
    """Make ``source`` the project's source and ingest it (a new raw snapshot)."""
    toml = project / "lockstep.toml"
    text = toml.read_text()
    start = text.index('source = "')
    end = text.index('"', start + len('source = "'))
    toml.write_text(f'{text[:start]}source = "{source.as_posix()}{text[end:]}')
    subprocess.run([LOCKSTEP, "ingest", "-p", str(project)], check=True, capture_output=True)


def _set_compute(project: Path, address: str | None, partition_rows: int) -> None:
    toml = project / "lockstep.toml"
    text = toml.read_text().split("\n[compute]\n")[0]
    where = f'backend = "dask"\naddress = "{address}"\n' if address else ""
    toml.write_text(f"{text}\n[compute]\n{where}partition_rows = {partition_rows}\n")


def _on_cluster(project: Path, partition_rows: int, *args: str) -> tuple[dict, list[float]]:
    """One step on a fresh 2-worker cluster: its result and each worker's peak memory."""
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0", memory_limit=0) as cluster, \
            distributed.Client(cluster) as client:
        _set_compute(project, cluster.scheduler_address, partition_rows)
        try:
            result = run_python(STEP, project, *args)
        finally:
            _set_compute(project, None, partition_rows)
        peaks = sorted(client.run(_worker_peak).values())
    return result, peaks


def _line(name: str, local: dict, dask: dict, peaks: list[float]) -> None:
    same = "equal" if (local["fingerprint"], local["rows"]) == (dask["fingerprint"], dask["rows"]) else "DIFFERENT"
    print(f"  {name:9} local {local['seconds']:7.1f} s, peak {local['peak_mb']:7,.0f} MB | dask "
          f"{dask['seconds']:7.1f} s ({dask['seconds'] / local['seconds']:.2f}x), lockstep process "
          f"{dask['peak_mb']:6,.0f} MB, workers "
          f"{' and '.join(f'{p:,.0f}' for p in peaks)} MB | fingerprints {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 20_000_000])
    parser.add_argument("--partition-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"[compute] partition_rows = {args.partition_rows:,}; predict --chunk-rows 100,000")
    project = make_project(args.partition_rows)
    for rows in args.rows:
        started = time.perf_counter()
        _ingest(project, make_data(rows))
        print(f"{rows:,} rows (data and ingest: {time.perf_counter() - started:.0f} s)")
        local = run_python(STEP, project, "features", "local")
        dask, peaks = _on_cluster(project, args.partition_rows, "features", "dask")
        _line("features", local, dask, peaks)
        out = OUT / "predictions.parquet"
        local = run_python(STEP, project, "predict", "local", out)
        dask, peaks = _on_cluster(project, args.partition_rows, "predict", "dask", out)
        _line("predict", local, dask, peaks)


if __name__ == "__main__":
    main()
