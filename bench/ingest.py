"""Ingest time for 1M rows from CSV and from Parquet, with the time of a bare read for context.

Run: ``.venv/bin/python bench/ingest.py [--rows 1000000]``

The data is the telco-churn example resampled to ``--rows`` rows with new
ids (written under ``bench/out/``, git-ignored). Each ingest starts from an
empty store and does everything ``lockstep ingest`` does: read, convert and
validate with pandera, check ids and leakage, fingerprint, write the Delta
snapshot. The resampled rows repeat, so the bench project allows shared rows
(``max_shared_fraction = 1.0``); the check still runs.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lockstep import Project

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "telco-churn"
OUT = ROOT / "bench" / "out" / "ingest"


def make_data(rows: int) -> tuple[Path, Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = OUT / f"telco_{rows}.csv", OUT / f"telco_{rows}.parquet"
    if not csv_path.exists() or not parquet_path.exists():
        base = pacsv.read_csv(EXAMPLE / "data" / "wa_churn.csv")
        idx = np.random.default_rng(0).integers(0, base.num_rows, rows)
        table = base.take(pa.array(idx))
        table = table.set_column(0, "rownames", pa.array(np.arange(1, rows + 1)))
        pacsv.write_csv(table, csv_path)
        pq.write_table(table, parquet_path)
    return csv_path, parquet_path


def make_project(name: str, source: Path) -> Path:
    project = OUT / name
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    text = (EXAMPLE / "lockstep.toml").read_text()
    text = text.replace('source = "data/wa_churn.csv"', f'source = "{source.as_posix()}"')
    text = text.replace("max_shared_fraction = 0.01", "max_shared_fraction = 1.0")
    (project / "lockstep.toml").write_text(text)
    return project


def timed_ingest(project_dir: Path) -> tuple[float, dict[str, float], int]:
    steps: list[tuple[str, float]] = []
    start = time.perf_counter()
    result = Project(project_dir).ingest(progress=lambda name: steps.append((name, time.perf_counter())))
    total = time.perf_counter() - start
    marks = steps + [("end", start + total)]
    breakdown = {name: marks[i + 1][1] - t for i, (name, t) in enumerate(steps)}
    return total, breakdown, result.snapshot.rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    csv_path, parquet_path = make_data(args.rows)
    print(f"data: {args.rows:,} rows x 21 columns; CSV {csv_path.stat().st_size / 1e6:.0f} MB, "
          f"Parquet {parquet_path.stat().st_size / 1e6:.0f} MB")

    t = time.perf_counter()
    pacsv.read_csv(csv_path)
    t_arrow_csv = time.perf_counter() - t
    t = time.perf_counter()
    pd.read_csv(csv_path)
    t_pandas_csv = time.perf_counter() - t
    t = time.perf_counter()
    pq.read_table(parquet_path)
    t_parquet = time.perf_counter() - t

    for label, source, bare in (("CSV", csv_path, t_arrow_csv), ("Parquet", parquet_path, t_parquet)):
        project = make_project(f"project_{label.lower()}", source)
        total, breakdown, rows = timed_ingest(project)
        steps = ", ".join(f"{name} {sec:.2f}s" for name, sec in breakdown.items())
        print(f"lockstep ingest from {label}: {total:.2f} s ({rows / total:,.0f} rows/s); "
              f"bare pyarrow read {bare:.2f} s")
        print(f"  steps: {steps}")
        again, _, _ = timed_ingest(project)
        print(f"  re-run with unchanged inputs (skipped): {again:.3f} s")
    print(f"context: pandas.read_csv of the same CSV {t_pandas_csv:.2f} s")


if __name__ == "__main__":
    main()
