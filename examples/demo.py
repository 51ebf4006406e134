"""Run the example systems end to end: ``python3 dev.py demo`` runs this in the project's environment.

For each example project it shows what ``lockstep init`` scaffolds from the
raw data (in ``build/demo/``), then runs the whole system with one command,
``lockstep run --candidates``: ingest (validated, fingerprinted snapshot),
features (checked to be stateless), training of the default model and of the
boosted candidate (seeded, multi-seed, tracked in MLflow), promotion through
the gates, then ``verify`` (the champion rebuilt from its lineage and
compared bit for bit) and ``parity`` (the same rows through every prediction
path). A second ``lockstep run`` shows that nothing unchanged is recomputed.
Then the CI gates (``lockstep check``), generated documentation, and a short
serve/predict round: a batch prediction, the ONNX export, the service started
briefly for a few requests (one invalid), and the audit records. Last,
monitoring: each example's drift scenario gives a shifted batch, on which
``lockstep monitor`` finds drift (exit 3, with an HTML report), and a fresh
sample of the original data, on which it finds none.
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
        # the whole system: ingest, features, train (+ candidates), promote, verify, parity
        run("run", "--candidates", "--project", project)
        run("run", "--candidates", "--project", project)  # again: every step is skipped
        run("models", "list", "--project", project)
        run("check", "--project", project, ok=(0, 3))  # the CI gates (exit 3: the last candidate lost)
        run("docs", "--out", f"build/demo/{name}-docs", "--project", project)
        # a short serve/predict round
        run("predict", "--input", f"{project}/{data}", "--output", f"build/demo/{name}-predictions.parquet",
            "--project", project)
        # the ONNX export of the ames-housing model stops at its SaleDate step, and says so
        run("export", "onnx", "--project", project, ok=(0, 2))
        serve_briefly(project)
        run("audit", "show", "--limit", "5", "--project", project)
        # monitoring: a shifted batch drifts (exit 3), a fresh sample of the same population does not (exit 0)
        scenario = ROOT / "build" / "demo" / f"{name}-scenario"
        print(f"\n$ python {project}/drift.py --out {scenario.relative_to(ROOT)}", flush=True)
        subprocess.run([sys.executable, str(ROOT / project / "drift.py"), "--out", str(scenario)], check=True)
        run("monitor", "--data", f"{scenario.relative_to(ROOT)}/shifted.csv", "--out",
            f"build/demo/{name}-drift", "--project", project, ok=(3,))
        run("monitor", "--data", f"{scenario.relative_to(ROOT)}/fresh.csv", "--project", project, ok=(0,))
    print("\nDemo complete: both examples ingested, turned into features, trained, gated, verified bit for bit,"
          " served and monitored.\nOpen build/demo/telco-churn-docs/index.html,"
          " build/demo/telco-churn-drift/report.html, or the MLflow UI with: "
          ".venv/bin/lockstep ui --project examples/telco-churn")


if __name__ == "__main__":
    main()
