"""Model fingerprints: a model, its saved-and-loaded copy and the same model after predicting are one model."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io as sio
from scipy import sparse
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingRegressor,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from lockstep.core.model_fingerprint import model_fingerprint

CLASSIFICATION = load_breast_cancer(return_X_y=True)
REGRESSION = load_diabetes(return_X_y=True)

MODELS = [
    ("classification", DecisionTreeClassifier(random_state=0)),
    ("classification", RandomForestClassifier(n_estimators=10, n_jobs=2, random_state=0)),
    ("classification", GradientBoostingClassifier(n_estimators=10, random_state=0)),
    ("classification", AdaBoostClassifier(n_estimators=10, random_state=0)),
    ("classification", KNeighborsClassifier(algorithm="kd_tree")),
    ("classification", KNeighborsClassifier(algorithm="ball_tree")),
    ("classification", make_pipeline(StandardScaler(), SVC(probability=True, random_state=0))),
    ("classification", CalibratedClassifierCV(make_pipeline(StandardScaler(), LinearSVC(random_state=0)), cv=3)),
    ("classification", make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))),
    ("regression", DecisionTreeRegressor(max_depth=5, random_state=0)),
    ("regression", ExtraTreesRegressor(n_estimators=10, n_jobs=2, random_state=0)),
    ("regression", BaggingRegressor(n_estimators=5, random_state=0)),
    ("regression", HistGradientBoostingRegressor(max_iter=10, random_state=0)),
    ("regression", KNeighborsRegressor()),
    ("regression", MLPRegressor(hidden_layer_sizes=(8,), max_iter=50, random_state=0)),
    ("regression", IsolationForest(n_estimators=10, random_state=0)),
]


def _fit(task: str, model):
    X, y = CLASSIFICATION if task == "classification" else REGRESSION
    return clone(model).fit(X, y), X


def _round_trip(model):
    data = sio.dumps(model)
    return sio.loads(data, trusted=sio.get_untrusted_types(data=data))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning")
@pytest.mark.parametrize(("task", "model"), MODELS, ids=lambda v: v if isinstance(v, str) else type(v).__name__)
def test_saved_and_loaded_and_used_models_keep_their_fingerprint(task: str, model) -> None:
    fitted, X = _fit(task, model)
    before = model_fingerprint(fitted)
    loaded = _round_trip(fitted)
    assert model_fingerprint(loaded) == before
    # predicting is not learning: query counters and caches do not count
    (fitted.score_samples if hasattr(fitted, "score_samples") and not hasattr(fitted, "predict_proba")
     else fitted.predict)(X[:50])
    loaded.predict(X[:50])
    assert model_fingerprint(fitted) == before == model_fingerprint(loaded)


def test_a_changed_tree_threshold_changes_the_fingerprint() -> None:
    fitted, _ = _fit("classification", DecisionTreeClassifier(random_state=0))
    before = model_fingerprint(fitted)
    state = fitted.tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes["threshold"][0] = np.nextafter(nodes["threshold"][0], np.inf)  # one bit of one learned number
    fitted.tree_.__setstate__({**state, "nodes": nodes})
    assert model_fingerprint(fitted) != before


def test_padding_bytes_of_structured_arrays_do_not_count_but_fields_do() -> None:
    aligned = np.dtype([("a", "<i8"), ("flag", "u1")], align=True)  # 16 bytes, 7 of them padding
    a = np.zeros(3, dtype=aligned)
    raw = a.view(np.uint8).copy()
    raw[9:16] = 0xAB  # garbage in the padding of the first record only
    b = raw.view(aligned)
    assert a.tobytes() != b.tobytes()
    assert model_fingerprint({"nodes": a}) == model_fingerprint({"nodes": b})
    c = a.copy()
    c["flag"][2] = 1
    assert model_fingerprint({"nodes": c}) != model_fingerprint({"nodes": a})


def test_packed_structured_arrays_keep_the_fingerprint_of_their_bytes() -> None:
    """Fingerprints of models registered before padding was dropped (histogram boosting) did not change."""
    packed = np.zeros(2, dtype=[("value", "<f8"), ("is_leaf", "u1")])
    assert packed.dtype.itemsize == 9
    from lockstep.core.model_fingerprint import _packed

    assert _packed(packed).tobytes() == packed.tobytes() and _packed(packed).dtype.str == packed.dtype.str


def test_sparse_matrices_are_hashed_by_content_not_by_cached_flags() -> None:
    dense = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]])
    a = sparse.csr_matrix(dense)
    b = sparse.csr_matrix(dense)
    b.has_sorted_indices  # noqa: B018 - computing the flag caches it on the object
    b.has_canonical_format  # noqa: B018
    assert model_fingerprint({"m": a}) == model_fingerprint({"m": b}) == model_fingerprint({"m": a.tocsc()})
    c = b.copy()
    c[0, 1] = 1.25
    assert model_fingerprint({"m": c}) != model_fingerprint({"m": a})


def test_a_nearest_neighbors_model_on_sparse_one_hot_input_keeps_its_fingerprint() -> None:
    X = np.array([["a"], ["b"], ["a"], ["c"], ["b"], ["a"]], dtype=object)
    y = np.array([1.0, 2.0, 1.5, 3.0, 2.5, 1.0])
    model = make_pipeline(OneHotEncoder(), KNeighborsRegressor(n_neighbors=2)).fit(X, y)
    before = model_fingerprint(model)
    model.predict(X)
    assert model_fingerprint(model) == before == model_fingerprint(_round_trip(model))
