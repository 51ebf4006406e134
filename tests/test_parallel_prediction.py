"""Parallel prediction does not change bits: a forest with n_jobs=2 gives the same outputs on every path, every time."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import clone
from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier
from sklearn.svm import LinearSVC
from typer.testing import CliRunner

from lockstep import Project
from lockstep.cli import app
from lockstep.core.prediction import has_probabilities, model_outputs

from .corpus import CORPUS
from .model_matrix import Config, matrix_project, prediction_bits
from .serving import Server

pytestmark = [pytest.mark.slow, pytest.mark.service]

ROWS = 120_000


def _bits(array) -> bytes:
    return np.ascontiguousarray(array, dtype=np.float64).tobytes()


def test_a_parallel_forest_gives_the_bits_of_one_thread_every_time() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(ROWS, 12))
    y = (X[:, 0] + rng.normal(size=ROWS) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=40, max_depth=8, n_jobs=2, random_state=0).fit(X[:4000], y[:4000])
    serial = clone(forest).set_params(n_jobs=1).fit(X[:4000], y[:4000])
    expected = _bits(serial.predict_proba(X))
    runs = [model_outputs(forest, X, "classification") for _ in range(3)]
    assert all(_bits(proba) == expected for _, proba in runs)
    assert forest.n_jobs == 2  # the model itself is not changed
    # each thread of a service sets the sequential backend for itself
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = list(pool.map(lambda _: model_outputs(forest, X[:20_000], "classification")[1], range(4)))
    assert all(_bits(p) == _bits(serial.predict_proba(X[:20_000])) for p in threaded)


def test_a_parallel_regressor_sums_its_trees_in_one_order() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(ROWS, 8))
    y = X[:, 0] * 3 + rng.normal(size=ROWS)
    trees = ExtraTreesRegressor(n_estimators=30, max_depth=10, n_jobs=2, random_state=0).fit(X[:3000], y[:3000])
    serial = clone(trees).set_params(n_jobs=1).fit(X[:3000], y[:3000])
    expected = _bits(serial.predict(X))
    assert all(_bits(model_outputs(trees, X, "regression")[0]) == expected for _ in range(3))


def test_a_classifier_without_probabilities_gives_labels_only() -> None:
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LinearSVC(random_state=0).fit(X, [0, 0, 1, 1])
    labels, proba = model_outputs(model, X, "classification")
    assert proba is None and labels.tolist() == [0, 0, 1, 1] and not has_probabilities(model)


# ---------------------------------------------------------------------- a user's forest, end to end

FOREST = Config("forest", "RandomForestClassifier(n_estimators=60, max_depth=10, n_jobs=2, random_state=0)")


@pytest.fixture(scope="module")
def forest_project(tmp_path_factory) -> tuple[Project, str, Path]:
    """Telecom churn data (not an example of this repository) and a random forest with n_jobs=2, trained and
    registered; a batch of 120,000 rows to predict (the data repeated, with new ids)."""
    folder = tmp_path_factory.mktemp("forest") / "churn"
    data = CORPUS["mlc_churn:churn"]
    matrix_project(folder, data, [FOREST])
    project = Project(folder)
    project.ingest()
    project.build_features()
    version = project.train(candidate="forest").version
    raw = pd.read_csv(folder / "data" / "raw.csv")
    batch = pd.concat([raw] * (ROWS // len(raw) + 1), ignore_index=True).iloc[:ROWS].drop(columns=[data.target])
    batch["row_id"] = np.arange(1, len(batch) + 1)
    path = folder / "batch.csv"
    batch.to_csv(path, index=False)
    return project, f"{version.name}/{version.version}", path


def test_batch_predictions_of_a_parallel_forest_are_identical_three_times(forest_project, tmp_path: Path) -> None:
    project, ref, batch = forest_project
    runs = []
    for i in range(3):
        out = tmp_path / f"run{i}.parquet"
        code = CliRunner().invoke(app, ["predict", "--project", str(project.path), "--model", ref, "--input",
                                        str(batch), "--output", str(out), "--json"]).exit_code
        assert code == 0
        runs.append(prediction_bits(out))
    assert len(runs[0]["prediction"]) == ROWS
    assert runs[0] == runs[1] == runs[2]
    # and they are the bits of the same forest run on one thread
    loaded = project.load_model(ref)
    serial = loaded.model.set_params(model__estimator__n_jobs=1)
    raw = pa.Table.from_pandas(pd.read_csv(batch).iloc[:5000], preserve_index=False)
    expected = serial.predict_proba(loaded.schema.frame(raw))
    got = np.column_stack([np.frombuffer(runs[0][f"proba_{c}"], dtype=np.float64)[:5000] for c in ("no", "yes")])
    assert _bits(got) == _bits(expected)


def test_the_service_and_parity_give_the_batch_bits(forest_project, tmp_path: Path) -> None:
    project, ref, batch = forest_project
    rows = pd.read_csv(batch).iloc[:2000]
    records = json.loads(rows.drop(columns=["row_id"]).to_json(orient="records"))
    out = tmp_path / "batch.parquet"
    rows.to_csv(tmp_path / "rows.csv", index=False)
    project.predict(str(out), input=tmp_path / "rows.csv", model=ref)
    expected = prediction_bits(out)
    with Server(project.path, "--model", ref, "--no-audit", "--max-batch", "5000",
                "--max-body-bytes", "20000000") as server:
        answers = []
        for _ in range(3):
            request = urllib.request.Request(server.url + "/predict", data=json.dumps(records).encode(),
                                             headers={"content-type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                answer = json.loads(response.read())
                answers.append({k: answer[k] for k in ("predictions", "probabilities", "model")})
    assert answers[0] == answers[1] == answers[2]
    served = np.array([p["yes"] for p in answers[0]["probabilities"]], dtype=np.float64)
    assert _bits(served) == expected["proba_yes"] and answers[0]["predictions"] == expected["prediction"]
    report = project.parity(ref)
    assert report.identical and all(p.status == "PASS" for p in report.paths if p.name != "onnx")
    assert project.verify(ref).reproduced


class ThreadCounts:
    """A "model" whose every output is the number of BLAS and of OpenMP threads it runs with (as 10 * BLAS +
    OpenMP): it shows what a prediction path sets, on any machine."""

    def predict(self, X):
        from threadpoolctl import threadpool_info

        counts = {info["user_api"]: info["num_threads"] for info in threadpool_info()}
        return np.full(len(X), 10.0 * counts["blas"] + counts["openmp"])


def test_every_prediction_runs_on_one_blas_and_one_openmp_thread(monkeypatch) -> None:
    """The bits of a matrix product over several BLAS threads, or of k nearest neighbours' OpenMP chunks, can depend
    on the thread count (below); model_outputs holds both to one thread, whatever the process was set to (the
    machine's cores, a Dask worker's limits, [train] threads), and puts the settings back afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from lockstep.core import prediction

    X = np.zeros((5, 2))
    for outer in (1, 2):
        with threadpool_limits(outer):
            outputs, _ = prediction.model_outputs(ThreadCounts(), X, "regression")
            assert set(outputs) == {11.0}
            assert {info["num_threads"] for info in threadpool_info()
                    if info["user_api"] in ("blas", "openmp")} == {outer}
    monkeypatch.setattr(prediction._ONE_THREAD, "enter", lambda: None)  # the premise: without the limit
    monkeypatch.setattr(prediction._ONE_THREAD, "leave", lambda: None)
    with threadpool_limits(2):
        assert set(prediction.model_outputs(ThreadCounts(), X, "regression")[0]) == {22.0}


def test_outputs_do_not_depend_on_the_blas_threads() -> None:
    """A matrix-vector product over 2 BLAS threads gave some rows other last bits than over 1 on the machines of
    earlier sessions (the rows at the edges of the threads' shares; OpenBLAS's kernels depend on the CPU)."""
    from sklearn.linear_model import Ridge
    from threadpoolctl import threadpool_limits

    from lockstep.core import prediction

    rng = np.random.default_rng(0)
    X = rng.normal(size=(10_001, 60))
    model = Ridge().fit(X, X @ rng.normal(size=60) + rng.normal(size=10_001))
    with threadpool_limits(1):
        one, _ = prediction.model_outputs(model, X, "regression")
    with threadpool_limits(2):
        two, _ = prediction.model_outputs(model, X, "regression")
    assert _bits(one) == _bits(two)


def test_outputs_do_not_depend_on_the_openmp_threads() -> None:
    """k nearest neighbours cut a small batch into chunks by the number of OpenMP threads; a distance computed in
    another chunk can differ in its last bit and pick another neighbour among ties (wages, CPS 1985: without the
    limit, 8 to 18 of 84 test rows did on 2 threads against 1 here)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from threadpoolctl import threadpool_limits

    from lockstep.core import prediction

    from .corpus import INIT_CORPUS

    frame = INIT_CORPUS["cps1985"].frame().drop(columns="row_id")
    y = frame.pop("wage").to_numpy()
    numbers = [c for c in frame if frame[c].dtype.kind in "if"]
    text = [c for c in frame if c not in numbers]
    model = Pipeline([("preprocess", ColumnTransformer([("numbers", StandardScaler(), numbers),
                                                        ("text", OneHotEncoder(handle_unknown="ignore"), text)])),
                      ("estimator", KNeighborsRegressor(15, weights="distance"))])
    order = np.random.default_rng(0).permutation(len(frame))
    model.fit(frame.iloc[order[:450]], y[order[:450]])
    test = frame.iloc[order[450:]]
    with threadpool_limits(1):
        one, _ = prediction.model_outputs(model, test, "regression")
    with threadpool_limits(2):
        two, _ = prediction.model_outputs(model, test, "regression")
    assert _bits(one) == _bits(two)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_histogram_boosting_keeps_its_cores_in_row_blocks_with_the_bits_of_one_call(monkeypatch, task) -> None:
    """Held to one OpenMP thread, histogram gradient boosting would predict a large input on one core; its rows
    are predicted on their own, so lockstep splits them into as many blocks as the process allows threads, and the
    outputs are those of one call on one thread (a categorical feature and missing values included)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    from lockstep.core import prediction

    rng = np.random.default_rng(0)
    n = 60_000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
                      "c": pd.Categorical(rng.choice(["x", "y", "z"], size=n))})
    target = X["a"] + (X["c"] == "x") + rng.normal(size=n)
    if task == "classification":
        model = HistGradientBoostingClassifier(max_iter=30, categorical_features="from_dtype", random_state=0)
        model.fit(X, np.where(target > 0.5, "yes", "no"))
    else:
        model = HistGradientBoostingRegressor(max_iter=30, categorical_features="from_dtype", random_state=0)
        model.fit(X, target)
    with threadpool_limits(1):
        labels = model.predict(X)
        proba = model.predict_proba(X) if task == "classification" else None
    blocks = []
    split = prediction._row_block_outputs
    monkeypatch.setattr(prediction, "_row_block_outputs", lambda *a: blocks.append(a[-1]) or split(*a))
    with threadpool_limits(2):
        got_labels, got_proba = model_outputs(model, X, task)
    assert blocks == [2]
    if task == "classification":
        assert list(got_labels) == list(labels) and _bits(got_proba) == _bits(proba)
    else:
        assert _bits(got_labels) == _bits(labels) and got_proba is None
