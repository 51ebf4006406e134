"""Building a model the same way everywhere: training fits it, ``verify`` refits it with these same functions.

A model version is the feature pipeline, fitted on the raw training rows,
followed by the estimator, fitted on the training split's features with
every ``random_state`` set to the seed, under the recorded thread count
(:func:`fit_seed`, :func:`assemble_pipeline`). ``verify`` proves a version
only if it rebuilds it with this code; a second copy could drift.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import is_classifier, is_regressor
from sklearn.pipeline import Pipeline

from lockstep.compute import Compute, lost_worker
from lockstep.core.config import Config
from lockstep.core.errors import PipelineError
from lockstep.core.prediction import final_estimator, has_probabilities, model_outputs
from lockstep.core.sections import SearchConfig
from lockstep.core.usercode import user_code_failure
from lockstep.evaluation.metrics import Outputs, make_scorer
from lockstep.features.pipeline import make_transformer
from lockstep.training.determinism import deterministic, seed_estimator
from lockstep.training.search import build_search

__all__ = ["SeedResult", "assemble_pipeline", "call_factory", "check_model", "check_primary_metric", "evaluate_outputs",
           "fit_model", "fit_seed", "search_best_params"]


@dataclass
class SeedResult:
    """One seed's fitted model and its evaluation."""

    seed: int
    model: Any
    fingerprint: str
    metrics: dict[str, dict[str, float]]
    outputs: dict[str, Outputs]
    record: dict[str, Any]



def check_model(model: Any, task: str, ref: str) -> None:
    """``model`` must be a scikit-learn Pipeline whose last step is an estimator of the task."""
    if not isinstance(model, Pipeline):
        raise PipelineError(f"{ref!r} returned a {type(model).__name__}, not a scikit-learn Pipeline",
                            hint="return Pipeline([...preprocessing..., ('estimator', SomeEstimator())])")
    last = model.steps[-1][1]
    wanted = is_classifier if task == "classification" else is_regressor
    if last is None or last == "passthrough" or not wanted(last):
        kind = "classifier" if task == "classification" else "regressor"
        raise PipelineError(f"{ref!r}: the pipeline's last step is {type(last).__name__}, not a {kind}, but the "
                            f"task is {task}",
                            hint=f"end the pipeline with a {kind}, or fix [data] task")


#: Metrics computed from class probabilities.
PROBABILITY_METRICS = ("roc_auc", "log_loss", "brier_score")


def check_primary_metric(model: Any, metric: str, ref: str) -> None:
    """A primary metric computed from probabilities needs a classifier that gives them."""
    if metric in PROBABILITY_METRICS and not has_probabilities(model):
        name = type(final_estimator(model)).__name__
        raise PipelineError(f"{ref!r}: the primary metric {metric} needs class probabilities, and {name} has no "
                            "predict_proba",
                            hint="set [train] primary_metric to accuracy, balanced_accuracy or f1, or wrap the "
                            "estimator in CalibratedClassifierCV")


def evaluate_outputs(model: Any, X: pd.DataFrame, y: np.ndarray, task: str) -> Outputs:
    """The model's outputs on ``X`` (computed as every prediction path computes them) with the truth ``y``."""
    labels, proba = model_outputs(model, X, task)
    classes = list(model.classes_) if task == "classification" else None
    return Outputs(y_true=y, y_pred=labels, proba=proba, classes=classes)


def call_factory(factory: Any, ref: str) -> Any:
    try:
        return factory()
    except Exception as exc:
        raise user_code_failure(PipelineError, f"calling {ref!r} failed", exc) from exc


def fit_model(factory: Any, model_ref: str, best_params: dict[str, Any], seed: int, X_train, y_train,
              record: dict[str, Any] | None = None) -> Any:
    """A new model from ``factory`` with ``best_params``, every ``random_state`` set to ``seed``, fitted.

    Call it inside :func:`~lockstep.training.determinism.deterministic`; the
    names of the seeded parameters go to ``record``.
    """
    model = call_factory(factory, model_ref)
    model.set_params(**best_params)
    seeded = seed_estimator(model, seed)
    if record is not None:
        record["seeded_parameters"] = seeded
    try:
        model.fit(X_train, y_train)
    except Exception as exc:
        raise user_code_failure(PipelineError, f"fitting {model_ref!r} failed", exc) from exc
    return model


def search_best_params(config: Config, factory: Any, search: SearchConfig, X_train, y_train, *,
                       threads: int | None = None, compute: Compute | None = None) -> tuple[dict, Any]:
    """Run the configured search on CV folds of the training rows; the best parameters and the searcher.

    ``threads`` overrides ``[train] threads``. With a distributed ``compute``, every candidate and fold is
    fitted on the Dask workers (scikit-learn's joblib integration); the scores, and so the best parameters,
    are those of a local search.
    """
    train_cfg, task = config.training, config.data.task
    seed = train_cfg.seeds[0]
    on_dask = compute is not None and compute.distributed

    def run() -> Any:
        with deterministic(seed, threads if threads is not None else train_cfg.threads):
            estimator = factory()
            seed_estimator(estimator, seed)
            searcher = build_search(estimator, search, make_scorer(task, config.primary_metric,
                                                                   train_cfg.positive_class),
                                    seed, -1 if on_dask else train_cfg.n_jobs, task)
            shared: list[Any] = []
            if on_dask:
                # The folds, made here as the search would make them, are sent with the rows to every worker
                # once: what joblib sends itself lives on one worker only, and is lost with it.
                folds = list(searcher.cv.split(X_train, y_train))
                searcher.set_params(cv=folds)
                shared = [X_train, y_train, *(indices for fold in folds for indices in fold)]
            with (joblib.parallel_config(backend="dask", scatter=shared) if on_dask else contextlib.nullcontext()):
                try:
                    searcher.fit(X_train, y_train)
                except Exception as exc:
                    if on_dask and lost_worker(exc):
                        raise  # run again whole (Compute.retrying): not the user's doing
                    raise user_code_failure(PipelineError, "the search failed", exc) from exc
        return searcher

    searcher = compute.retrying(run, "the search") if compute is not None else run()
    # Plain Python values (a NumPy integer drawn from a distribution would not survive JSON as a number).
    best = {name: value.item() if hasattr(value, "item") else value for name, value in searcher.best_params_.items()}
    return best, searcher


def fit_seed(factory: Any, model_ref: str, best_params: dict[str, Any], seed: int, threads: int, X: pd.DataFrame,
             y: np.ndarray, masks: dict[str, np.ndarray], task: str, evaluate: tuple[str, ...] = ("valid", "test"),
             ) -> tuple[Any, dict[str, Outputs], dict[str, Any]]:
    """Fit one seed's model on the training split and evaluate it, under ``deterministic(seed, threads)``.

    Returns
    -------
    model, outputs, record
        The fitted estimator; its outputs on each split of ``evaluate`` that has rows; what
        :func:`~lockstep.training.determinism.deterministic` recorded (threads, seeded parameters).
    """
    with deterministic(seed, threads) as record:
        model = fit_model(factory, model_ref, best_params, seed, X[masks["train"]], y[masks["train"]], record)
        outputs = {name: evaluate_outputs(model, X[masks[name]], y[masks[name]], task)
                   for name in evaluate if masks[name].any()}
    return model, outputs, record


def assemble_pipeline(feature_factory: Any, feature_ref: str | None, raw_train: pd.DataFrame, model: Any) -> Pipeline:
    """The registered pipeline: the feature pipeline fitted on the raw training rows, then the fitted ``model``."""
    feature_pipe = make_transformer(feature_factory, feature_ref or "(identity)").fit(raw_train)
    return Pipeline([("features", feature_pipe), ("model", model)])
