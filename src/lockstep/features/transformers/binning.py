"""Binning numbers with fixed edges (stateless)."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import StrOptions

from lockstep.features.transformers._base import LockstepTransformer, as_list

__all__ = ["FixedBins"]


def _fmt(edge: float) -> str:
    if math.isinf(edge):
        return "inf" if edge > 0 else "-inf"
    return str(int(edge)) if float(edge).is_integer() else repr(float(edge))


class FixedBins(LockstepTransformer):
    """Put numbers into bins with fixed edges; the bin's label is a category.

    Stateless: the edges are parameters (quantile bins learned from the data
    belong in the model pipeline). Bins are ``[a, b)`` by default
    (``right=False``). Values outside every bin and missing values give a
    missing label.

    Parameters
    ----------
    edges : list of float or dict, optional
        Increasing bin edges for every selected column, or a dict of column
        to edges. Use ``float("inf")`` for an open end.
    columns : list of str, optional
        Defaults to the keys of ``edges`` when it is a dict, else every
        numeric column.
    labels : list of str, optional
        One label per bin (with a single list of edges); default ``"[a, b)"``.
    right : bool, default False
        Close bins on the right, ``(a, b]``.
    suffix : str or None, default "_bin"
        The label goes to ``<column><suffix>``; with ``None`` it replaces the column.
    output : {"label", "code"}, default "label"
        ``"label"`` gives the bin's label (a category); ``"code"`` its
        0-based number as float64 (missing outside every bin).

    Attributes
    ----------
    edges_ : dict
        Column to edges.

    Examples
    --------
    >>> import pandas as pd
    >>> from lockstep.features.transformers import FixedBins
    >>> X = pd.DataFrame({"tenure": [0, 13, 70]})
    >>> FixedBins([0, 12, 24, float("inf")]).fit_transform(X)
       tenure tenure_bin
    0       0    [0, 12)
    1      13   [12, 24)
    2      70  [24, inf)
    """

    _parameter_constraints = {"edges": [list, tuple, dict, None], "columns": [list, tuple, str, None],
                              "labels": [list, tuple, None], "right": ["boolean"], "suffix": [str, None],
                              "output": [StrOptions({"label", "code"})]}

    def __init__(self, edges=None, columns=None, labels=None, right=False, suffix="_bin", output="label"):
        self.edges = edges
        self.columns = columns
        self.labels = labels
        self.right = right
        self.suffix = suffix
        self.output = output

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"] if self.output == "code" else []
        return tags

    def _fit(self, frame: pd.DataFrame) -> None:
        if self.edges is None:
            self.edges_ = {}
            return
        columns = as_list(self.columns)
        if columns is None:
            columns = list(self.edges) if isinstance(self.edges, dict) else None
        columns = self._resolve(frame, columns, kind="numeric")
        edges = {c: list(self.edges[c] if isinstance(self.edges, dict) else self.edges) for c in columns}
        for name, e in edges.items():
            if len(e) < 2 or any(b <= a for a, b in zip(e, e[1:])):
                raise ValueError(f"FixedBins: edges for {name!r} must be at least two increasing numbers, got {e}")
            if self.labels is not None and len(self.labels) != len(e) - 1:
                raise ValueError(f"FixedBins: {len(self.labels)} labels for {len(e) - 1} bins of {name!r}")
        self.edges_ = edges

    def _labels(self, edges: list[float]) -> list[str]:
        if self.labels is not None:
            return [str(label) for label in self.labels]
        left, right = ("(", "]") if self.right else ("[", ")")
        return [f"{left}{_fmt(a)}, {_fmt(b)}{right}" for a, b in zip(edges, edges[1:])]

    def _transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        for name, edges in self.edges_.items():
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            e = np.asarray(edges, dtype=np.float64)
            side: Literal["left", "right"] = "left" if self.right else "right"
            index = np.searchsorted(e, values, side=side) - 1
            inside = (index >= 0) & (index < len(e) - 1) & ~np.isnan(values)
            if self.right:
                inside &= values > e[0]
            else:
                inside &= values < e[-1]
            if self.output == "code":
                out = np.where(inside, index, np.nan).astype(np.float64)
            else:
                labels = np.asarray(self._labels(edges), dtype=object)
                out = np.full(len(values), np.nan, dtype=object)
                out[inside] = labels[index[inside]]
            frame[name + (self.suffix or "")] = out
        return frame

    def lockstep_onnx(self, graph) -> None:
        for name, edges in self.edges_.items():
            x = graph.number(name)
            op = "Greater" if self.right else "GreaterOrEqual"  # searchsorted side "left" or "right"
            count = graph.sum_of([graph.to_double(graph.compare(op, x, graph.const(float(e)))) for e in edges])
            index = graph.sub(count, graph.const(1.0))
            inside = graph.logical("And", graph.compare("GreaterOrEqual", index, graph.const(0.0)),
                                   graph.compare("Less", index, graph.const(float(len(edges) - 1))))
            edge = graph.const(float(edges[0] if self.right else edges[-1]))
            inside = graph.logical("And", inside, graph.compare("Greater" if self.right else "Less", x, edge))
            inside = graph.logical("And", inside, graph.logical("Not", graph.is_nan(x)))
            target = name + (self.suffix or "")
            if self.output == "code":
                graph[target] = graph.where(inside, index, graph.const(float("nan")))
            else:
                position = graph.to_int(graph.where(inside, index, graph.const(-1.0)))
                graph[target] = graph.gather_text(self._labels(edges), position)

    def _names_out(self, names: list[str]) -> list[str]:
        if not self.suffix:
            return list(names)
        return list(names) + [c + self.suffix for c in self.edges_ if c + self.suffix not in names]
