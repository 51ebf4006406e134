"""The lineage of a model version as a picture: raw snapshot -> feature set -> model -> what came of it.

:func:`lineage_graph` gathers the nodes from the store and the registry
(each with its version, fingerprint and date); :func:`draw` renders them left
to right, as SVG and PNG, with matplotlib. ``lockstep lineage`` writes both;
``lockstep docs`` puts the PNG in its pages.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lockstep.core.lazy import lazy_module

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure as mpl_figure
    import matplotlib.patches as mpl_patches

    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.versions import VersionInfo
    from lockstep.reproducibility.lineage import Lineage
    from lockstep.store import Store
else:  # matplotlib, imported by the first picture drawn
    mpl_figure = lazy_module("matplotlib.figure")
    mpl_patches = lazy_module("matplotlib.patches")

__all__ = ["LineageGraph", "LineageNode", "draw", "lineage_graph"]


@dataclass(frozen=True)
class LineageNode:
    """One artifact or result: what it is, its identity and when it was made."""

    key: str
    kind: str  # raw, features, model, onnx, predictions, monitoring, verify, parity
    title: str
    lines: tuple[str, ...]
    ok: bool | None = None  # a check's verdict (None: not a check)


@dataclass
class LineageGraph:
    """The nodes, in columns from left to right, and the edges between them."""

    columns: list[list[LineageNode]]
    edges: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [{"key": n.key, "kind": n.kind, "title": n.title, "lines": list(n.lines), "ok": n.ok}
                          for column in self.columns for n in column],
                "edges": [list(edge) for edge in self.edges]}


def _short(fingerprint: str | None) -> str:
    return (fingerprint or "-")[:12]


def _of_version(table: Any, info: VersionInfo, name_column: str, version_column: str) -> list[dict[str, Any]]:
    if table.num_rows == 0 or name_column not in table.column_names:
        return []
    return [row for row in table.to_pylist()
            if row.get(name_column) == info.name and row.get(version_column) == info.version]


def _results(store: Store, info: VersionInfo) -> list[LineageNode]:
    """Batch predictions and monitoring runs of the version, from the store's logs."""
    nodes = []
    runs = _of_version(store.predictions.runs(), info, "model", "version")
    if runs:
        last = max(runs, key=lambda r: r.get("time") or "")
        rows = sum(r.get("rows") or 0 for r in runs)
        nodes.append(LineageNode("predictions", "predictions", "batch predictions",
                                 (f"{len(runs)} run(s), {rows:,} rows", f"last {last.get('time', '-')}")))
    monitored = _of_version(store.monitoring.read(), info, "model_name", "model_version")
    if monitored:
        last = max(monitored, key=lambda r: r.get("time") or "")
        drifted = sum(1 for r in monitored if r.get("drift"))
        nodes.append(LineageNode("monitoring", "monitoring", "monitoring",
                                 (f"{len(monitored)} run(s), {drifted} with drift", f"last {last.get('time', '-')}"),
                                 ok=not last.get("drift")))
    return nodes


def lineage_graph(store: Store, registry: Registry, info: VersionInfo, lineage: Lineage) -> LineageGraph:
    """The version's lineage: where it came from, and what was made and checked from it."""
    raw = LineageNode("raw", "raw", f"raw snapshot {lineage.raw_version}",
                      (f"fingerprint {_short(lineage.raw_fingerprint)}",))
    features = LineageNode("features", "features", f"feature set {lineage.config.features.name} "
                           f"v{lineage.features_version}",
                           (f"fingerprint {_short(lineage.features_fingerprint)}",
                            f"{len(lineage.feature_columns)} features"))
    aliases = f" @{', @'.join(info.aliases)}" if info.aliases else ""
    model = LineageNode("model", "model", f"{info.name}/{info.version}{aliases}",
                        (f"fingerprint {_short(info.fingerprint)}", f"created {info.created}"))
    after: list[LineageNode] = []
    digest = info.tags.get("lockstep.onnx.digest")
    if digest:
        parity = json.loads(info.tags.get("lockstep.onnx.parity", "{}") or "{}")
        after.append(LineageNode("onnx", "onnx", "ONNX export", (f"digest {_short(digest)}",),
                                 ok=parity.get("passed")))
    after += _results(store, info)
    for kind in ("verify", "parity"):
        report = registry.check_result(info, kind)
        if report is None:
            after.append(LineageNode(kind, kind, f"{kind}: not run", (f"lockstep {kind}",), ok=None))
            continue
        passed = bool(report.get("reproduced" if kind == "verify" else "identical"))
        after.append(LineageNode(kind, kind, f"{kind}: {'passed' if passed else 'FAILED'}",
                                 (f"{report.get('time', '-')}",), ok=passed))
    edges = [("raw", "features"), ("features", "model"), *(("model", n.key) for n in after)]
    return LineageGraph(columns=[[raw], [features], [model], after], edges=edges)


_FILL = {None: "#f6f8fa", True: "#dafbe1", False: "#ffebe9"}
_BOX_W, _BOX_H, _GAP_X, _GAP_Y = 3.0, 1.0, 1.0, 0.35


def _positions(graph: LineageGraph) -> dict[str, tuple[float, float]]:
    tallest = max(len(column) for column in graph.columns)
    height = tallest * (_BOX_H + _GAP_Y)
    where = {}
    for i, column in enumerate(graph.columns):
        top = (height + len(column) * (_BOX_H + _GAP_Y)) / 2
        for j, node in enumerate(column):
            where[node.key] = (i * (_BOX_W + _GAP_X), top - (j + 1) * (_BOX_H + _GAP_Y))
    return where


def draw(graph: LineageGraph, title: str) -> dict[str, bytes]:
    """The picture as ``{"svg": ..., "png": ...}``."""
    where = _positions(graph)
    tallest = max(len(column) for column in graph.columns)
    width = len(graph.columns) * (_BOX_W + _GAP_X)
    height = tallest * (_BOX_H + _GAP_Y) + 0.6
    fig = mpl_figure.Figure(figsize=(width * 0.9, height * 0.9))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.2, width - _GAP_X + 0.2)
    ax.set_ylim(-0.2, height)
    ax.axis("off")
    ax.text(0, height - 0.3, title, fontsize=11, fontweight="bold", va="center")
    for column in graph.columns:
        for node in column:
            x, y = where[node.key]
            ax.add_patch(mpl_patches.Rectangle((x, y), _BOX_W, _BOX_H, facecolor=_FILL[node.ok],
                                               edgecolor="#57606a"))
            ax.text(x + 0.1, y + _BOX_H - 0.25, node.title, fontsize=8.5, fontweight="bold", va="center")
            for k, line in enumerate(node.lines[:2]):
                ax.text(x + 0.1, y + _BOX_H - 0.55 - 0.25 * k, line, fontsize=7.5, va="center", color="#24292f")
    for start, end in graph.edges:
        (x0, y0), (x1, y1) = where[start], where[end]
        ax.annotate("", xy=(x1, y1 + _BOX_H / 2), xytext=(x0 + _BOX_W, y0 + _BOX_H / 2),
                    arrowprops={"arrowstyle": "->", "color": "#57606a"})
    out = {}
    for fmt in ("svg", "png"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, metadata={"Date": None} if fmt == "svg" else None, dpi=110)
        out[fmt] = buffer.getvalue()
    fig.clear()
    return out

