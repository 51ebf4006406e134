"""The drift report for people: one plot per drifted column (reference against window) and an HTML page."""

from __future__ import annotations

import base64
import html
import io
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from lockstep.core.lazy import lazy_module
from lockstep.profiles.summary import NumericSummary

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.figure as mpl_figure
    from matplotlib.figure import Figure

    from lockstep.monitoring.drift import ColumnDrift, DriftReport

else:  # matplotlib, imported by the first plot drawn
    mpl_figure = lazy_module("matplotlib.figure")

__all__ = ["column_figure", "report_files"]

_PLOT_BINS = 40
_PLOT_CATEGORIES = 15


def _numeric_plot(ax: Any, column: ColumnDrift) -> None:
    ref, cur = column.reference, column.current
    assert isinstance(ref, NumericSummary) and isinstance(cur, NumericSummary)
    bins = ref.bins
    step = max(bins // _PLOT_BINS, 1)
    cuts = list(range(0, bins, step))
    ref_counts = np.add.reduceat(ref.counts, cuts)
    cur_counts = np.add.reduceat(cur.counts, cuts)
    width = (ref.high - ref.low) / bins * step if bins else 1.0
    left = ref.low + np.asarray(cuts) * ((ref.high - ref.low) / bins if bins else 0.0)
    ref_total, cur_total = max(ref.present, 1), max(cur.present, 1)
    ax.bar(left, ref_counts / ref_total, width=width, align="edge", alpha=0.45, label="reference (training)",
           color="#4c72b0")
    ax.bar(left, cur_counts / cur_total, width=width, align="edge", alpha=0.45, label="window", color="#dd8452")
    ax.set_ylabel("share of values")
    notes = []
    for name, r, c in (("below", ref.below, cur.below), ("above", ref.above, cur.above)):
        if r or c:
            notes.append(f"{name} the grid: reference {r / ref_total:.1%}, window {c / cur_total:.1%}")
    if notes:
        ax.set_xlabel("; ".join(notes), fontsize=8)


def _categorical_plot(ax: Any, column: ColumnDrift) -> None:
    ref, cur = column.reference, column.current
    ref_total, cur_total = max(ref.present, 1), max(cur.present, 1)
    names = set(ref.counts) | set(cur.counts)
    shares = {n: (ref.counts.get(n, 0) / ref_total, cur.counts.get(n, 0) / cur_total) for n in names}
    top = sorted(shares, key=lambda n: -max(shares[n]))[:_PLOT_CATEGORIES]
    rest_ref = 1 - sum(shares[n][0] for n in top)
    rest_cur = 1 - sum(shares[n][1] for n in top)
    labels = [str(n)[:24] + (" (new)" if n not in ref.counts else "") for n in top]
    values = [shares[n] for n in top]
    if rest_ref > 1e-9 or rest_cur > 1e-9:
        labels.append("all others")
        values.append((rest_ref, rest_cur))
    y = np.arange(len(labels))
    ax.barh(y - 0.2, [v[0] for v in values], height=0.4, label="reference (training)", color="#4c72b0")
    ax.barh(y + 0.2, [v[1] for v in values], height=0.4, label="window", color="#dd8452")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share of values")


def column_figure(column: ColumnDrift) -> Figure:
    """Reference and window distributions of one column, with its drifting statistics in the title."""
    fig = mpl_figure.Figure(figsize=(6.5, 4.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if column.kind == "numeric":
        _numeric_plot(ax, column)
    else:
        _categorical_plot(ax, column)
    flagged = ", ".join(f"{s.name} {s.value:.3g}" for s in column.statistics if s.drift)
    ax.set_title(f"{column.group}: {column.name}\n{flagged}", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    fig.clear()
    return buffer.getvalue()


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def report_files(report: DriftReport) -> dict[str, bytes | str]:
    """``report.json``, ``report.html`` (self-contained) and ``plots/<group>-<column>.png`` per drifted column."""
    payload = report.to_dict()
    plots = {f"plots/{c.group}-{_safe(c.name)}.png": _png(column_figure(c)) for c in report.drifted()}
    verdict = ("DRIFT" if report.drift else "no drift")
    rows = []
    for column in report.columns:
        cells = []
        for stat in column.statistics:
            mark = "drift" if stat.drift else ("warn" if stat.warning else "")
            p = f" (p={stat.p_value:.2g})" if stat.p_value is not None else ""
            cells.append(f'<span class="{mark}">{stat.name} {_cell(stat.value)}{p}</span>')
        status = "drift" if column.drift else ("warning" if column.warning else "ok")
        rows.append(f"<tr class=\"{status}\"><td>{html.escape(column.group)}</td><td>{html.escape(column.name)}</td>"
                    f"<td>{column.kind}</td><td>{status}</td><td>{' '.join(cells)}</td></tr>")
    images = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        f"</figure>" for name, data in plots.items())
    quality = ""
    if report.quality:
        q = report.quality
        quality = (f"<h2>Live quality</h2><p>{html.escape(q.get('summary', ''))}</p><pre>"
                   f"{html.escape(json.dumps(q.get('metrics', {}), indent=2, default=str))}</pre>")
    actions = "".join(f"<li>{html.escape(a.get('step', ''))}: {html.escape(a.get('detail', ''))}</li>"
                      for a in report.actions)
    invalid = f", {report.invalid:,} values not of their type" if report.invalid else ""
    small = (f"<p><b>The window is small</b> ({report.rows} rows, fewer than {report.min_rows}): the statistics are "
             "noisy.</p>" if report.small else "")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report: {html.escape(report.model)}/{report.version}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #1f2328; }}
table {{ border-collapse: collapse; font-size: 0.9em; }} td, th {{ border: 1px solid #d0d7de; padding: 3px 8px; }}
tr.drift td {{ background: #ffebe9; }} tr.warning td {{ background: #fff8c5; }}
span.drift {{ color: #cf222e; font-weight: bold; }} span.warn {{ color: #9a6700; }}
figure {{ display: inline-block; margin: 0.5em; }} img {{ max-width: 520px; border: 1px solid #d0d7de; }}
</style></head><body>
<h1>Drift report: {html.escape(report.model)} version {report.version}: {verdict}</h1>
<p>Window: {html.escape(report.window)}; {report.rows:,} rows{invalid}.
Computed {html.escape(report.time)} in {report.seconds:.2f} s.
Model fingerprint <code>{html.escape(report.fingerprint)}</code>.</p>
{small}
<p>{len(report.drifted())} of {len(report.columns)} columns drifted.</p>
{quality}
{"<h2>Actions</h2><ul>" + actions + "</ul>" if actions else ""}
<h2>Drifted columns</h2>{images or "<p>None.</p>"}
<h2>Every column</h2>
<table><tr><th>group</th><th>column</th><th>kind</th><th>status</th><th>statistics</th></tr>{"".join(rows)}</table>
<h2>Thresholds</h2><pre>{html.escape(json.dumps(report.thresholds, indent=2))}</pre>
</body></html>
"""
    return {"report.json": json.dumps(payload, indent=2, default=str), "report.html": page, **plots}
