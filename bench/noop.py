"""What a command costs when it has nothing to do (issue 17): ``--help``, and steps that find themselves up to date.

Run: ``.venv/bin/python bench/noop.py [--repeat 5]``

On a copy of the telco-churn example (all 7,043 rows) that ``lockstep run``
has brought up to date, each command is timed as a whole process (start-up
included), the median of ``--repeat`` runs:

* ``lockstep --help``;
* ``lockstep ingest``, ``lockstep features`` and ``lockstep train``, each up to date;
* ``lockstep run``, every step skipped;
* ``lockstep models list`` and ``lockstep data list`` (read-only).

lockstep's sources are byte-compiled first, as an installed wheel is (see
``_common.byte_compiled``). The baseline is a bare interpreter in the same
run (``python -c pass``), the floor any command has. Targets (issue 17): ``--help`` under 0.2 s,
``features`` up to date under 0.3 s, ``run`` unchanged under 1 s.

``--corpus KEY ...`` times the same commands on projects that ``lockstep
init`` scaffolded, with no edits, from data sets of
``tests/corpus.py::INIT_CORPUS`` (``titanic``, ``hotels``, ``diamonds``, ...)
instead of the example: one line per data set.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import LOCKSTEP, byte_compiled, telco_project  # noqa: E402

TARGETS = {"--help": 0.2, "features": 0.3, "run": 1.0}


def _seconds(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--corpus", nargs="*", metavar="KEY", help="scaffolded projects of these data sets")
    args = parser.parse_args()
    byte_compiled()
    if args.corpus:
        _corpus(args.corpus, args.repeat)
        return
    with tempfile.TemporaryDirectory() as tmp:
        project = telco_project(Path(tmp) / "telco", rows=7043)
        subprocess.run([LOCKSTEP, "run"], cwd=project, check=True, capture_output=True)
        subprocess.run([LOCKSTEP, "run"], cwd=project, check=True, capture_output=True)  # the checks recorded
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "--help": [LOCKSTEP, "--help"],
            "ingest": [LOCKSTEP, "ingest"],
            "features": [LOCKSTEP, "features"],
            "train": [LOCKSTEP, "train"],
            "run": [LOCKSTEP, "run"],
            "models list": [LOCKSTEP, "models", "list"],
            "data list": [LOCKSTEP, "data", "list"],
        }
        floor = None
        for name, command in commands.items():
            median = statistics.median(_seconds(command, project) for _ in range(args.repeat))
            floor = median if floor is None else floor
            target = f" (target < {TARGETS[name]} s)" if name in TARGETS else ""
            print(f"{name:15s} {median:6.2f} s  {median / floor:6.1f}x a bare interpreter{target}", flush=True)


def _corpus(keys: list[str], repeat: int) -> None:
    """The up-to-date commands on a scaffolded project per data set: init, run, then each timed."""
    from tests.corpus import INIT_CORPUS

    commands = {"python -c pass": [sys.executable, "-c", "pass"], "features": [LOCKSTEP, "features"],
                "train": [LOCKSTEP, "train"], "run": [LOCKSTEP, "run"]}
    print(f"{'data set':12s} {'rows':>7s}  " + "  ".join(f"{name:>14s}" for name in commands))
    for key in keys:
        data = INIT_CORPUS[key]
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp) / key
            csv = data.write_csv(project / "data" / f"{key}.csv")
            subprocess.run([LOCKSTEP, "init", str(csv), "--target", data.target, "--id", "row_id"], cwd=project,
                           check=True, capture_output=True)
            subprocess.run([LOCKSTEP, "run"], cwd=project, check=True, capture_output=True)
            rows = sum(1 for _ in csv.open()) - 1
            medians = [statistics.median(_seconds(command, project) for _ in range(repeat))
                       for command in commands.values()]
        print(f"{key:12s} {rows:7,d}  " + "  ".join(f"{m:12.2f} s" for m in medians), flush=True)


if __name__ == "__main__":
    main()
