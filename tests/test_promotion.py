"""Promotion with a noise estimate that does not collapse to 0: a paired bootstrap on the challenger's test rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lockstep import Project, init_project
from lockstep.evaluation.metrics import Outputs, compute_metrics
from lockstep.evaluation.paired import paired_bootstrap, weighted_metric

from .corpus import CORPUS

CLASSIFICATION = ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier_score"]
REGRESSION = ["rmse", "mae", "r2", "mape"]


def _classification(classes: list[str], n: int = 300, seed: int = 1) -> Outputs:
    rng = np.random.default_rng(seed)
    y = rng.choice(classes, n)
    proba = rng.dirichlet(np.ones(len(classes)), n)
    proba[:6] = proba[6]  # ties
    return Outputs(y, np.asarray(classes, dtype=object)[proba.argmax(axis=1)], proba, classes)


@pytest.mark.parametrize("classes", [["no", "yes"], ["a", "b", "c"]])
@pytest.mark.parametrize("metric", CLASSIFICATION)
def test_weighted_metrics_are_the_metrics_of_the_resampled_rows(classes: list[str], metric: str) -> None:
    out = _classification(classes)
    n = len(out.y_true)
    assert weighted_metric("classification", metric, out, np.ones((1, n)))[0] == pytest.approx(
        compute_metrics("classification", [metric], out)[metric], rel=1e-12)
    counts = np.random.default_rng(2).multinomial(n, np.full(n, 1 / n), size=2).astype(float)
    for row in range(2):
        rows = np.repeat(np.arange(n), counts[row].astype(int))
        resampled = Outputs(out.y_true[rows], out.y_pred[rows], out.proba[rows], classes)
        assert weighted_metric("classification", metric, out, counts)[row] == pytest.approx(
            compute_metrics("classification", [metric], resampled)[metric], rel=1e-12)


@pytest.mark.parametrize("metric", REGRESSION)
def test_weighted_regression_metrics(metric: str) -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(50, 10, 200)
    out = Outputs(y, y + rng.normal(0, 2, 200))
    assert weighted_metric("regression", metric, out, np.ones((1, 200)))[0] == pytest.approx(
        compute_metrics("regression", [metric], out)[metric], rel=1e-12)


def test_the_same_outputs_are_a_tie_with_no_noise_and_the_result_is_seeded() -> None:
    out = _classification(["no", "yes"])
    tie = paired_bootstrap("classification", "roc_auc", out, out)
    assert tie.difference == tie.low == tie.high == 0.0 and not tie.worse
    a = _classification(["no", "yes"], seed=1)
    b = Outputs(a.y_true, a.y_pred, np.clip(a.proba + np.random.default_rng(9).normal(0, 0.1, a.proba.shape), 0, 1),
                a.classes)
    first, second = paired_bootstrap("classification", "roc_auc", a, b), paired_bootstrap("classification",
                                                                                         "roc_auc", a, b)
    assert first == second and first.std > 0 and first.low < first.difference < first.high


def test_a_clearly_worse_model_is_worse_beyond_the_noise() -> None:
    rng = np.random.default_rng(4)
    y = rng.choice(["no", "yes"], 500)
    good = np.where(y == "yes", 0.8, 0.2) + rng.normal(0, 0.1, 500)
    bad = rng.random(500)
    as_outputs = [Outputs(y, np.where(p > 0.5, "yes", "no"), np.c_[1 - p, p], ["no", "yes"]) for p in (good, bad)]
    worse = paired_bootstrap("classification", "roc_auc", as_outputs[1], as_outputs[0])
    assert worse.worse and worse.high < 0
    assert not paired_bootstrap("classification", "roc_auc", as_outputs[0], as_outputs[1]).worse


# ---------------------------------------------------------------------- a retrain on newer data


@pytest.fixture
def growing(tmp_path: Path) -> tuple[Project, pd.DataFrame, Path]:
    """A scaffolded credit-scoring project trained on its first 450 rows; 150 newer rows not yet ingested."""
    frame = CORPUS["credit_data:Status"].frame()
    csv = tmp_path / "p" / "data" / "credit.csv"
    csv.parent.mkdir(parents=True)
    frame.iloc[:450].to_csv(csv, index=False)
    init_project(csv, target="Status", id_column="row_id", directory=tmp_path / "p")
    project = Project(tmp_path / "p")
    project.ingest()
    project.build_features()
    project.train()
    assert project.promote().promoted
    return project, frame, csv


def test_a_retrain_on_newer_data_that_is_not_worse_becomes_the_champion(growing) -> None:
    project, frame, csv = growing
    frame.to_csv(csv, index=False)  # the newer rows arrive
    project = Project(project.path)
    project.ingest()
    project.build_features()
    challenger = project.train().version
    result = project.promote(f"{challenger.name}/{challenger.version}")
    rule = next(r for r in result.report.rules if r.rule == "improvement")
    assert result.promoted, rule.detail
    assert "95% bootstrap interval" in rule.detail and "same" in rule.detail
    assert project.model_version("@champion").version == challenger.version
    # the seed-to-seed rule cannot tell: a deterministic model has a spread of exactly 0
    assert project.model_version("@champion").metric_summary("test")["roc_auc"]["std"] == 0.0


def test_a_worse_challenger_is_refused_with_the_interval(growing) -> None:
    project, _frame, _csv = growing
    pipeline = project.path / "pipeline.py"
    pipeline.write_text(pipeline.read_text() + '''

def guess():
    from sklearn.dummy import DummyClassifier
    return Pipeline([("preprocess", model().steps[0][1]), ("estimator", DummyClassifier(strategy="prior"))])
''')
    text = (project.path / "lockstep.toml").read_text().replace('[registry]', '[train.candidates.guess]\n'
                                                                 'model = "pipeline:guess"\n\n[registry]')
    (project.path / "lockstep.toml").write_text(text)
    project = Project(project.path)
    project.build_features()
    champion = project.train(force=True).version  # the same model, by the new code: promoted as the same model
    assert project.promote(f"{champion.name}/{champion.version}").promoted
    worse = project.train(candidate="guess").version
    result = project.promote(f"{worse.name}/{worse.version}")
    rule = next(r for r in result.report.rules if r.rule == "improvement")
    assert not result.promoted and "refused only if the whole interval is below 0" in rule.detail
    assert project.model_version("@champion").version == champion.version
