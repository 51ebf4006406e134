"""Peak memory of ``lockstep predict`` against the size of its input: it must not grow with the rows.

Run: ``.venv/bin/python bench/predict_memory.py [--rows 1000000 4000000] [--chunk-rows 100000]``

A telco-churn model (600 training rows, ``tests/serving.py``) predicts
inputs of ``--rows`` rows (the example data repeated, with new ids), read
from Parquet and from CSV and written as Parquet, each run in a fresh
process. Prints the run time and the peak resident memory (VmHWM) of each,
and the growth from the smallest to the largest input.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from _common import ROOT, run_python

sys.path.insert(0, str(ROOT))

from tests.serving import make_trained_project  # noqa: E402

OUT = ROOT / "bench" / "out" / "predict_memory"

PREDICT = r"""
import json, sys, time
from lockstep import Project
project = Project(sys.argv[1])
project.load_model("@champion")  # imports and the model load are not what is measured
start = time.perf_counter()
result = project.predict(sys.argv[3], input=sys.argv[2], chunk_rows=int(sys.argv[4]))
print(json.dumps({"seconds": time.perf_counter() - start, "rows": result.rows, "peak_mb": hwm()}))
"""


def make_inputs(project, rows: int) -> dict[str, str]:
    """The example's rows repeated to ``rows`` rows with new ids, as Parquet and CSV (written in pieces)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    base = pacsv.read_csv(project / "data" / "wa_churn.csv").drop_columns(["churn"])
    paths = {"parquet": OUT / f"rows-{rows}.parquet", "csv": OUT / f"rows-{rows}.csv"}
    if all(p.exists() for p in paths.values()):
        return {k: str(v) for k, v in paths.items()}
    parquet = pq.ParquetWriter(paths["parquet"], base.schema)
    csv = pacsv.CSVWriter(paths["csv"], base.schema)
    block = pa.concat_tables([base] * (100_000 // base.num_rows + 1)).slice(0, 100_000)
    written = 0
    while written < rows:
        # row groups of 100,000 rows, as a data tool writes them: tiny row groups make a file whose
        # metadata alone grows with its length (6,667 groups of 600 rows: 95 MB more just to open it)
        piece = block.slice(0, min(block.num_rows, rows - written))
        ids = pa.array(range(written + 1, written + piece.num_rows + 1), base.schema.field("rownames").type)
        piece = piece.set_column(piece.column_names.index("rownames"), "rownames", ids)
        parquet.write_table(piece)
        csv.write_table(piece)
        written += piece.num_rows
    parquet.close()
    csv.close()
    return {k: str(v) for k, v in paths.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args()
    shutil.rmtree(OUT / "telco", ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    project = make_trained_project(OUT / "telco").path
    results = []
    for rows in args.rows:
        inputs = make_inputs(project, rows)
        for kind, path in inputs.items():
            out = run_python(PREDICT, project, path, OUT / f"predictions-{kind}.parquet", args.chunk_rows)
            results.append((rows, kind, out))
            print(f"{rows:>10,} rows from {kind:7}: {out['seconds']:6.1f} s, peak {out['peak_mb']:6.0f} MB", flush=True)
    for kind in ("parquet", "csv"):
        peaks = [out["peak_mb"] for rows, k, out in results if k == kind]
        print(f"{kind}: peak memory at the largest input / at the smallest: {peaks[-1] / peaks[0]:.2f}x")


if __name__ == "__main__":
    main()
