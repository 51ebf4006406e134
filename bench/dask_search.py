"""A search of 40 candidates x 5 folds: local (joblib, 2 processes) against Dask (a LocalCluster of 2 workers).

    python bench/dask_search.py [--rows N] [--repeat K]

The telco example with a grid of 40 values of the logistic regression's C,
5 folds, 3 seeds. ``lockstep train --force`` is timed in a fresh process
each time: ``[train] n_jobs = 2`` (joblib's loky processes) against
``--compute dask`` with ``[compute] workers = 2`` (the cluster's start-up
included). Printed: the median wall times, their ratio (target <= 1.2x: on
one machine Dask can only add overhead), and whether both registered the
same model (fingerprint, best parameters).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import LOCKSTEP, telco_project  # noqa: E402

GRID = [round(0.01 * 1.2 ** i, 6) for i in range(40)]


def _train(project: Path, *extra: str) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run([LOCKSTEP, "train", "--force", "--json", "-p", str(project), *extra], capture_output=True,
                          text=True, check=True)
    return time.perf_counter() - started, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=7043)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = telco_project(Path(tmp) / "telco", args.rows)
        toml = project / "lockstep.toml"
        text = toml.read_text().replace('space = { "estimator__C" = [0.1, 0.3, 1.0, 3.0] }',
                                        f'space = {{ "estimator__C" = {GRID} }}')
        text = text.replace("thread_check = true", "thread_check = false\nn_jobs = 2")
        toml.write_text(text + "\n[compute]\nworkers = 2\n")
        for command in (["ingest"], ["features"]):
            subprocess.run([LOCKSTEP, *command, "-p", str(project)], check=True, capture_output=True)
        times: dict[str, list[float]] = {"local": [], "dask": []}
        results: dict[str, dict] = {}
        for _ in range(args.repeat):
            for name, extra in (("local", ["--compute", "local"]), ("dask", ["--compute", "dask"])):
                seconds, results[name] = _train(project, *extra)
                times[name].append(seconds)
    local, dask = statistics.median(times["local"]), statistics.median(times["dask"])
    same = all(results["local"][k] == results["dask"][k] for k in ("fingerprint", "best_params"))
    print(f"telco-churn, {args.rows:,} rows: {len(GRID)} candidates x 5 folds, 3 seeds; median of {args.repeat} "
          "`lockstep train --force` (seconds, a fresh process each)")
    print(f"local (joblib, 2 processes)   {local:7.2f}")
    print(f"dask (LocalCluster, 2 workers) {dask:6.2f}   ratio {dask / local:.2f}x (target <= 1.2x)")
    print(f"same model: {same} (fingerprint {results['local']['fingerprint'][:12]}, best "
          f"{results['local']['best_params']})")


if __name__ == "__main__":
    main()
