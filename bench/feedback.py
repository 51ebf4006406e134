"""/predict's latency with and without a concurrent /feedback load that looks up unknown request ids.

Run: ``.venv/bin/python bench/feedback.py [--records 24000] [--seconds 15]``

A telco-churn service (600 training rows) runs as its own process
(``lockstep serve``, one worker) on an audit log of ``--records`` earlier
predictions (compacted into the Delta table, as after a day of traffic).
Four client threads send one-record ``/predict`` requests for ``--seconds``;
then the same again while two more threads send ``/feedback`` for request
ids that are not in the log (the worst case: a look-up that finds nothing).
Prints the p50 and p99 of /predict in both runs and their ratio, and the
p50 and p99 of /feedback. A third run puts two clients on ``GET /model``
(no look-up) instead: the clients share the machine's two cores with the
service, so extra traffic of any kind slows /predict a little; the ratio to
that control is what the look-ups cost.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime

from _common import ROOT

sys.path.insert(0, str(ROOT))

from lockstep.store.audit import AuditLog  # noqa: E402
from tests.conftest import read_rows  # noqa: E402
from tests.serving import Server, make_trained_project, record  # noqa: E402

OUT = ROOT / "bench" / "out" / "feedback"


def _post(url: str, body: dict | None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def _load(url: str, body_of, threads: int, seconds: float, latencies: list[float]) -> None:
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def client() -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            _post(url, body_of())
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def _quantiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return values[len(values) // 2] * 1000, values[int(len(values) * 0.99)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=24_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    shutil.rmtree(OUT, ignore_errors=True)
    project = make_trained_project(OUT / "telco").path
    header, rows = read_rows(project / "data" / "wa_churn.csv")
    records = [record(dict(zip(header, row))) for row in rows[:200]]

    log = AuditLog(project / ".lockstep" / "audit")
    writer = log.writer()
    for start in range(0, args.records, 2000):
        writer.write([{"request_id": uuid.uuid4().hex, "time": datetime.now(UTC).isoformat(), "endpoint": "/predict",
                       "status": 200, "client": "127.0.0.1", "model_name": "churn-serve", "model_version": 1,
                       "model_fingerprint": "-", "runtime": "sklearn", "latency_ms": 5.0, "rows": 1,
                       "inputs": json.dumps([records[i % len(records)]]), "outputs": "{}", "error": None}
                      for i in range(start, min(start + 2000, args.records))])
    writer.close()
    log.compact(include=sorted(writer.folder.glob("*.jsonl")))

    counter = iter(range(10**9))
    with Server(project, "--workers", "1") as server:
        predict_url, feedback_url = server.url + "/predict", server.url + "/feedback"
        _load(predict_url, lambda: records[next(counter) % len(records)], 4, 2, [])  # warm up
        alone: list[float] = []
        _load(predict_url, lambda: records[next(counter) % len(records)], 4, args.seconds, alone)
        together: list[float] = []
        feedback: list[float] = []
        background = threading.Thread(target=_load, args=(feedback_url, lambda: {
            "request_id": uuid.uuid4().hex, "label": "Yes"}, 2, args.seconds, feedback))
        background.start()
        _load(predict_url, lambda: records[next(counter) % len(records)], 4, args.seconds, together)
        background.join()
        # the control: the same two extra clients on an endpoint that looks nothing up (GET /model)
        control: list[float] = []
        other = threading.Thread(target=_load, args=(server.url + "/model", lambda: None, 2, args.seconds, []))
        other.start()
        _load(predict_url, lambda: records[next(counter) % len(records)], 4, args.seconds, control)
        other.join()

    a50, a99 = _quantiles(alone)
    t50, t99 = _quantiles(together)
    f50, f99 = _quantiles(feedback)
    c50, c99 = _quantiles(control)
    print(f"audit log: {args.records:,} earlier predictions (compacted); 4 /predict clients, {args.seconds:.0f} s each")
    print(f"/predict alone:                    p50 {a50:6.1f} ms  p99 {a99:6.1f} ms  ({len(alone):,} requests)")
    print(f"/predict with 2 /feedback clients: p50 {t50:6.1f} ms  p99 {t99:6.1f} ms  ({len(together):,} requests)")
    print(f"/feedback (unknown ids):           p50 {f50:6.1f} ms  p99 {f99:6.1f} ms  ({len(feedback):,} requests)")
    print(f"/predict with 2 GET /model clients: p50 {c50:6.1f} ms  p99 {c99:6.1f} ms  ({len(control):,} requests)")
    print(f"ratio of /predict p99, with /feedback clients / alone: {t99 / a99:.2f}x; "
          f"with /feedback clients / with the control clients: {t99 / c99:.2f}x")


if __name__ == "__main__":
    main()
