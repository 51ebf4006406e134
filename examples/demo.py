"""Run the example systems end to end: ``python3 dev.py demo`` runs this in the project's environment.

For each example project it shows what ``lockstep init`` scaffolds from the
raw data (in ``build/demo/``), then ingests the committed, reviewed project
and shows the snapshot, then computes the feature set (checking that the
feature pipeline is stateless), trains and registers a model, promotes it
through the gates, trains the boosted candidate and lets the gates decide
whether it replaces the champion; then predicts a batch, exports the
champion to ONNX (the ames-housing model says which step cannot be), starts
the service briefly to send a few requests (one invalid) and shows the
audit records. Running it again shows that nothing unchanged is recomputed.
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


def serve_briefly(project: str) -> None:
    """Start the service on a free local port, send a few requests, stop it."""
    import json
    import socket
    import time
    import urllib.error
    import urllib.request

    import pandas as pd

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    print(f"\n$ lockstep serve --project {project} --port {port}   (for a few requests)", flush=True)
    server = subprocess.Popen([LOCKSTEP, "serve", "--project", project, "--port", str(port)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.25)
        schema = json.loads(urllib.request.urlopen(url + "/model", timeout=10).read())
        data = next(d for p, d, *_ in EXAMPLES if p == project)
        rows = pd.read_csv(ROOT / project / data).head(3)
        records = [{k: (None if pd.isna(r[k]) else r[k].item() if hasattr(r[k], "item") else r[k])
                    for k in schema["inputs"]} for _, r in rows.iterrows()]
        for body in (records[0], records[1:], {**records[0], schema["inputs"][0]: "not valid"}):
            request = urllib.request.Request(url + "/predict", data=json.dumps(body).encode(),
                                             headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.loads(response.read())
                    print(f"POST /predict -> {response.status}: predictions {answer['predictions']} by "
                          f"{answer['model']['name']}/{answer['model']['version']}", flush=True)
            except urllib.error.HTTPError as err:
                problem = json.loads(err.read())["detail"][0]
                print(f"POST /predict -> {err.code}: {problem['field']}: {problem['message']}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)


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
        run("predict", "--input", f"{project}/{data}", "--output", f"build/demo/{name}-predictions.parquet",
            "--project", project)
        # the ONNX export of the ames-housing model stops at its SaleDate step, and says so
        run("export", "onnx", "--project", project, ok=(0, 2))
        serve_briefly(project)
        run("audit", "show", "--limit", "5", "--project", project)
    print("\nDemo complete: both examples ingested, turned into features, trained, registered and gated."
          "\nOpen the MLflow UI with: .venv/bin/lockstep ui --project examples/telco-churn")


if __name__ == "__main__":
    main()
