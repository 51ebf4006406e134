"""A model's documentation as Markdown, and as one self-contained HTML page (plots embedded)."""

from __future__ import annotations

import base64
import html
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from markdown_it import MarkdownIt

from lockstep._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.docgen.facts import ModelFacts, StepFacts

__all__ = ["render_html", "render_markdown"]


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: Any) -> str:
    return f"`{_cell(text)}`"


def _columns(names: list[str] | None) -> str:
    if names is None:
        return "-"
    if len(names) <= 6:
        return ", ".join(names) or "-"
    return f"{', '.join(names[:4])}, ... ({len(names)} columns)"


def _params(params: dict[str, Any]) -> str:
    if not params:
        return "defaults"
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in params.items())[:400]


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _source(snapshot: dict, data: Any) -> str:
    source = snapshot.get("source")
    if isinstance(source, dict):
        return str(source.get("description") or data.source)
    return str(source or data.source or data.sql)


def _steps_table(steps: list[StepFacts], tuned: bool) -> list[str]:
    header = "| step | class | purpose | columns in | columns out | parameters |" + (" chosen by the search |"
                                                                                   if tuned else "")
    lines = [header, "|" + "---|" * (7 if tuned else 6)]
    for s in steps:
        row = [_code(s.name), _code(s.cls.rsplit(".", 1)[-1]), _cell(s.purpose), _cell(_columns(s.inputs)),
               _cell(_columns(s.outputs)), _cell(_params(s.params))]
        if tuned:
            row.append(_cell(_params(s.tuned)) if s.tuned else "-")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _metrics(facts: ModelFacts) -> list[str]:
    info = facts.info
    seeds = [s.get("seed") for s in facts.per_seed]
    lines = []
    for split in ("test", "valid"):
        summary = info.metric_summary(split)
        if not summary:
            continue
        lines += [f"### {split.capitalize()} split", "",
                  "| metric | mean | std | 95% interval | " + " | ".join(f"seed {s}" for s in seeds) + " |",
                  "|---|---|---|---|" + "---|" * len(seeds)]
        for metric, stats in summary.items():
            values = [_num(s.get("metrics", {}).get(split, {}).get(metric)) for s in facts.per_seed]
            label = f"**{metric}**" if metric == facts.lineage.config.primary_metric else metric
            lines.append(f"| {label} | {_num(stats.get('mean'))} | {_num(stats.get('std'))} | "
                         f"{_num(stats.get('ci_low'))} .. {_num(stats.get('ci_high'))} | " + " | ".join(values) + " |")
        lines.append("")
    invariant = info.tags.get("lockstep.thread_invariant")
    if invariant:
        lines.append("Thread check: " + ("refitting with another number of threads gave the same model." if
                                         invariant == "true" else "refitting with another number of threads gave a "
                                         "different model: this estimator depends on the thread count, which is "
                                         "recorded and fixed."))
        lines.append("")
    for name in sorted(n for n in facts.figures if n != "lineage.png"):
        lines += [f"![{name.removesuffix('.png').replace('_', ' ')}](plots/{name})", ""]
    return lines


def _limitations(facts: ModelFacts) -> list[str]:
    """What the model's record says it cannot be trusted for."""
    info, lineage = facts.info, facts.lineage
    config, schema = lineage.config, facts.loaded.schema
    sizes = facts.features.get("splits", {})
    lines = ["## Limitations", "",
             f"- **What it has seen**: {_num(sizes.get('train'))} training rows of raw snapshot "
             f"{lineage.raw_version}. Rows unlike them are extrapolation: `lockstep monitor` and the service's "
             "`lockstep_drift_psi` gauges compare new data with the training data."]
    unbounded = [c for c in schema.inputs if schema.columns[c].dtype in ("int", "float", "datetime", "date")
                 and schema.columns[c].min is None and schema.columns[c].max is None]
    if unbounded:
        lines.append(f"- **Inputs without bounds**: {_columns(unbounded)} accept any value of their type; add `min`/"
                     "`max` to `[data.schema]` where a value is impossible, so that such rows are refused.")
    primary = config.primary_metric
    stats = info.metric_summary("test").get(primary, {})
    if stats:
        lines.append(f"- **How sure the evaluation is**: {primary} {_num(stats.get('mean'))} on "
                     f"{_num(sizes.get('test'))} test rows, std {_num(stats.get('std'))} across "
                     f"{len(facts.per_seed)} seed(s), 95% interval {_num(stats.get('ci_low'))} .. "
                     f"{_num(stats.get('ci_high'))}. Differences smaller than that interval are noise.")
    python = lineage.environment.get("python", {}).get("version")
    lines.append(f"- **Bit-for-bit**: its predictions are reproduced exactly in the recorded environment (Python "
                 f"{python}, the packages under Dependencies); on another platform or other versions the last bits "
                 "may differ (`lockstep env diff` shows what changed).")
    if info.tags.get("lockstep.thread_invariant") == "false":
        lines.append(f"- **Threads**: the estimator's result depends on the thread count; it is fixed at "
                     f"{lineage.threads}.")
    if facts.verify is None or facts.parity is None:
        lines.append("- **Not yet proved**: " + " and ".join(
            what for what, report in (("`lockstep verify`", facts.verify), ("`lockstep parity`", facts.parity))
            if report is None) + " has not been run on this version.")
    return [*lines, ""]


def _stages(report: dict | None, what: str, command: str) -> list[str]:
    if report is None:
        return [f"No {what} recorded yet: run `{command}`.", ""]
    if what == "verification":
        verdict = "reproduced" if report.get("reproduced") else f"**not reproduced** ({report.get('cause')})"
        lines = [f"Last verification {report.get('time')} (lockstep {report.get('lockstep_version')}): {verdict}.",
                 "", "| stage | status | detail |", "|---|---|---|"]
        lines += [f"| {s['name']} | {s['status']} | {_cell(s['detail'])} |" for s in report.get("stages", [])]
    else:
        verdict = "identical" if report.get("identical") else "**paths differ**"
        lines = [f"Last parity check {report.get('time')} on {report.get('rows')} test rows: {verdict}.", "",
                 "| path | status | label mismatches | max abs diff | detail |", "|---|---|---|---|---|"]
        lines += [f"| {p['name']} | {p['status']} | {p['label_mismatches']} | {p['max_abs_diff']:.3g} | "
                  f"{_cell(p['detail'])} |" for p in report.get("paths", [])]
    return lines + [""]


def _split_text(split: Any) -> str:
    if split.by == "time":
        return (f"by time on `{split.time_column}`: valid from {split.valid_from}, test from {split.test_from}")
    return (f"by a hash of the id salted with `{split.salt}`: valid {split.valid:.0%}, test {split.test:.0%}; a row's "
            "split never moves when rows are added")


# long: a template, read top to bottom as the page it writes
def render_markdown(facts: ModelFacts) -> str:
    """The documentation of a model version, in Markdown (plots referenced as ``plots/<name>.png``)."""
    info, lineage = facts.info, facts.lineage
    config = lineage.config
    data, split = config.data, config.split
    schema = facts.loaded.schema
    ref = f"{info.name}/{info.version}"
    snap = facts.snapshot or {}
    feats = facts.features
    sizes = feats.get("splits", {})
    task = (f"classification of `{data.target}` (classes {', '.join(map(str, schema.classes or []))})"
            if data.task == "classification" else f"regression of `{data.target}`")
    env = lineage.environment
    packages = env.get("packages", {})
    out = [
        f"# {info.name} version {info.version}",
        "",
        f"Generated by lockstep {__version__} on {datetime.now(UTC).isoformat(timespec='seconds')}. "
        f"Aliases: {', '.join(info.aliases) or 'none'}. Model fingerprint `{info.fingerprint}`.",
        "",
        "## Overview",
        "",
        f"- **Task**: {task}, project `{facts.project_name}`.",
        f"- **Data**: raw snapshot {lineage.raw_version} of `{_source(snap, data)}`: "
        f"{_num(snap.get('rows'))} rows; each row identified by `{data.id_column}`.",
        f"- **Split**: {_split_text(split)} (train {_num(sizes.get('train'))}, valid {_num(sizes.get('valid'))}, test "
        f"{_num(sizes.get('test'))} rows).",
        f"- **Inputs**: {len(schema.inputs)} raw columns ({_columns(schema.inputs)}), validated against the schema "
        "recorded with the model.",
        f"- **Model**: `{lineage.model_ref}` (candidate `{lineage.candidate or 'default'}`), trained on feature set "
        f"`{feats.get('name')}` version {lineage.features_version}, seeds {lineage.seeds}, {lineage.threads} "
        "thread(s).",
        f"- **Rebuild and check it**: `lockstep verify {ref}`, `lockstep parity {ref}`; run the whole system with "
        "`lockstep run`.",
        "",
        "## Feature pipeline",
        "",
        f"`{config.features.pipeline or '(identity: the raw columns)'}`: stateless, row-wise transformations "
        f"(checked when the features were built: {_num(feats.get('parity', {}).get('rows_checked'))} rows transformed "
        "one at a time gave the same values as the whole table).",
        "",
        *_steps_table(facts.feature_steps, tuned=False),
        "",
        "## Model pipeline",
        "",
        f"`{lineage.model_ref}`: fitted on the training split only.",
    ]
    if lineage.search is not None:
        out.append(f"Search: {lineage.search.kind} on {lineage.search.cv} folds of the training split, space "
                   f"`{json.dumps(lineage.search.model_dump(mode='json')['space'])}`; chosen "
                   f"`{json.dumps(lineage.best_params)}`.")
    out += ["", *_steps_table(facts.model_steps, tuned=True), "", "## Data lineage", "",
            "| artifact | version | fingerprint | details |", "|---|---|---|---|",
            f"| raw snapshot | {lineage.raw_version} | `{lineage.raw_fingerprint[:16]}` | "
            f"{_num(snap.get('rows'))} rows, {_num(snap.get('columns'))} columns, created {snap.get('created', '-')} |",
            f"| feature set `{feats.get('name')}` | {lineage.features_version} | `{lineage.features_fingerprint[:16]}` "
            f"| {len(feats.get('columns', []))} features, {_num(feats.get('rows'))} rows |"]
    for relative, digest in sorted(lineage.code_files.items()):
        out.append(f"| code `{relative}` | - | `{digest[:16]}` | stored with the model |")
    tags = info.tags
    if "lineage.png" in facts.figures:
        out[out.index("## Data lineage") + 1:out.index("## Data lineage") + 1] = [
            "", "![lineage](plots/lineage.png)", "", "(also as `plots/lineage.svg`; `lockstep lineage` draws it "
            "alone)", ""]
    out += [f"| configuration | - | `{tags.get('lockstep.config.fingerprint', '')[:16]}` | the recorded "
            "`lockstep.toml` sections that shape the model |",
            f"| environment | - | `{tags.get('lockstep.environment.fingerprint', '')[:16]}` | Python, platform and "
            "numerical packages |",
            f"| model | {info.version} | `{info.fingerprint[:16]}` | run `{info.run_id}` |"]
    if tags.get("lockstep.git.commit"):
        dirty = " (uncommitted changes)" if tags.get("lockstep.git.dirty") == "True" else ""
        out.append(f"| git commit | - | `{tags['lockstep.git.commit'][:16]}` | {dirty or 'clean'} |")
    out += ["", "## Metrics", "", *_metrics(facts), "## Dependencies", "",
            f"Recorded at training: Python {env.get('python', {}).get('version')} "
            f"({env.get('python', {}).get('implementation')}) on {env.get('platform', {}).get('system')} "
            f"{env.get('platform', {}).get('machine')}.", ""]
    for pool in env.get("threadpools") or []:
        out.append(f"- {pool.get('user_api')}: {pool.get('prefix')} {pool.get('version')}")
    out += ["", "| package | version |", "|---|---|"]
    for name in ("numpy", "scipy", "scikit-learn", "pandas", "pyarrow", "skops", "mlflow", "lockstep"):
        out.append(f"| {name} | {packages.get(name, '-')} |")
    out += ["", "`requirements.txt` beside this page pins every package the model needs to the recorded versions "
            f"(`lockstep env lock {ref}`); `lockstep docker {ref}` builds a serving image from it.", "",
            *_limitations(facts),
            "## Reproducibility", "",
            *_stages(facts.verify, "verification", f"lockstep verify {ref}"),
            *_stages(facts.parity, "parity check", f"lockstep parity {ref}"),
            "## How to call it", ""]
    record = json.dumps(facts.example_record or {}, default=str)
    out += ["Python, for a file of raw rows (CSV or Parquet) or one record:", "", "```python",
            "import lockstep",
            "import pyarrow as pa",
            "from lockstep.inference.batch import predict_table",
            "",
            "project = lockstep.Project(\".\")",
            f"# project.predict(\"predictions.parquet\", input=\"rows.csv\", model=\"{ref}\")",
            f"loaded = project.load_model(\"{ref}\")  # checked against its fingerprint",
            f"record = {record}",
            "print(predict_table(loaded, pa.Table.from_pylist([record])).to_pylist())",
            "```", "", "Command line:", "", "```sh",
            f"lockstep predict --model {ref} --input rows.csv --output predictions.parquet",
            f"lockstep serve --model {ref} --port 8000",
            "```", "", "HTTP (one record, or a JSON array of records):", "", "```sh",
            "curl -s -X POST http://127.0.0.1:8000/predict -H 'content-type: application/json' \\",
            f"  -d '{record}'",
            "```", ""]
    if facts.example_output is not None:
        out += ["The model's output for this record, as stored in its golden sample:", "", "```json",
                json.dumps(facts.example_output, default=str), "```", ""]
    return "\n".join(out)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #1f2328; line-height: 1.5; }
h1, h2, h3 { border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code { background: #f6f8fa; padding: 0 .25em; border-radius: 4px; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; border-radius: 6px; }
pre code { background: none; padding: 0; }
img { max-width: 48%; border: 1px solid #d0d7de; margin: .5em .5em 0 0; }
"""


def render_html(markdown: str, figures: dict[str, bytes], title: str) -> str:
    """One HTML page from the Markdown, with every plot embedded (no external file or network access)."""
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    for name, data in figures.items():
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        body = body.replace(f'src="plots/{name}"', f'src="{uri}"')
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{html.escape(title)}"
            f"</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n")
