"""The service's own CPU time per ``/predict`` request, without the network: with and without the audit log.

Run: ``.venv/bin/python bench/serve_cpu.py [--requests 20000] [--repeat 3]``

``bench/serve.py`` measures the whole stack under wrk, whose figures move
by 10% from one run to the next on a shared machine. This one calls the
app's ASGI entry point directly, eight requests at a time (wrk's eight
connections), in one process pinned to one core with uvloop: the time of
lockstep's layer, the request model, the ONNX runtime, the answer and the
audit record (a real, fsynced audit log in the example's store), without
uvicorn's HTTP parsing and the sockets. Each figure is the process's CPU
time (and wall time) divided by the requests, in a fresh process, and the
two configurations alternate. The garbage collector's pauses during the
measured requests are timed too (``gc.callbacks``): a pause stops every
request in flight. The telco-churn example must have been
exported to ONNX (``bench/serve.py`` does it, or ``lockstep export onnx``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from _common import ROOT, run_python

CODE = r"""
import asyncio, gc, json, sys, time
from pathlib import Path
import uvloop
from lockstep.inference.service import ServeSettings, create_app
store, audit, requests = Path(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
settings = ServeSettings(store_root=str(store), experiment="telco-churn", model="telco-churn@champion",
                         default_name="telco-churn", runtime="onnx", audit=audit)
app = create_app(settings)
body = sys.argv[4].encode()
headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]


async def one():
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/predict", "raw_path": b"/predict", "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 200, sent


async def main():
    started, stop, ready = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def receive():
        if not started.is_set():
            started.set()
            return {"type": "lifespan.startup"}
        await stop.wait()
        return {"type": "lifespan.shutdown"}

    async def send(message):
        if message["type"] == "lifespan.startup.complete":
            ready.set()

    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send))
    await ready.wait()

    async def client(n):
        for _ in range(n):
            await one()

    await asyncio.gather(*(client(200) for _ in range(8)))  # warm up
    pauses, began = [], [0.0]

    def collecting(phase, info):  # the garbage collector's pauses, which stop every request
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - began[0])

    gc.callbacks.append(collecting)
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(requests // 8) for _ in range(8)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    gc.callbacks.remove(collecting)
    stop.set()
    await lifespan
    print(json.dumps({"cpu_us": cpu / requests * 1e6, "wall_us": wall / requests * 1e6,
                      "gc_us": sum(pauses) / requests * 1e6, "gc_max_ms": max(pauses, default=0) * 1e3}))


uvloop.run(main())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from serve import RECORD

    os.sched_setaffinity(0, {0})  # the measured processes inherit one core, as the server has in bench/serve.py
    store = ROOT / "examples" / "telco-churn" / ".lockstep"
    figures: dict[str, list[dict]] = {"audit log on": [], "audit log off": []}
    for _ in range(args.repeat):
        for label in figures:
            figures[label].append(run_python(CODE, store, "1" if label == "audit log on" else "0", args.requests,
                                             json.dumps(RECORD)))
    print(f"telco-churn, onnx runtime, {args.requests:,} requests 8 at a time, in process on one core")
    for label, runs in figures.items():
        cpu = sorted(r["cpu_us"] for r in runs)
        wall = sorted(r["wall_us"] for r in runs)
        gc_us = sorted(r["gc_us"] for r in runs)
        print(f"{label:14s} CPU {cpu[len(cpu) // 2]:6.1f} us a request (runs: {', '.join(f'{c:.0f}' for c in cpu)}), "
              f"wall {wall[len(wall) // 2]:6.1f} us; garbage collection {gc_us[len(gc_us) // 2]:4.1f} us a request, "
              f"longest pause {max(r['gc_max_ms'] for r in runs):.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
