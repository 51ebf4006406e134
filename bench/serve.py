"""Single-record POST /predict on the telco-churn model: lockstep serve against MLflow and a constant endpoint.

Run: ``.venv/bin/python bench/serve.py [--seconds 15]`` (needs ``wrk``: ``apt-get install wrk``)

Measured side by side in one run with the same load generator: wrk, one
thread, 8 connections, pinned to CPU 1; each server pinned to CPU 0, on
127.0.0.1:

* ``lockstep serve --runtime onnx`` and ``--runtime sklearn``, audit log and
  validation on (every response waits for its fsynced audit record);
* ``mlflow models serve --env-manager local`` on the same registered version;
* a FastAPI app on the same uvicorn stack that parses and validates the same
  body with a pydantic model of the same fields (FastAPI's usual way: the
  record as the endpoint's typed parameter), records nothing and returns a
  constant;
* the same app without the parameter: it does not read the body (the limit
  of the stack).

The project is the telco-churn example; run ``python3 dev.py demo`` first (or
``lockstep ingest/features/train/promote`` on it), the benchmark exports the
champion to ONNX itself. Targets, audit log and validation on: the onnx
runtime at >= 10x MLflow's requests/s and <= 1/10 of its p99, the sklearn
runtime no slower than MLflow (issue 5); the onnx runtime at >= 0.6x the
validating constant endpoint's requests/s and >= 0.3x the non-reading one's
(issue 17).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "examples" / "telco-churn"
RECORD = {"female": 1, "senior_citizen": 0, "partner": 1, "dependents": 0, "tenure": 1, "phone_service": 0,
          "multiple_lines": "No phone service", "internet_service": "DSL", "online_security": "No",
          "online_backup": "Yes", "device_protection": "No", "tech_support": "No", "streaming_tv": "No",
          "streaming_movies": "No", "contract": "Month-to-month", "paperless_billing": 1,
          "payment_method": "Electronic check", "monthly_charges": 29.85, "total_charges": 29.85}

CONSTANT_APP = '''
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
app = FastAPI()
BODY = b'{"predictions": ["No"], "probabilities": [{"No": 0.7, "Yes": 0.3}]}'

class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
FIELDS

@app.post("/predict")
async def predict() -> Response:
    return Response(BODY, media_type="application/json")

@app.post("/validated")
async def validated(record: Record) -> Response:
    return Response(BODY, media_type="application/json")
'''.replace("FIELDS", "\n".join(f"    {name}: {type(value).__name__}" for name, value in RECORD.items()))


def wait(url: str, body: bytes, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def wrk(url: str, body: bytes, seconds: int) -> dict:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n'
                 'wrk.headers["Content-Type"] = "application/json"\n')
    script.close()
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c8", f"-d{seconds}s", "--latency", "-s", script.name,
                          url], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)

    def latency(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50_ms": latency("50%"),
            "p99_ms": latency("99%"), "errors": int(non2xx.group(1)) if non2xx else 0}


def run_server(cmd: list[str], url: str, body: bytes, seconds: int, env: dict | None = None) -> dict:
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, start_new_session=True, cwd=str(ROOT))
    try:
        wait(url, body)
        wrk(url, body, 2)  # warm up
        return wrk(url, body, seconds)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--quick", action="store_true",
                        help="only lockstep's onnx runtime and the two constant endpoints")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    bin_dir = Path(sys.executable).parent
    lockstep = str(bin_dir / "lockstep")
    export = subprocess.run([lockstep, "export", "onnx", "-p", str(PROJECT), "--json"], capture_output=True,
                            text=True, check=True)
    model = json.loads(export.stdout)
    name, version = model["model"], model["version"]
    print(f"model: {name}/{version} (telco-churn), one record per request, wrk -t1 -c8 -d{args.seconds}s")
    one = json.dumps(RECORD).encode()
    results = {}
    for runtime in ("onnx",) if args.quick else ("onnx", "sklearn"):
        results[f"lockstep {runtime}"] = run_server(
            [lockstep, "serve", "-p", str(PROJECT), "--model", f"{name}/{version}", "--runtime", runtime, "--port",
             "8801"], "http://127.0.0.1:8801/predict", one, args.seconds)
    store = PROJECT / ".lockstep"
    if not args.quick:
        results["mlflow models serve"] = run_server(
            [str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{name}/{version}", "--env-manager",
             "local", "--host", "127.0.0.1", "--port", "8802"], "http://127.0.0.1:8802/invocations",
            json.dumps({"dataframe_records": [RECORD]}).encode(), args.seconds,
            env={"MLFLOW_TRACKING_URI": f"sqlite:///{(store / 'mlflow.db').resolve()}",
                 "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"})  # it runs `uvicorn` by name
    app_dir = Path(tempfile.mkdtemp())
    (app_dir / "constant_app.py").write_text(CONSTANT_APP)
    constant = [str(bin_dir / "uvicorn"), "constant_app:app", "--app-dir", str(app_dir), "--host", "127.0.0.1",
                "--port", "8803", "--log-level", "warning", "--no-access-log"]
    results["constant, validated"] = run_server(constant, "http://127.0.0.1:8803/validated", one, args.seconds)
    results["constant endpoint"] = run_server(constant, "http://127.0.0.1:8803/predict", one, args.seconds)
    for label, r in results.items():
        print(f"{label:22s} {r['rps']:9.1f} requests/s   p50 {r['p50_ms']:8.2f} ms   p99 {r['p99_ms']:8.2f} ms"
              + (f"   ({r['errors']} non-2xx)" if r["errors"] else ""))
    onnx, const, valid = (results[k] for k in ("lockstep onnx", "constant endpoint", "constant, validated"))
    if not args.quick:
        ml, sk = results["mlflow models serve"], results["lockstep sklearn"]
        print(f"onnx vs MLflow: {onnx['rps'] / ml['rps']:.1f}x requests/s (target >= 10x), "
              f"p99 {onnx['p99_ms'] / ml['p99_ms']:.3f}x (target <= 0.1x)")
        print(f"sklearn vs MLflow: {sk['rps'] / ml['rps']:.2f}x requests/s (target >= 1x)")
    print(f"onnx vs validating constant endpoint: {onnx['rps'] / valid['rps']:.2f}x requests/s (target >= 0.6x)")
    print(f"onnx vs constant endpoint: {onnx['rps'] / const['rps']:.2f}x requests/s (target >= 0.3x)")


if __name__ == "__main__":
    main()
