"""Fingerprint throughput on an in-memory table, against hashlib.md5 over the same bytes.

Run: ``.venv/bin/python bench/fingerprint.py [--rows 10000000] [--repeat 3]``

The table has 20 mixed columns (8 float64 with some missing values, 6 int64,
4 low-cardinality strings, 2 booleans), like a wide tabular data set. The
process is pinned to one CPU and Arrow to one thread, so the figures are for
one core. Throughput is the table's Arrow size (``Table.nbytes``) divided by
the best time of ``--repeat`` runs; md5 hashes exactly the table's Arrow
buffers (the same bytes), which is the cheapest thing a content hash could do.
Target (issue 2): at least 5x md5 and at least 1 GB/s.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import time

import numpy as np
import pyarrow as pa

from lockstep.core.fingerprint import fingerprint_table


def make_table(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    cols: dict[str, pa.Array] = {}
    for i in range(8):
        values = rng.normal(100, 30, rows)
        values[rng.random(rows) < 0.01] = np.nan
        cols[f"float_{i}"] = pa.array(values, from_pandas=True)
    for i in range(6):
        cols[f"int_{i}"] = pa.array(rng.integers(0, 1_000_000, rows))
    categories = np.array(["Month-to-month", "One year", "Two year", "Electronic check", "Mailed check",
                           "Bank transfer (automatic)", "Fiber optic", "DSL", "No"])
    for i in range(4):
        cols[f"str_{i}"] = pa.array(categories[rng.integers(0, len(categories), rows)])
    for i in range(2):
        cols[f"bool_{i}"] = pa.array(rng.random(rows) < 0.5)
    return pa.table(cols)


def best_of(repeat: int, func) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)

    table = make_table(args.rows)
    size_mb = table.nbytes / 1e6
    buffers = [b for column in table.columns for chunk in column.chunks for b in chunk.buffers() if b is not None]
    hashed_mb = sum(b.size for b in buffers) / 1e6

    def md5() -> str:
        h = hashlib.md5()
        for b in buffers:
            h.update(b)
        return h.hexdigest()

    t_fp = best_of(args.repeat, lambda: fingerprint_table(table))
    t_md5 = best_of(args.repeat, md5)
    rechunked = pa.Table.from_batches(table.to_batches(max_chunksize=65_536))
    same = fingerprint_table(rechunked) == fingerprint_table(table)

    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}, "
          f"pyarrow {pa.__version__}, pinned to 1 core")
    print(f"table: {args.rows:,} rows x {table.num_columns} columns, {size_mb:,.0f} MB of Arrow data "
          f"({hashed_mb:,.0f} MB of buffers)")
    print(f"lockstep fingerprint_table: {t_fp:.3f} s  {size_mb / t_fp:,.0f} MB/s")
    print(f"hashlib.md5 over the same buffers: {t_md5:.3f} s  {hashed_mb / t_md5:,.0f} MB/s")
    print(f"ratio (md5 time / fingerprint time): {t_md5 / t_fp:.2f}x   target >= 5x and >= 1,000 MB/s")
    print(f"same fingerprint after re-chunking into 64k-row batches: {same}")


if __name__ == "__main__":
    main()
