"""A drift scenario for telco-churn: a shifted batch, and a fresh sample of the original distribution.

Run from this folder: ``python drift.py`` writes

- ``scenario/shifted.csv``: customers whose monthly charges rose by a quarter
  (total charges with them) and of whom 40% of the one- and two-year
  contracts moved to month-to-month, the kind of change a price increase
  brings;
- ``scenario/fresh.csv``: a resample of the original customers, as a new
  month of the same population would look.

Then ``lockstep monitor --data scenario/shifted.csv`` finds drift (exit 3)
and ``lockstep monitor --data scenario/fresh.csv`` finds none (exit 0).
Both keep the `churn` column, so that the shifted batch can also be appended
to the source to try the retraining loop (``lockstep monitor --retrain``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def scenario(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = pd.read_csv(HERE / "data" / "wa_churn.csv")
    rng = np.random.default_rng(seed)
    fresh = data.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    shifted = data.sample(rows, replace=True, random_state=seed + 1).reset_index(drop=True)
    shifted["monthly_charges"] = (shifted["monthly_charges"] * 1.25).round(2)
    shifted["total_charges"] = (shifted["total_charges"] * 1.25).round(2)
    longer = shifted["contract"].isin(["One year", "Two year"])
    moved = longer & (rng.random(rows) < 0.4)
    shifted.loc[moved, "contract"] = "Month-to-month"
    # new ids, so that the batch could be appended to the source without clashing
    start = int(data["rownames"].max()) + 1
    for frame in (fresh, shifted):
        frame["rownames"] = np.arange(start, start + rows)
    return shifted, fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "scenario")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    shifted, fresh = scenario(args.rows, args.seed)
    shifted.to_csv(args.out / "shifted.csv", index=False)
    fresh.to_csv(args.out / "fresh.csv", index=False)
    print(f"wrote {args.out / 'shifted.csv'} and {args.out / 'fresh.csv'} ({args.rows:,} rows each)")


if __name__ == "__main__":
    main()
