"""The service's Prometheus metrics, one set per worker process.

Names follow Prometheus's naming guide: the ``lockstep_`` prefix, base units
in the name (``_seconds``), ``_total`` on counters, ``_info`` on the gauge
that only carries labels; labels take a bounded set of values (the known
endpoints and ``other``, statuses, model versions, the model's raw input
columns), never a request id or a client. The process's own
(``process_*``, ``python_*``) come from prometheus_client's collectors.
docs/inference.md lists them.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["Metrics"]


class Metrics:
    """Prometheus metrics of one service process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.requests = Counter("lockstep_requests_total", "HTTP requests", ["endpoint", "status", "model_version"],
                                registry=self.registry)
        self.errors = Counter("lockstep_errors_total", "HTTP responses with status 400 or more",
                              ["endpoint", "status", "model_version"], registry=self.registry)
        self.latency = Histogram("lockstep_request_duration_seconds", "Time from a request's arrival to the end of its "
                                 "answer", ["endpoint", "model_version"],
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                                 registry=self.registry)
        self.predictions = Counter("lockstep_predicted_records_total", "Records predicted", ["model_version"],
                                   registry=self.registry)
        self.model_info = Gauge("lockstep_model_info", "The model being served", ["name", "version", "fingerprint"],
                                registry=self.registry)
        self.psi = Gauge("lockstep_drift_psi", "PSI of the recent requests against the training data, per raw input "
                         "(raw:<name>) and for the predicted score (prediction)", ["column", "model_version"],
                         registry=self.registry)
        self.window = Gauge("lockstep_drift_window_records", "Records in the window behind lockstep_drift_psi",
                            ["model_version"], registry=self.registry)
        self.feedback = Counter("lockstep_feedback_records_total", "Ground-truth labels received", ["model_version"],
                                registry=self.registry)
        self._per_request: dict[tuple[str, int, str], tuple[Any, Any, Any]] = {}
        self._predicted: dict[str, Any] = {}

    def request(self, endpoint: str, status: int, version: str, seconds: float) -> None:
        """Count one answered request and its latency (the labelled series are looked up once, then kept)."""
        key = (endpoint, status, version)
        series = self._per_request.get(key)
        if series is None:
            labels = (endpoint, str(status), version)
            series = (self.requests.labels(*labels), self.errors.labels(*labels) if status >= 400 else None,
                      self.latency.labels(endpoint, version))
            self._per_request[key] = series
        series[0].inc()
        if series[1] is not None:
            series[1].inc()
        series[2].observe(seconds)

    def predicted(self, version: str, records: int) -> None:
        """Count ``records`` predicted by model ``version`` (its series looked up once, then kept)."""
        series = self._predicted.get(version)
        if series is None:
            series = self._predicted[version] = self.predictions.labels(version)
        series.inc(records)

    def update_drift(self, model: Any) -> None:
        """Set the PSI gauges from the model's window (called when /metrics is scraped)."""
        live = getattr(model, "live", None)
        if live is None:
            return
        version = str(model.info.version)
        self.window.labels(version).set(len(live))
        for column, value in live.psi().items():
            self.psi.labels(column, version).set(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)
