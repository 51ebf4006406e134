"""Hyperparameter search on cross-validation folds of the training split, seeded.

The folds come from ``StratifiedKFold`` (classification) or ``KFold``
(regression) with ``shuffle=True`` and the run's primary seed; a random
search samples its candidates with the same seed. Candidates are scored
with the primary metric, computed exactly as the evaluation computes it.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from scipy import stats
from sklearn.model_selection import GridSearchCV, KFold, RandomizedSearchCV, StratifiedKFold

from lockstep.core.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.sections import SearchConfig

__all__ = ["build_search", "check_space", "search_space"]


def check_space(pipeline: Any, space: dict[str, Any], where: str) -> None:
    """Every name in ``space`` must be a parameter of ``pipeline`` (``step__param``)."""
    known = sorted(pipeline.get_params(deep=True))
    problems = []
    for name in space:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
            problems.append(f"'{name}'" + (f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""))
    if problems:
        steps = [k for k in known if "__" not in k]
        raise ConfigError(f"{where}: the search space names parameter(s) the model pipeline does not have: "
                          f"{', '.join(problems)}",
                          hint=f"use step__param names of the pipeline; its steps are {', '.join(steps)}")


def search_space(space: dict[str, Any]) -> dict[str, Any]:
    """TOML values to what scikit-learn's searches take: lists stay lists, distributions become scipy ones."""
    out = {}
    for name, value in space.items():
        if isinstance(value, list):
            out[name] = list(value)
        elif value.dist == "uniform":
            out[name] = stats.uniform(value.low, value.high - value.low)
        elif value.dist == "loguniform":
            out[name] = stats.loguniform(value.low, value.high)
        else:
            out[name] = stats.randint(int(value.low), int(value.high))
    return out


def build_search(pipeline: Any, search: SearchConfig, scorer: Any, seed: int, n_jobs: int, task: str) -> Any:
    """A ``GridSearchCV`` or ``RandomizedSearchCV`` that only scores (the final fits are done per seed)."""
    splitter_cls = StratifiedKFold if task == "classification" else KFold
    cv = splitter_cls(n_splits=search.cv, shuffle=True, random_state=seed)
    space = search_space(search.space)
    common = dict(scoring=scorer, cv=cv, n_jobs=n_jobs, refit=False, error_score="raise")
    if search.kind == "grid":
        return GridSearchCV(pipeline, param_grid=space, **common)
    return RandomizedSearchCV(pipeline, param_distributions=space, n_iter=search.n_iter, random_state=seed, **common)
