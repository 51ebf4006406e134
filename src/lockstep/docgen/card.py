"""The model card: the documentation page with Hugging Face's model-card metadata in front.

``README.md`` beside ``index.md`` is what a model hub, a catalog or a
reviewer reads first: YAML front matter in the model-card format (library,
tags, the data set, metrics with their values on the test split, in a
``model-index``), then the same sections as the documentation page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.docgen.facts import ModelFacts

__all__ = ["card_metadata", "render_model_card"]

_TASKS = {"classification": ("tabular-classification", "Tabular Classification"),
          "regression": ("tabular-regression", "Tabular Regression")}


def _number(value: Any) -> Any:
    return round(float(value), 6) if isinstance(value, (int, float)) else value


def card_metadata(facts: ModelFacts) -> dict[str, Any]:
    """The model card's front matter (Hugging Face's model-card metadata)."""
    info, lineage = facts.info, facts.lineage
    config = lineage.config
    task_type, task_name = _TASKS[config.data.task]
    dataset = f"{facts.project_name}-raw"  # the id `lockstep data contract` gives the same data
    summary = info.metric_summary("test")
    seeds = len(facts.per_seed) or len(lineage.seeds)
    metrics = [{"type": metric, "value": _number(stats.get("mean")),
                "name": f"{metric} on the test split (mean of {seeds} seed{'s' if seeds != 1 else ''})",
                "args": {k: _number(stats[k]) for k in ("std", "ci_low", "ci_high") if k in stats}}
               for metric, stats in summary.items()]
    return {
        "library_name": "sklearn",
        "tags": ["lockstep", "scikit-learn", task_type, "reproducible"],
        "datasets": [dataset],
        "metrics": list(summary),
        "model-index": [{"name": info.name, "results": [{
            "task": {"type": task_type, "name": task_name},
            "dataset": {"type": dataset, "name": f"{facts.project_name} raw snapshot {lineage.raw_version}",
                        "split": "test", "revision": lineage.raw_fingerprint[:16]},
            "metrics": metrics}]}],
        "lockstep": {"model": f"{info.name}/{info.version}", "fingerprint": info.fingerprint,
                     "aliases": list(info.aliases),
                     "verified": None if facts.verify is None else bool(facts.verify.get("reproduced")),
                     "parity": None if facts.parity is None else bool(facts.parity.get("identical"))},
    }


def render_model_card(facts: ModelFacts, markdown: str) -> str:
    """``README.md``: the front matter, then the documentation page ``markdown``."""
    front = yaml.safe_dump(card_metadata(facts), sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{front}---\n\n{markdown}"
