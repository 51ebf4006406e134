"""``lockstep monitor`` on millions of rows x 20 mixed columns from Parquet, against merely reading them.

Run: ``.venv/bin/python bench/monitor.py [--rows 10000000] [--repeat 3]``

A synthetic project with 20 raw inputs (8 float, 4 integer, 6 text, 2
boolean columns) is trained on 20,000 rows (the reference profile comes from
its training split). A Parquet file of ``--rows`` rows from a slightly
shifted distribution is then monitored, in fresh processes:

* baseline: ``pyarrow.parquet.read_table`` of the 20 columns (multithreaded);
* ``lockstep monitor --inputs-only`` (the raw inputs: every statistic of
  every column), timed around the call, after imports and the model load;
* ``lockstep monitor`` (also the features the model sees and its
  predictions: dominated by running the model, like ``lockstep predict``),
  on the first million rows only.

Peak memory (VmHWM: the resident high-water mark of the process itself;
ru_maxrss would include the parent's, Linux carries it across exec) is
reported for monitoring a
quarter, a half and all of the rows, to show that it does not grow with
them. Target (issue 7): at most 2x the read time, with bounded memory.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from _common import ROOT, lockstep, run_python

OUT = ROOT / "bench" / "out" / "monitor"

NUMERIC = [f"x{i}" for i in range(8)]
INTEGER = [f"n{i}" for i in range(4)]
TEXT = [f"c{i}" for i in range(6)]
BOOL = ["b0", "b1"]

CONFIG = """
[project]
name = "monitor-bench"

[data]
source = "data/train.parquet"
id = "id"
target = "y"
task = "classification"

[data.schema]
id = { dtype = "int" }
y = { dtype = "int", allowed = [0, 1] }
{columns}

[features]
name = "bench-features"

[train]
model = "pipeline:model"
seeds = [0]
primary_metric = "roc_auc"

[registry]
model = "monitor-bench"
"""

PIPELINE = '''
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from lockstep.features.transformers import CategoryMissingFiller, MissingIndicatorImputer

NUMBERS = {numbers}
CATEGORIES = {categories}


def model():
    pre = ColumnTransformer([
        ("num", MissingIndicatorImputer(), NUMBERS),
        ("cat", make_pipeline(CategoryMissingFiller(), OneHotEncoder(handle_unknown="ignore")), CATEGORIES),
    ])
    return Pipeline([("preprocess", pre), ("estimator", LogisticRegression(max_iter=500))])
'''


def make_table(rows: int, seed: int, shift: float = 0.0):
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    columns = {"id": pa.array(np.arange(rows, dtype=np.int64))}
    for i, name in enumerate(NUMERIC):
        values = rng.normal(i, 1 + i / 4, rows) + shift
        mask = rng.random(rows) < 0.02
        columns[name] = pa.array(values, mask=mask)
    for i, name in enumerate(INTEGER):
        columns[name] = pa.array(rng.integers(0, 50 * (i + 1), rows))
    for i, name in enumerate(TEXT):
        levels = np.asarray([f"level_{k}" for k in range(5 + 5 * i)], dtype=object)
        weights = rng.dirichlet(np.ones(levels.size))
        codes = rng.choice(levels.size, rows, p=weights)
        dictionary = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(levels))
        columns[name] = dictionary.cast(pa.string())
    for name in BOOL:
        columns[name] = pa.array(rng.random(rows) < 0.3)
    score = sum(np.nan_to_num(np.asarray(columns[n].to_numpy(zero_copy_only=False), dtype=float)) for n in NUMERIC[:3])
    columns["y"] = pa.array((score + rng.normal(0, 2, rows) > 3).astype(np.int64))
    return pa.table(columns)


def prepare(rows: int) -> tuple[Path, Path]:
    import pyarrow.parquet as pq

    project = OUT / "project"
    shutil.rmtree(project, ignore_errors=True)
    (project / "data").mkdir(parents=True)
    schema = "\n".join([*(f'{n} = {{ dtype = "float", nullable = true }}' for n in NUMERIC),
                        *(f'{n} = {{ dtype = "int" }}' for n in INTEGER),
                        *(f'{n} = {{ dtype = "str" }}' for n in TEXT),
                        *(f'{n} = {{ dtype = "bool" }}' for n in BOOL)])
    (project / "lockstep.toml").write_text(CONFIG.replace("{columns}", schema))
    (project / "pipeline.py").write_text(PIPELINE.format(numbers=NUMERIC + INTEGER, categories=TEXT + BOOL))
    pq.write_table(make_table(20_000, 0), project / "data" / "train.parquet")
    lockstep(project, ["ingest"], ["features"], ["train"], ["promote"])
    big = OUT / f"window-{rows}.parquet"
    if not big.exists():
        writer = None
        step = 1_000_000
        for start in range(0, rows, step):
            part = make_table(min(step, rows - start), 100 + start, shift=0.05)
            if writer is None:
                writer = pq.ParquetWriter(big, part.schema)
            writer.write_table(part, row_group_size=250_000)
        writer.close()
    return project, big


READ = r"""
import json, sys, time, resource
import pyarrow.parquet as pq
columns = json.loads(sys.argv[2])
start = time.perf_counter()
table = pq.read_table(sys.argv[1], columns=columns)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": table.num_rows,
                  "peak_mb": hwm()}))
"""

MONITOR = r"""
import json, sys, time, resource
import pyarrow.parquet as pq
from lockstep import Project
from lockstep.monitoring.monitor import monitor
p = Project(sys.argv[1])
loaded = p.registry.load(p.model_ref(None, "champion"))
path, inputs_only = sys.argv[2], sys.argv[3] == "inputs"
before = hwm()
start = time.perf_counter()
report = monitor(p.config, p.store, p.registry, p.model_ref(None, "champion"), data=path, inputs_only=inputs_only,
                 loaded=loaded)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": report.rows, "drift": report.drift,
                  "drifted": len(report.drifted()), "before_mb": before,
                  "peak_mb": hwm()}))
"""


def first_rows(path: Path, rows: int) -> Path:
    """A file of the first ``rows`` rows of ``path`` (whole row groups of 250,000), written once."""
    import pyarrow.parquet as pq

    if rows == 0:
        return path
    sliced = path.with_name(f"{path.stem}-first-{rows}.parquet")
    if not sliced.exists():
        source = pq.ParquetFile(path)
        with pq.ParquetWriter(sliced, source.schema_arrow) as writer:
            for group in range(rows // 250_000):
                writer.write_table(source.read_row_group(group), row_group_size=250_000)
    return sliced



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    project, big = prepare(args.rows)
    columns = json.dumps(NUMERIC + INTEGER + TEXT + BOOL)
    read = min((run_python(READ, str(big), columns) for _ in range(args.repeat)), key=lambda r: r["seconds"])
    fast = min((run_python(MONITOR, str(project), str(big), "inputs") for _ in range(args.repeat)),
               key=lambda r: r["seconds"])
    print(f"rows: {args.rows:,} x 20 columns ({big.stat().st_size / 1e6:.0f} MB of Parquet)")
    print(f"baseline, pyarrow read_table: {read['seconds']:.2f} s (peak {read['peak_mb']:.0f} MB)")
    print(f"lockstep monitor --inputs-only: {fast['seconds']:.2f} s = {fast['seconds'] / read['seconds']:.2f}x the "
          f"read (target <= 2x); {fast['drifted']} columns drifted")
    for fraction in (4, 2, 1):
        limit = args.rows // fraction // 250_000 * 250_000
        if limit == args.rows:
            limit = 0
        result = fast if limit == 0 else run_python(MONITOR, str(project), str(first_rows(big, limit)), "inputs")
        print(f"  peak memory monitoring {result['rows']:>12,} rows: {result['peak_mb']:.0f} MB "
              f"(before monitoring: {result['before_mb']:.0f} MB)")
    full = run_python(MONITOR, str(project), str(first_rows(big, 1_000_000)), "all")
    print(f"lockstep monitor with features and predictions on {full['rows']:,} rows: {full['seconds']:.2f} s "
          f"({full['rows'] / full['seconds']:,.0f} rows/s)")


if __name__ == "__main__":
    main()
