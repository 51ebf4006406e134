"""``lockstep predict`` on 1M rows from Parquet against in-process ``predict_proba`` on the same rows.

Run: ``.venv/bin/python bench/predict.py [--rows 1000000]``

The model is the telco-churn champion (run ``python3 dev.py demo`` first).
The input is the example data resampled to ``--rows`` rows (``bench/out/``).

* baseline: the rows already in memory as the pipeline's input DataFrame,
  one call to ``pipeline.predict_proba`` (fresh process, not timed: reading);
* lockstep: the whole ``lockstep predict --input rows.parquet --output
  predictions.parquet`` command in process: reading in chunks, validating
  against the schema, building the input, predicting labels and
  probabilities, fingerprinting input and output, writing Parquet, recording
  the run. Target (issue 5): at least 0.8x the baseline's rows/s.
"""

from __future__ import annotations

import argparse

from _common import ROOT, run_python

PROJECT = ROOT / "examples" / "telco-churn"
OUT = ROOT / "bench" / "out" / "predict"

BASELINE = r"""
import json, sys, time
import pyarrow.parquet as pq
from lockstep import Project
p = Project(sys.argv[1])
loaded = p.load_model("@champion")
table = pq.read_table(sys.argv[2])
from lockstep.data.schema import validate_table
frame = loaded.schema.frame(validate_table(table, loaded.schema.columns, extra_columns="ignore").table)
start = time.perf_counter()
loaded.model.predict_proba(frame)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

LOCKSTEP = r"""
import json, sys, time
import sklearn.pipeline
from lockstep import Project
p = Project(sys.argv[1])
p.load_model("@champion")  # the model load (MLflow/skops import) is not what is measured
start = time.perf_counter()
result = p.predict(sys.argv[3], input=sys.argv[2], chunk_rows=int(sys.argv[4]))
print(json.dumps({"seconds": time.perf_counter() - start, "rows": result.rows}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    args = parser.parse_args()
    from ingest import make_data

    _, parquet = make_data(args.rows)
    OUT.mkdir(parents=True, exist_ok=True)

    bare = run_python(BASELINE, PROJECT, parquet)["seconds"]
    lock = run_python(LOCKSTEP, PROJECT, parquet, OUT / "predictions.parquet", args.chunk_rows)
    print(f"rows: {args.rows:,} from Parquet, telco-churn champion, chunks of {args.chunk_rows:,}")
    print(f"baseline, in-process predict_proba on the in-memory DataFrame: {bare:.2f} s "
          f"({args.rows / bare:,.0f} rows/s)")
    print(f"lockstep predict (read, validate, predict, fingerprint, write, record): {lock['seconds']:.2f} s "
          f"({lock['rows'] / lock['seconds']:,.0f} rows/s)")
    print(f"ratio (lockstep rows/s / baseline rows/s): {bare / lock['seconds']:.2f}x   target >= 0.8x")


if __name__ == "__main__":
    main()
