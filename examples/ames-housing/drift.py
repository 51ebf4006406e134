"""A drift scenario for ames-housing: a shifted batch, and a fresh sample of the original distribution.

Run from this folder: ``python drift.py`` writes

- ``scenario/shifted.csv``: sales of larger houses (living area and lot
  area up by 30%), built more recently (ten years later), with a third of
  the sales moved to the `Northridge_Heights` neighborhood: the kind of mix a
  new development brings;
- ``scenario/fresh.csv``: a resample of the original sales.

Then ``lockstep monitor --data scenario/shifted.csv`` finds drift (exit 3)
and ``lockstep monitor --data scenario/fresh.csv`` finds none (exit 0).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def scenario(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = pd.read_csv(HERE / "data" / "ames.csv")
    rng = np.random.default_rng(seed)
    fresh = data.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    shifted = data.sample(rows, replace=True, random_state=seed + 1).reset_index(drop=True)
    for column in ("Gr_Liv_Area", "Lot_Area"):
        shifted[column] = (shifted[column] * 1.3).round().astype(int)
    shifted["Year_Built"] = np.minimum(shifted["Year_Built"] + 10, shifted["Year_Sold"])
    shifted.loc[rng.random(rows) < 1 / 3, "Neighborhood"] = "Northridge_Heights"
    start = int(data["rownames"].max()) + 1
    for frame in (fresh, shifted):
        frame["rownames"] = np.arange(start, start + rows)
    return shifted, fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
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
