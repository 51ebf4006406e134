"""Drift of the service's recent requests: PSI per raw input and for the predicted score, for ``/metrics``.

The service keeps its last ``window`` records (one bounded deque of the
validated records, extended on each request: under a microsecond) and
computes the PSI of each column against the reference profile when
Prometheus scrapes ``/metrics``, on the reference's own bins. Each worker
process has its own window.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from lockstep.profiles.stats import categorical_stats, numeric_stats
from lockstep.profiles.summary import summary_from_dict

__all__ = ["LiveDrift"]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        return (moment - datetime(1970, 1, 1)).total_seconds()
    if isinstance(value, date):
        return (datetime(value.year, value.month, value.day) - datetime(1970, 1, 1)).total_seconds()
    return float(value)


class LiveDrift:
    """A sliding window of recent inputs and scores, and their PSI against a reference profile.

    Parameters
    ----------
    profile : dict
        The model's reference profile (``reference_profile.json``).
    inputs : list of str
        The raw input columns.
    window : int
        How many recent records the PSI is computed on.
    """

    def __init__(self, profile: dict[str, Any], inputs: list[str], window: int) -> None:
        self.window = window
        self.references = {name: summary_from_dict(profile["raw"][name]) for name in inputs
                           if name in profile.get("raw", {})}
        prediction = profile.get("prediction", {}).get("prediction")
        self.score_reference = summary_from_dict(prediction) if prediction else None
        self.records: deque[dict] = deque(maxlen=window)
        self.scores: deque = deque(maxlen=window)

    def observe(self, records: list[dict], scores: Any = None) -> None:
        """Add the records of one request (and their scores)."""
        if self.references:
            self.records.extend(records)
        if scores is not None and self.score_reference is not None:
            self.scores.extend(scores)

    def __len__(self) -> int:
        return len(self.records)

    def _psi(self, reference: Any, values: list) -> float | None:
        current = reference.empty_like()
        if reference.kind == "numeric":
            current.update(np.array([np.nan if (x := _number(v)) is None else x for v in values], dtype=np.float64))
            stats = numeric_stats(reference, current)
        else:
            current.update(pd.Series([None if v is None else str(v) for v in values], dtype=object))
            stats = categorical_stats(reference, current)
        return stats.get("psi", {}).get("value")

    def psi(self) -> dict[str, float]:
        """PSI per raw input (``raw:<name>``) and of the predicted score (``prediction``), on the window."""
        out = {}
        records = list(self.records)
        for name, reference in self.references.items():
            values = [r.get(name) for r in records]
            value = self._psi(reference, values) if values else None
            if value is not None:
                out[f"raw:{name}"] = value
        if self.score_reference is not None and self.scores:
            value = self._psi(self.score_reference, list(self.scores))
            if value is not None:
                out["prediction"] = value
        return out
