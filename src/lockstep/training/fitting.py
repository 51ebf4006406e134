"""The work of ``lockstep train`` once it is known to be needed: the model code imported and checked, the splits,
the search, the seeds' fits and their evaluation (:mod:`lockstep.training.train` decides and registers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lockstep.compute import Compute
from lockstep.core.errors import PipelineError
from lockstep.core.model_fingerprint import model_fingerprint
from lockstep.core.usercode import load_object
from lockstep.evaluation.metrics import compute_metrics
from lockstep.training.assembly import (
    SeedResult,
    call_factory,
    check_model,
    check_primary_metric,
    fit_model,
    fit_seed,
    search_best_params,
)
from lockstep.training.determinism import deterministic
from lockstep.training.search import check_space

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.core.sections import SearchConfig
    from lockstep.store import FeatureInfo

__all__ = ["checked_factory", "fit_and_evaluate", "split"]

Progress = Callable[[str], None]


def checked_factory(config: Config, model_ref: str, search: SearchConfig | None, candidate: str | None) -> Any:
    """The model's factory, imported, with what it makes checked: an estimator of the task, the primary metric
    computable from it, the search space's parameters its own."""
    factory = load_object(model_ref, config.project_dir)
    check_model(call_factory(factory, model_ref), config.data.task, model_ref)
    check_primary_metric(call_factory(factory, model_ref), config.primary_metric, model_ref)
    if search is not None:
        where = f"[train.candidates.{candidate}.search]" if candidate else "[train.search]"
        check_space(call_factory(factory, model_ref), search.space, f"{config.config_path.name} {where}")
    return factory


def split(frame: pd.DataFrame, feature: FeatureInfo, task: str,
          ) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray]]:
    """Features, labels and a mask per split; refused without train or test rows, or with one class to learn."""
    splits = frame["split"].to_numpy()
    X, y = frame[feature.columns], frame[feature.label_column].to_numpy()
    masks = {name: splits == name for name in ("train", "valid", "test")}
    for name in ("train", "test"):
        if not masks[name].any():
            raise PipelineError(f"feature set version {feature.version} has no {name} rows",
                                hint="check [split] fractions")
    if task == "classification" and len(set(y[masks["train"]])) < 2:
        raise PipelineError("the training split has a single class; nothing to learn")
    return X, y, masks


def fit_and_evaluate(config: Config, factory: Any, model_ref: str, search: SearchConfig | None, X, y, masks,
                     step: Progress, compute: Compute) -> dict[str, Any]:
    """Search (when configured), fit every seed (here or on Dask's workers), evaluate each on valid and test, and
    refit once with another thread count when ``[train] thread_check`` asks."""
    train_cfg = config.training
    task, seeds = config.data.task, train_cfg.seeds
    positive = train_cfg.positive_class
    X_train, y_train = X[masks["train"]], y[masks["train"]]
    best_params: dict[str, Any] = {}
    search_table = None
    if search is not None:
        step(f"searching {search.kind} on {search.cv} folds")
        best_params, searcher = search_best_params(config, factory, search, X_train, y_train, compute=compute)
        search_table = pd.DataFrame(searcher.cv_results_)
        search_table = search_table.drop(columns=[c for c in search_table.columns if c == "params"])

    per_seed: list[SeedResult] = []
    if compute.distributed:  # every seed's fit on a worker at once; results in the order of the seeds
        step(f"fitting {len(seeds)} seed(s) on {compute.workers} Dask worker(s)")
        client = compute.client

        def fit_all() -> list:
            data = client.scatter([X, y, masks], broadcast=True)  # a copy on every worker: none is lost with one
            return client.gather([client.submit(fit_seed, factory, model_ref, best_params, seed, train_cfg.threads,
                                                *data, task, pure=False) for seed in seeds])

        fitted = compute.retrying(fit_all, "fitting the seeds")
    else:
        fitted = []
        for seed in seeds:
            step(f"fitting seed {seed} ({len(fitted) + 1} of {len(seeds)})")
            fitted.append(fit_seed(factory, model_ref, best_params, seed, train_cfg.threads, X, y, masks, task))
    for seed, (model, outputs, record) in zip(seeds, fitted):
        metrics = {name: compute_metrics(task, config.metrics, out, positive) for name, out in outputs.items()}
        per_seed.append(SeedResult(seed, model, model_fingerprint(model), metrics, outputs, record))

    thread_invariant = None
    if train_cfg.thread_check:
        other = 2 if train_cfg.threads == 1 else 1
        step(f"refitting with {other} thread(s) to check thread invariance")
        with deterministic(seeds[0], other):
            model = fit_model(factory, model_ref, best_params, seeds[0], X_train, y_train)
        thread_invariant = model_fingerprint(model) == per_seed[0].fingerprint
    return {"per_seed": per_seed, "best_params": best_params, "search_table": search_table,
            "thread_invariant": thread_invariant, "compute": compute.record()}
