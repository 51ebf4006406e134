"""Reference profiles: what the training data looked like, in binned summaries, never the rows.

Stored with every registered model version for drift monitoring. For each
column: the missing rate, and either (numbers) histogram counts on fixed
bin edges (the training data's deciles, extended by an underflow and an
overflow bin so that any later value falls in a bin), mean and standard
deviation, or (text and booleans) the frequency of each category (the 100
most frequent; the rest as one share).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["profile_frame"]

_BINS = 10
_TOP = 100


def _column(series: pd.Series) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    n = len(series)
    missing = int(series.isna().sum())
    out: dict[str, Any] = {"rows": n, "missing": missing, "missing_rate": missing / n if n else 0.0}
    values = series.dropna()
    numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    if numeric:
        x = values.to_numpy(dtype=np.float64)
        if x.size == 0:
            return {**out, "kind": "numeric", "edges": [], "counts": []}
        inner = np.unique(np.quantile(x, np.linspace(0, 1, _BINS + 1)))
        edges = [-np.inf, *inner.tolist(), np.inf] if inner.size > 1 else [-np.inf, float(inner[0]), np.inf]
        counts, _ = np.histogram(x, bins=np.asarray(edges))
        return {**out, "kind": "numeric", "edges": [float(e) for e in edges], "counts": counts.tolist(),
                "mean": float(x.mean()), "std": float(x.std(ddof=0)), "min": float(x.min()), "max": float(x.max())}
    counts = values.astype(str).value_counts()
    top = counts.head(_TOP)
    return {**out, "kind": "categorical", "categories": {str(k): int(v) for k, v in top.items()},
            "other": int(counts.iloc[_TOP:].sum()) if len(counts) > _TOP else 0, "distinct": int(len(counts))}


def profile_frame(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The profile of every column of ``frame``."""
    return {str(name): _column(frame[name]) for name in frame.columns}
