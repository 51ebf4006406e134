"""Live quality: the model's metrics on the predictions that received ground truth through ``POST /feedback``.

The audit log holds both sides: each successful ``/predict`` request with its
outputs, and each ``/feedback`` request with the request id it is about and
the true labels (the latest feedback for a request wins). They are joined on
the request id; the metrics of the training issue are computed on the
pairs, with a 95% bootstrap interval (seeded: the same pairs give the same
interval), and compared with the version's test metrics and their
seed-to-seed interval. A metric has degraded when its whole live interval
lies on the wrong side of the test interval: worse than training by more
than both the sampling noise of the live estimate and the seed-to-seed
spread. The primary metric decides.
"""

from __future__ import annotations

import json
import warnings
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from lockstep.core.sections import task_metrics
from lockstep.evaluation.metrics import Outputs, compute_metrics

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.registry.versions import VersionInfo
    from lockstep.store import Store

__all__ = ["feedback_pairs", "live_quality"]


def feedback_pairs(store: Store, info: VersionInfo, classes: list | None, since: datetime | None = None,
                   until: datetime | None = None) -> dict[str, Any]:
    """The predictions of ``info`` made between ``since`` and ``until`` that have feedback, as arrays.

    Returns
    -------
    dict
        ``y_true``, ``y_pred``, ``proba`` (or None), ``requests`` (with feedback), ``predictions``
        (requests in the window).
    """
    model = f"{info.name}/{info.version}"
    feedback: dict[str, tuple] = {}
    for batch in store.audit.scan(model=model, endpoint="/feedback", status=200, columns=["time", "inputs"]):
        for moment, inputs in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
            body = json.loads(inputs or "{}")
            known = feedback.get(body.get("request_id"))
            if known is None or moment >= known[0]:  # the latest feedback for a request wins
                feedback[body.get("request_id")] = (moment, body.get("labels") or [])
    y_true: list[Any] = []
    y_pred: list[Any] = []
    proba: list[Any] = []
    requests = in_window = 0
    names = [str(c) for c in classes] if classes else None
    for batch in store.audit.scan(since=since, until=until, model=model, endpoint="/predict", status=200,
                                  columns=["request_id", "outputs"]):
        for request_id, outputs in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
            in_window += 1
            labels = feedback.get(request_id, (None, []))[1]
            if not labels:
                continue
            out = json.loads(outputs or "{}")
            predicted = out.get("predictions") or []
            if len(predicted) != len(labels):
                continue
            requests += 1
            y_true += labels
            y_pred += predicted
            if names and out.get("probabilities"):
                proba += [[p[n] for n in names] for p in out["probabilities"]]
    return {"y_true": np.asarray(y_true, dtype=object if classes else np.float64),
            "y_pred": np.asarray(y_pred, dtype=object if classes else np.float64),
            "proba": np.asarray(proba, dtype=np.float64) if proba else None,
            "requests": requests, "predictions": in_window}


def _compared(name: str, live: float, boot: list[float], reference: dict[str, Any], higher: bool,
              ) -> dict[str, Any]:
    """A live metric with its bootstrap interval against its test mean and interval: degraded when the two
    intervals do not overlap, the live one on the worse side."""
    values = np.asarray(boot, dtype=np.float64)
    values = values[np.isfinite(values)]
    low, high = (float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))) if values.size else \
        (float("nan"), float("nan"))
    degraded = False
    if reference and np.isfinite(low):
        degraded = high < reference.get("ci_low", reference["mean"]) if higher else \
            low > reference.get("ci_high", reference["mean"])
    return {"live": live, "live_low": low, "live_high": high, "test_mean": reference.get("mean"),
            "test_low": reference.get("ci_low"), "test_high": reference.get("ci_high"), "higher_is_better": higher,
            "degraded": bool(degraded)}


def live_quality(config: Config, store: Store, info: VersionInfo, classes: list | None, *,
                 since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    """The live metrics of ``info`` with their bootstrap intervals, against its test metrics.

    Returns
    -------
    dict
        ``rows`` (predictions with ground truth), ``metrics`` (name -> live value, interval, test
        mean and interval, degraded), ``degraded`` (the primary metric's verdict), ``summary``.
    """
    task = config.data.task
    pairs = feedback_pairs(store, info, classes, since, until)
    n = len(pairs["y_true"])
    base = {"rows": n, "requests": pairs["requests"], "predictions": pairs["predictions"]}
    if n == 0:
        return {**base, "metrics": {}, "degraded": False,
                "summary": "no prediction in the window has received feedback yet (POST /feedback)"}
    names = config.metrics
    positive = config.train.positive_class if config.train else None
    class_list = list(classes) if classes else None
    if task == "classification":
        # feedback and predictions arrive as JSON: give them the model's class values
        by_text = {json.dumps(c): c for c in class_list or []}
        pairs["y_true"] = np.asarray([by_text.get(json.dumps(v), v) for v in pairs["y_true"]], dtype=object)
        pairs["y_pred"] = np.asarray([by_text.get(json.dumps(v), v) for v in pairs["y_pred"]], dtype=object)

    def measure(index: np.ndarray) -> dict[str, float]:
        out = Outputs(pairs["y_true"][index], pairs["y_pred"][index],
                      pairs["proba"][index] if pairs["proba"] is not None else None, class_list)
        return compute_metrics(task, names, out, positive)

    everything = np.arange(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        point = measure(everything)
        rng = np.random.default_rng(0)
        boot = [measure(rng.integers(0, n, n)) for _ in range(config.monitor.bootstrap)]
    test = info.metric_summary("test")
    directions = task_metrics(task)
    metrics = {name: _compared(name, point[name], [b[name] for b in boot], test.get(name, {}), directions[name])
               for name in names}
    primary = config.primary_metric
    verdict = metrics.get(primary, {})
    degraded = bool(verdict.get("degraded"))
    summary = (f"{primary} on {n:,} predictions with feedback: {verdict.get('live', float('nan')):.4g} "
               f"(95% {verdict.get('live_low', float('nan')):.4g} .. {verdict.get('live_high', float('nan')):.4g}) "
               f"against {verdict.get('test_mean') or float('nan'):.4g} at training: "
               + ("degraded beyond the spread" if degraded else "within the spread"))
    return {**base, "metrics": metrics, "degraded": degraded, "primary": primary, "summary": summary}
