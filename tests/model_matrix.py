"""The estimator matrix: projects on real data whose candidates cover scikit-learn's estimator families.

:func:`matrix_project` scaffolds a project with ``lockstep init`` on a data
set of the corpus, then appends to the scaffolded ``pipeline.py`` one
factory per configuration (a ``Pipeline`` of preprocessing, lockstep's or
scikit-learn's, and the estimator) and one ``[train.candidates.<name>]`` per
configuration to ``lockstep.toml``, as a user would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .corpus import Dataset

__all__ = ["CLASSIFIERS", "REGRESSORS", "Config", "matrix_project"]


@dataclass(frozen=True)
class Config:
    """One estimator configuration: its candidate name, the estimator's code and the preprocessing.

    ``prep`` is ``"lockstep"`` (MissingIndicatorImputer, CategoryMissingFiller,
    one-hot), ``"sklearn"`` (SimpleImputer, one-hot), ``"dense"`` (the same
    with a dense one-hot, for estimators that refuse sparse input) or
    ``"ordinal"`` (categories as ordinal codes, for histogram gradient
    boosting's ``categorical_features``).
    """

    name: str
    estimator: str
    prep: str = "sklearn"


CLASSIFIERS = [
    Config("decision_tree", "DecisionTreeClassifier(max_depth=6, random_state=0)", "lockstep"),
    Config("random_forest_1", "RandomForestClassifier(n_estimators=25, max_depth=8, n_jobs=1, random_state=0)"),
    Config("random_forest_2", "RandomForestClassifier(n_estimators=25, max_depth=8, n_jobs=2, random_state=0)",
           "lockstep"),
    Config("extra_trees_2", "ExtraTreesClassifier(n_estimators=25, max_depth=8, n_jobs=2, random_state=0)"),
    Config("gradient_boosting", "GradientBoostingClassifier(n_estimators=25, max_depth=3, random_state=0)",
           "lockstep"),
    Config("hist_gradient_boosting", "HistGradientBoostingClassifier(max_iter=25, categorical_features=CATEGORIES, "
           "early_stopping=False, random_state=0)", "ordinal"),
    Config("ada_boost", "AdaBoostClassifier(n_estimators=20, random_state=0)"),
    Config("bagging", "BaggingClassifier(n_estimators=10, n_jobs=2, random_state=0)", "lockstep"),
    Config("k_neighbors", "KNeighborsClassifier(n_neighbors=7)", "lockstep"),
    Config("svc", "SVC(probability=True, random_state=0)"),
    Config("calibrated_linear_svc", "CalibratedClassifierCV(LinearSVC(random_state=0), cv=3)"),
    Config("linear_svc", "LinearSVC(random_state=0)", "lockstep"),
    Config("logistic_regression", "LogisticRegression(max_iter=2000)", "lockstep"),
    Config("sgd", "SGDClassifier(loss='log_loss', random_state=0)"),
    Config("gaussian_nb", "GaussianNB()", "dense"),
    Config("mlp", "MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0)", "lockstep"),
    Config("stacking", "StackingClassifier([('lr', LogisticRegression(max_iter=2000)), "
           "('tree', DecisionTreeClassifier(max_depth=4, random_state=0))], cv=3)"),
    Config("voting", "VotingClassifier([('lr', LogisticRegression(max_iter=2000)), "
           "('forest', RandomForestClassifier(n_estimators=10, n_jobs=2, random_state=0))], voting='soft')",
           "lockstep"),
]

REGRESSORS = [
    Config("decision_tree", "DecisionTreeRegressor(max_depth=6, random_state=0)", "lockstep"),
    Config("random_forest_2", "RandomForestRegressor(n_estimators=25, max_depth=8, n_jobs=2, random_state=0)"),
    Config("extra_trees_2", "ExtraTreesRegressor(n_estimators=25, max_depth=8, n_jobs=2, random_state=0)",
           "lockstep"),
    Config("gradient_boosting", "GradientBoostingRegressor(n_estimators=25, random_state=0)"),
    Config("hist_gradient_boosting", "HistGradientBoostingRegressor(max_iter=25, categorical_features=CATEGORIES, "
           "early_stopping=False, random_state=0)", "ordinal"),
    Config("ada_boost", "AdaBoostRegressor(n_estimators=20, random_state=0)", "lockstep"),
    Config("bagging", "BaggingRegressor(n_estimators=10, random_state=0)"),
    Config("k_neighbors", "KNeighborsRegressor(n_neighbors=7)"),
    Config("svr", "SVR(C=1000.0)", "lockstep"),
    Config("ridge", "Ridge(alpha=1.0)"),
    Config("lasso", "Lasso(alpha=1.0)", "lockstep"),
    Config("elastic_net", "ElasticNet(alpha=0.1)"),
    Config("sgd", "SGDRegressor(random_state=0)", "lockstep"),
    Config("mlp", "MLPRegressor(hidden_layer_sizes=(16,), max_iter=500, random_state=0)"),
    Config("stacking", "StackingRegressor([('ridge', Ridge()), ('tree', DecisionTreeRegressor(max_depth=4, "
           "random_state=0))], cv=3)", "lockstep"),
    Config("voting", "VotingRegressor([('ridge', Ridge()), ('forest', RandomForestRegressor(n_estimators=10, "
           "n_jobs=2, random_state=0))])"),
    Config("transformed_target", "TransformedTargetRegressor(Ridge(), func=np.log, inverse_func=np.exp)"),
]

_IMPORTS = """

# ---- the estimator matrix (appended by lockstep's tests) ----
import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.impute import SimpleImputer
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (AdaBoostClassifier, AdaBoostRegressor, BaggingClassifier, BaggingRegressor,
                              ExtraTreesClassifier, ExtraTreesRegressor, GradientBoostingClassifier,
                              GradientBoostingRegressor, HistGradientBoostingClassifier,
                              HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor,
                              StackingClassifier, StackingRegressor, VotingClassifier, VotingRegressor)
from sklearn.linear_model import ElasticNet, Lasso, SGDClassifier, SGDRegressor
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC, SVR, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from lockstep.features.transformers import CategoryMissingFiller, MissingIndicatorImputer

CATEGORIES = list(range(len(NUMERIC), len(NUMERIC) + len(CATEGORICAL)))


def _preprocess(kind):
    if kind == "lockstep":
        numeric = make_pipeline(MissingIndicatorImputer(strategy="median"), StandardScaler())
        categorical = make_pipeline(CategoryMissingFiller(), OneHotEncoder(handle_unknown="ignore"))
    elif kind == "ordinal":
        numeric = "passthrough"
        categorical = make_pipeline(CategoryMissingFiller(), OrdinalEncoder(handle_unknown="use_encoded_value",
                                                                            unknown_value=-1))
    else:
        numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        categorical = make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                    OneHotEncoder(handle_unknown="ignore", sparse_output=kind != "dense"))
    return ColumnTransformer([("numeric", numeric, NUMERIC), ("categorical", categorical, CATEGORICAL)])
"""


def _factory(config: Config) -> str:
    return (f"\n\ndef {config.name}():\n"
            f"    return Pipeline([(\"preprocess\", _preprocess({config.prep!r})),\n"
            f"                     (\"estimator\", {config.estimator})])\n")


def matrix_project(directory: Path, data: Dataset, configs: list[Config], *, primary_metric: str | None = None) -> Path:
    """Scaffold a project on ``data`` whose candidates are ``configs``; return its folder."""
    from lockstep.scaffold import init_project

    csv = data.write_csv(directory / "data" / "raw.csv")
    init_project(csv, target=data.target, id_column="row_id", directory=directory, name=directory.name)
    pipeline = directory / "pipeline.py"
    pipeline.write_text(pipeline.read_text() + _IMPORTS + "".join(_factory(c) for c in configs))
    text = (directory / "lockstep.toml").read_text()
    # the scaffolded [train] trains the first configuration; every configuration is a candidate
    text = text.replace('model = "pipeline:model"', f'model = "pipeline:{configs[0].name}"', 1)
    if primary_metric:
        text = re.sub(r'primary_metric = "[a-z_]+"', f'primary_metric = "{primary_metric}"', text)
    candidates = "".join(f'\n[train.candidates.{c.name}]\nmodel = "pipeline:{c.name}"\n' for c in configs)
    (directory / "lockstep.toml").write_text(text + candidates)
    return directory


# ---------------------------------------------------------------------- what each configuration must pass

#: Configurations whose ONNX export must reach parity; every other one must be refused with exit 2, naming
#: the step. The list is what skl2onnx 1.20 with onnxruntime 1.32 converts: a change in either shows here.
EXPORTS_TO_ONNX = {
    "classification": {"decision_tree", "random_forest_1", "random_forest_2", "extra_trees_2", "gradient_boosting",
                       "ada_boost", "bagging", "k_neighbors", "svc", "calibrated_linear_svc", "linear_svc",
                       "logistic_regression", "sgd", "gaussian_nb", "mlp", "stacking", "voting",
                       "hist_gradient_boosting"},
    "regression": {"decision_tree", "random_forest_2", "extra_trees_2", "gradient_boosting", "ada_boost", "bagging",
                   "k_neighbors", "svr", "ridge", "lasso", "elastic_net", "sgd", "mlp", "stacking", "voting",
                   "hist_gradient_boosting"},
}


#: Configurations whose parity also runs the paths through other processes (``lockstep predict`` and ``lockstep
#: serve`` over HTTP), one of each kind of output: probabilities and none (linear SVC), native categories
#: (histogram boosting), a meta-estimator (stacking), two threads (random forest), a transformed target. Those
#: paths load the model as the registry path does (checked for every configuration, and every version is
#: loaded to its fingerprint in a fresh process by ``fresh_process_fingerprints``); what they add is the process
#: boundary and JSON, which depend on the kind of output, not on the family. Each costs two interpreters
#: (about 9 s), so running them for all 35 configurations took 5 minutes of the suite.
THROUGH_PROCESSES = {
    "classification": {"random_forest_2", "hist_gradient_boosting", "linear_svc", "stacking"},
    "regression": {"hist_gradient_boosting", "stacking", "transformed_target"},
}


def prediction_bits(path: Path) -> dict:
    """The prediction columns of a ``lockstep predict`` output, as raw bytes (the run id differs by run)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    out = {}
    for name in table.column_names:
        if name == "run_id":
            continue
        column = table.column(name)
        if column.type == "double":
            out[name] = column.to_numpy().tobytes()
        else:
            out[name] = column.to_pylist()
    return out


def check_configuration(project, config: Config, task: str, tmp_path: Path) -> str:
    """Train, register, predict twice, export, parity, verify one configuration; return its reference."""
    from typer.testing import CliRunner

    from lockstep.cli import app
    from lockstep.core.model_fingerprint import model_fingerprint

    version = project.train(candidate=config.name).version
    ref = f"{version.name}/{version.version}"
    assert version.tags["lockstep.candidate"] == config.name

    # the loaded model is the registered one: same fingerprint as the model fitted in the training process
    loaded = project.load_model(ref)
    assert model_fingerprint(loaded.model) == version.fingerprint

    # batch predictions, twice: the same bits
    raw = project.path / "data" / "raw.csv"
    runs = []
    for i in range(2):
        result = project.predict(str(tmp_path / f"{config.name}-{i}.parquet"), input=raw, model=ref)
        assert result.rows > 0
        runs.append(prediction_bits(tmp_path / f"{config.name}-{i}.parquet"))
    assert runs[0] == runs[1]
    probabilities = [c for c in runs[0] if c.startswith("proba_")]
    has_proba = hasattr(loaded.model[-1][-1], "predict_proba")
    assert bool(probabilities) == (task == "classification" and has_proba)

    # ONNX: parity, or a refusal that names the step (exit 2), never an internal error
    done = CliRunner().invoke(app, ["export", "onnx", ref, "--project", str(project.path), "--json"])
    exported = config.name in EXPORTS_TO_ONNX[task]
    if exported:
        assert done.exit_code == 0, done.output
        import json

        parity = json.loads(done.stdout)["parity"]
        assert parity["passed"] and parity["label_mismatches"] == 0
    else:
        assert done.exit_code == 2, done.output
        assert "cannot be exported to ONNX" in done.stderr and "(step 'estimator'" in done.stderr, done.stderr

    # every prediction path: identical bits (and the exported ONNX model within its tolerance)
    processes = config.name in THROUGH_PROCESSES[task]
    report = project.parity(ref, http=processes, batch=processes)
    statuses = {p.name: p.status for p in report.paths}
    assert report.identical, [p.to_dict() for p in report.paths if p.status == "FAIL"]
    for path in ("in-process", "training-run", "registry", *(["predict", "http"] if processes else []),
                 *(["onnx"] if exported else [])):
        assert statuses[path] == "PASS", (path, statuses)

    # rebuilt from its lineage: the same model and test predictions
    verified = project.verify(ref)
    assert verified.reproduced, verified.cause
    assert verified.stage("model").status == "PASS" and verified.stage("predictions").status == "PASS"
    return ref


FRESH_PROCESS = """
import json, sys
from lockstep import Project
from lockstep.core.model_fingerprint import model_fingerprint
project = Project(sys.argv[1])
out = {}
for info in project.model_versions():
    model = project.load_model(f"{info.name}/{info.version}").model
    out[str(info.version)] = [model_fingerprint(model), info.fingerprint]
print(json.dumps(out))
"""


def fresh_process_fingerprints(project) -> dict:
    """Every registered version loaded in a new Python process: its fingerprint there, and the recorded one."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(project.path)], capture_output=True, text=True,
                          timeout=600, cwd="/")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
