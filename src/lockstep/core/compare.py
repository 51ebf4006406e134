"""Comparing model outputs: bit for bit, and by how much when they differ."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["OutputComparison", "compare_outputs", "within_tolerance"]


@dataclass(frozen=True)
class OutputComparison:
    """How one set of outputs differs from a reference.

    Attributes
    ----------
    rows : int
    label_mismatches : int
        Rows whose predicted label (or value, for regression) is not exactly the reference's.
    max_abs_diff : float
        The largest absolute difference of a probability (classification) or
        a value (regression); 0.0 when identical.
    identical : bool
        Every label and every probability or value equal bit for bit.
    max_rel_diff : float
        The largest difference relative to the reference's magnitude,
        ``|a - b| / max(1, |a|)``; 0.0 when identical.
    """

    rows: int
    label_mismatches: int
    max_abs_diff: float
    identical: bool
    max_rel_diff: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _float_bits(values: Any) -> np.ndarray[Any, Any]:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64)).view(np.uint64)


def _labels(values: Any) -> np.ndarray[Any, Any]:
    return np.asarray([v.item() if hasattr(v, "item") else v for v in values], dtype=object)


def compare_outputs(reference_labels: Any, reference_scores: Any, labels: Any, scores: Any, *,
                    regression: bool) -> OutputComparison:
    """Compare labels and scores (class probabilities, 2-D; or ``None``) with a reference.

    For regression the labels are the predicted values and are compared as
    floats; for classification labels are compared as values (``1 == 1``,
    ``"Yes" == "Yes"``) and the probabilities as floats.
    """
    n = len(reference_labels)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} outputs for {n} reference rows")
    if regression:
        ref, new = np.asarray(reference_labels, dtype=np.float64), np.asarray(labels, dtype=np.float64)
        same_bits = _float_bits(ref) == _float_bits(new)
        mismatches = int((~same_bits).sum())
        diff = np.abs(ref - new)
        max_diff = float(np.nanmax(diff)) if n and not np.isnan(diff).all() else 0.0
        relative = diff / np.maximum(1.0, np.abs(ref))
        max_rel = float(np.nanmax(relative)) if n and not np.isnan(relative).all() else 0.0
        if np.isnan(ref).any() != np.isnan(new).any() or (np.isnan(ref) != np.isnan(new)).any():
            max_diff = max_rel = float("inf")
        if mismatches == 0:
            max_diff = max_rel = 0.0
        return OutputComparison(n, mismatches, max_diff, mismatches == 0, max_rel)
    ref_labels, new_labels = _labels(reference_labels), _labels(labels)
    mismatches = int(sum(bool(a != b) for a, b in zip(ref_labels, new_labels)))
    identical = mismatches == 0
    max_diff = 0.0
    if reference_scores is not None or scores is not None:
        if reference_scores is None or scores is None:
            return OutputComparison(n, mismatches, float("inf"), False)
        ref, new = np.asarray(reference_scores, dtype=np.float64), np.asarray(scores, dtype=np.float64)
        if ref.shape != new.shape:
            return OutputComparison(n, mismatches, float("inf"), False)
        identical = identical and bool((_float_bits(ref) == _float_bits(new)).all())
        if ref.size:
            diff = np.abs(ref - new)
            max_diff = float("inf") if (np.isnan(ref) != np.isnan(new)).any() else float(np.nanmax(diff, initial=0.0))
    return OutputComparison(n, mismatches, max_diff, identical, max_diff)


def within_tolerance(comparison: OutputComparison, tolerance: float, *, regression: bool) -> bool:
    """Outputs that may differ by ``tolerance``: identical labels and probabilities within ``tolerance``
    (classification), or values within ``tolerance`` of the reference's magnitude (regression)."""
    if regression:
        return comparison.max_rel_diff <= tolerance
    return comparison.label_mismatches == 0 and comparison.max_abs_diff <= tolerance
