"""A model's plots: their data computed with scikit-learn, drawn by a helper process with matplotlib alone."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from lockstep.evaluation import render
from lockstep.evaluation.drawing import draw
from lockstep.evaluation.metrics import Outputs
from lockstep.evaluation.plots import plot_data

from .corpus import CORPUS

CLASSIFICATION = {"confusion_matrix", "roc_curve", "precision_recall", "calibration"}
REGRESSION = {"residuals", "predicted_vs_actual"}


def _outputs(task: str, classes: list, rows: int = 300) -> Outputs:
    rng = np.random.default_rng(0)
    if task == "regression":
        y = rng.normal(size=rows)
        return Outputs(y_true=y, y_pred=y + rng.normal(scale=0.3, size=rows))
    y = rng.choice(np.asarray(classes), rows)
    proba = rng.dirichlet(np.ones(len(classes)), rows)
    return Outputs(y_true=y, y_pred=np.asarray(classes)[proba.argmax(axis=1)], proba=proba,
                   classes=classes)


@pytest.mark.parametrize(("task", "classes", "names"), [
    ("classification", ["No", "Yes"], CLASSIFICATION),
    ("classification", [0, 1, 2], CLASSIFICATION),  # three classes: the last is the positive one
    ("classification", [False, True], CLASSIFICATION),
    ("regression", [], REGRESSION),
], ids=["binary-text", "three-classes", "booleans", "regression"])
def test_the_helper_draws_every_plot_as_the_process_itself_would(task: str, classes: list, names: set) -> None:
    data = plot_data(_outputs(task, classes), classes[-1] if classes else None, task)
    rendering = render.start(data, helper=True)
    try:
        assert rendering.process is not None
        images = rendering.images()
        assert rendering.process.returncode == 0  # drawn by the helper, not by the fallback
    finally:
        rendering.close()
    assert set(images) == {f"plots/{name}.png" for name in names}
    assert all(png.startswith(b"\x89PNG") and len(png) > 5000 for png in images.values())
    here = draw(data)
    assert {name: len(png) > 5000 for name, png in here.items()} == {name: True for name in images}


def test_plots_are_drawn_here_when_the_helper_cannot_start_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    data = plot_data(_outputs("classification", ["a", "b"]), "b", "classification")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    rendering = render.start(data, helper=True)
    assert rendering.process is None
    assert set(rendering.images()) == {f"plots/{name}.png" for name in CLASSIFICATION}
    monkeypatch.undo()
    failing = render.Rendering(data, subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"],
                                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    failing.process.stdin.close()  # type: ignore[union-attr]
    assert set(failing.images()) == {f"plots/{name}.png" for name in CLASSIFICATION}
    failing.close()


def test_the_helper_starts_only_with_a_core_to_spare(monkeypatch: pytest.MonkeyPatch) -> None:
    data = plot_data(_outputs("regression", []), None, "regression")
    cores = os.cpu_count() or 1
    monkeypatch.setattr(os, "getloadavg", lambda: (float(cores), 0.0, 0.0))
    busy = render.start(data)
    assert busy.process is None and set(busy.images()) == {f"plots/{name}.png" for name in REGRESSION}
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    quiet = render.start(data)
    try:
        assert quiet.process is not None and set(quiet.images()) == {f"plots/{name}.png" for name in REGRESSION}
    finally:
        quiet.close()


def test_a_helper_that_hangs_is_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    data = plot_data(_outputs("regression", []), None, "regression")
    monkeypatch.setattr(render, "HELPER_SECONDS", 1.0)
    stuck = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    rendering = render.Rendering(data, stuck)
    images = rendering.images()
    assert stuck.returncode is not None and stuck.returncode != 0  # killed, not waited for a minute
    assert set(images) == {f"plots/{name}.png" for name in REGRESSION}
    rendering.close()


def test_the_helper_imports_neither_scikit_learn_nor_pandas() -> None:
    probe = ("import sys\nimport lockstep.evaluation.render\n"
             "print([m for m in ('sklearn', 'pandas', 'pydantic', 'pyarrow', 'scipy') if m in sys.modules])\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("data", [d for d in CORPUS.values() if d.task == "classification"][:3], ids=lambda d: d.key)
def test_plot_data_on_real_labels(data) -> None:
    """Real class labels (text, numbers) as they come from a data set nobody here chose."""
    frame = data.frame()
    y = frame[data.target].dropna().to_numpy()
    classes = sorted(set(y.tolist()), key=str)
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(len(classes)), len(y))
    out = Outputs(y_true=y, y_pred=np.asarray(classes, dtype=object)[proba.argmax(axis=1)], proba=proba,
                  classes=classes)
    plots = plot_data(out, classes[-1], "classification")
    assert set(plots) == CLASSIFICATION
    assert plots["confusion_matrix"]["matrix"].sum() == len(y)
    assert 0.0 <= plots["roc_curve"]["auc"] <= 1.0 and 0.0 <= plots["precision_recall"]["ap"] <= 1.0
    assert set(draw(plots)) == {f"plots/{name}.png" for name in CLASSIFICATION}
