"""`lockstep init DATA --target T --id row_id && lockstep run` with no edits, on real data the project never saw.

Each data set runs the whole path of ``tests/scaffold_check.py`` as a new
user would, in real processes: init, run (ingest, features, train, promote,
verify, parity), the scaffolded model against a default histogram gradient
boosting model, monitoring a sample of the training rows, and (for the first
data set: where a store lives does not depend on its data, and
``tests/test_relocation.py`` covers it) the project copied and moved.
``bench/init_corpus.py`` runs the same on the whole corpus (docs/benchmarks.md
has the table).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from .corpus import INIT_CORPUS
from .scaffold_check import check_dataset

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CASES = [
    INIT_CORPUS["titanic"],  # names as text ids, most rows repeat another's inputs
    INIT_CORPUS["airquality"],  # rows without the target
    replace(INIT_CORPUS["hotels"], key="hotels-1500", rows=1500),  # dates, agents' names, countries
]


@pytest.mark.parametrize("data", CASES, ids=lambda d: d.key)
def test_init_and_run_with_no_edits(data, tmp_path: Path) -> None:
    relocate = data is CASES[0]
    record = check_dataset(data, tmp_path, relocate=relocate)
    assert record["init"] == 0 and record.get("run") == 0, record.get("error")
    assert record["reproduced"] is True and record["identical"] is True
    # the scaffolded model is at least about as good as a default gradient boosting model on the same split
    higher = record["metric"] in ("roc_auc", "accuracy", "balanced_accuracy", "f1", "precision", "recall", "r2")
    ratio = record["value"] / record["baseline"] if higher else record["baseline"] / record["value"]
    assert ratio >= 0.95, record
    assert record["monitor"] == 0 and record["drifted"] == [], record
    # a second run skips every step, decided from fingerprints alone (issue 17)
    assert record["second_run_skipped"] is True and record["heavy_imports_of_a_second_run"] == [], record
    if relocate:
        assert record["copied"] is True and record["moved"] is True
