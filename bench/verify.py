"""``lockstep verify`` against the training it checks, on the example projects.

Run: ``.venv/bin/python bench/verify.py [--repeat 3]``

For each example (its own ``lockstep.toml``: the search, three seeds, the
thread check), the raw snapshot and the feature set are built once; then, in
fresh processes, ``train(force=True)`` is timed against ``verify()`` of the
version it registered, and against ``verify(full=True)``, which repeats the
search. Both sides include their imports of lockstep's layers but not of
pandas and scikit-learn (imported before the clock starts). Target (issue 6):
verify at most 1.0x the training time without ``--full``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from _common import LOCKSTEP, ROOT, lockstep, run_python

OUT = ROOT / "bench" / "out" / "verify"

TRAIN = r"""
import json, sys, time
import pandas, sklearn.pipeline
start = time.perf_counter()
from lockstep import Project
result = Project(sys.argv[1]).train(force=True)
print(json.dumps({"seconds": time.perf_counter() - start, "version": result.version.version}))
"""

VERIFY = r"""
import json, sys, time
import pandas, sklearn.pipeline
start = time.perf_counter()
from lockstep import Project
report = Project(sys.argv[1]).verify(sys.argv[2], full=sys.argv[3] == "full")
print(json.dumps({"seconds": time.perf_counter() - start, "reproduced": report.reproduced,
                  "stages": {s.name: round(s.seconds, 3) for s in report.stages}}))
"""



def prepare(example: str) -> Path:
    project = OUT / example
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(ROOT / "examples" / example, project, ignore=shutil.ignore_patterns(".lockstep"))
    lockstep(project, ["ingest"], ["features"])
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for example in ("telco-churn", "ames-housing"):
        project = prepare(example)
        first = run_python(TRAIN, str(project))  # warm the store (the first registration creates the database)
        trains = [run_python(TRAIN, str(project)) for _ in range(args.repeat)]
        train = min(t["seconds"] for t in trains)
        name = json.loads(subprocess.run([LOCKSTEP, "models", "list", "-p",
                                          str(project), "--json"], capture_output=True, text=True,
                                         check=True).stdout)[0]["name"]
        ref = f"{name}/{trains[-1]['version']}"
        del first
        results = {}
        for mode in ("fast", "full"):
            runs = [run_python(VERIFY, str(project), ref, mode) for _ in range(args.repeat)]
            assert all(r["reproduced"] for r in runs), runs
            results[mode] = min(runs, key=lambda r: r["seconds"])
        fast, full = results["fast"], results["full"]
        print(f"{example}: lockstep train {train:.2f} s; verify {fast['seconds']:.2f} s = "
              f"{fast['seconds'] / train:.2f}x (target <= 1.0x); verify --full {full['seconds']:.2f} s = "
              f"{full['seconds'] / train:.2f}x")
        print(f"  verify stages: {', '.join(f'{k} {v:.2f}s' for k, v in fast['stages'].items())}")


if __name__ == "__main__":
    main()
