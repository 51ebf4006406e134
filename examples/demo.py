"""Run the example systems end to end: ``python3 dev.py demo`` runs this in the project's environment.

For each example project it shows what ``lockstep init`` scaffolds from the
raw data (in ``build/demo/``), then ingests the committed, reviewed project
and shows the snapshot, then computes the feature set (checking that the
feature pipeline is stateless), trains and registers a model, promotes it
through the gates, trains the boosted candidate and lets the gates decide
whether it replaces the champion. Running it again shows that nothing
unchanged is recomputed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKSTEP = str(Path(sys.executable).with_name("lockstep"))

EXAMPLES = [
    # (project folder, data file, target, id)
    ("examples/telco-churn", "data/wa_churn.csv", "churn", "rownames"),
    ("examples/ames-housing", "data/ames.csv", "Sale_Price", "rownames"),
]


def run(*args: str, ok: tuple[int, ...] = (0,)) -> None:
    print(f"\n$ lockstep {' '.join(args)}", flush=True)
    result = subprocess.run([LOCKSTEP, *args], cwd=ROOT)
    if result.returncode not in ok:
        sys.exit(f"demo failed: `lockstep {' '.join(args)}` exited {result.returncode}")


def main() -> None:
    for project, data, target, id_column in EXAMPLES:
        name = Path(project).name
        print(f"\n{'=' * 78}\n{name}\n{'=' * 78}", flush=True)
        scratch = ROOT / "build" / "demo" / name
        shutil.rmtree(scratch, ignore_errors=True)
        run("init", f"{project}/{data}", "--target", target, "--id", id_column, "--dir", str(scratch.relative_to(ROOT)))
        run("ingest", "--project", project)
        run("data", "list", "--project", project)
        run("data", "show", "--project", project)
        run("features", "--project", project)
        run("features", "show", "--project", project)
        run("train", "--project", project)
        run("promote", "--project", project, ok=(0, 3))
        run("train", "--candidate", "boosted", "--project", project)
        # the gates decide: exit 3 means the challenger did not beat the champion
        run("promote", "--project", project, ok=(0, 3))
        run("models", "list", "--project", project)
    print("\nDemo complete: both examples ingested, turned into features, trained, registered and gated."
          "\nOpen the MLflow UI with: .venv/bin/lockstep ui --project examples/telco-churn")


if __name__ == "__main__":
    main()
