"""``lockstep check``: ML regression gates for CI.

Three kinds of checks, each PASS, FAIL (with the numbers) or SKIPPED (with the reason):

``golden``
    Every version stores a golden sample at registration: its first test
    rows (raw) and the model's outputs on them. The check loads the version
    from the registry, predicts the sample again and requires the very same
    bits. It fails when anything between the stored model and its outputs
    changed: a library upgrade, a changed model file, different hardware.
``gates``
    The promotion gates (``[registry] gates`` and the improvement over the
    champion) for the challenger, with the numbers.
``schema``
    The current raw schema (``lockstep.toml``) and feature schema (the
    latest feature set version) against the champion's: a removed or
    retyped column, a column that may no longer be missing, narrowed
    categories or ranges, or a new required input column are breaking; new
    optional columns, widened categories and ranges are not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lockstep._version import __version__
from lockstep.core.compare import compare_outputs
from lockstep.core.errors import NotFoundError, shown
from lockstep.core.sections import task_metrics
from lockstep.evaluation.gates import check_gates
from lockstep.evaluation.promotion import paired_on_test_rows
from lockstep.inference.batch import predict_table
from lockstep.registry.refs import ModelRef

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config
    from lockstep.core.sections import ColumnSchema
    from lockstep.registry.mlflow_registry import Registry
    from lockstep.registry.versions import VersionInfo
    from lockstep.store import Store

__all__ = ["CHECKS", "CheckItem", "CheckReport", "run_checks", "schema_changes"]

CHECKS = ("golden", "gates", "schema")


@dataclass
class CheckItem:
    """One check's verdict."""

    check: str
    name: str
    status: str  # PASS, FAIL or SKIPPED
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"check": self.check, "name": self.name, "status": self.status, "detail": self.detail,
                **({"data": self.data} if self.data else {})}


@dataclass
class CheckReport:
    """The outcome of :func:`run_checks`."""

    model: str
    champion: int | None
    challenger: int | None
    items: list[CheckItem] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(i.status != "FAIL" for i in self.items)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "model": self.model, "champion": self.champion, "challenger": self.challenger,
                "checks": [i.to_dict() for i in self.items], "lockstep_version": __version__}


# ---------------------------------------------------------------------------------------------- golden


def golden_check(registry: Registry, info: VersionInfo) -> CheckItem:
    """Predict a version's golden sample again; any differing bit fails."""
    name = f"{info.name}/{info.version}"
    try:
        inputs = registry.artifact_table(info, "golden/inputs.parquet")
        expected = registry.artifact_table(info, "golden/outputs.parquet")
    except NotFoundError:
        return CheckItem("golden", name, "SKIPPED", "registered without a golden sample (an older lockstep)")
    loaded = registry.load(ModelRef(info.name, version=info.version))
    got = predict_table(loaded, inputs)
    proba = [c for c in expected.column_names if c.startswith("proba_")]
    regression = loaded.schema.task == "regression"

    def scores(table):
        return np.column_stack([table.column(c).to_numpy() for c in proba]) if proba else None

    missing = [c for c in proba if c not in got.column_names]
    if missing:
        return CheckItem("golden", name, "FAIL", f"the model no longer outputs {', '.join(missing)}")
    comparison = compare_outputs(expected.column("prediction").to_pylist(), scores(expected),
                                 got.column("prediction").to_pylist(), scores(got), regression=regression)
    if comparison.identical:
        return CheckItem("golden", name, "PASS", f"{comparison.rows} golden rows predicted again: bitwise equal",
                         comparison.to_dict())
    return CheckItem("golden", name, "FAIL", f"{comparison.rows} golden rows predicted again: "
                     f"{comparison.label_mismatches} differing {'values' if regression else 'labels'}, largest "
                     f"difference {comparison.max_abs_diff:.3g}; the same model version no longer gives the same "
                     "outputs (a changed library, model file or machine; `lockstep env diff` compares the "
                     "environment)", comparison.to_dict())


# ---------------------------------------------------------------------------------------------- gates


def gates_check(config: Config, store: Store, registry: Registry, challenger: VersionInfo | None,
                champion: VersionInfo | None) -> CheckItem:
    if challenger is None:
        return CheckItem("gates", "challenger", "SKIPPED", "no challenger version (train one first)")
    same = champion is not None and champion.version == challenger.version
    same_model = bool(champion and champion.fingerprint and champion.fingerprint == challenger.fingerprint)
    paired = problem = None
    if champion is not None and not same and not same_model and config.registry.improvement == "bootstrap":
        paired, problem = paired_on_test_rows(config, store, registry, challenger, champion)
    report = check_gates(
        challenger.metric_summary("test"), dict(config.registry.gates), primary=config.primary_metric,
        higher_is_better=task_metrics(config.data.task)[config.primary_metric],
        improvement=config.registry.improvement,
        champion=None if same or champion is None else champion.metric_summary("test"),
        candidate_name=f"{challenger.name}/{challenger.version}",
        champion_name=None if same or champion is None else f"{champion.name}/{champion.version}",
        same_model=same_model, paired=paired, paired_problem=problem,
    )
    name = f"{challenger.name}/{challenger.version}"
    rules = "; ".join(f"{'pass' if r.passed else 'FAIL'} {r.rule}: {r.detail}" for r in report.rules)
    if not report.rules:
        return CheckItem("gates", name, "PASS", "no gates configured and no other champion to beat")
    scope = " (the challenger is the champion: absolute gates only)" if same else ""
    return CheckItem("gates", name, "PASS" if report.passed else "FAIL", rules + scope, report.to_dict())


# ---------------------------------------------------------------------------------------------- schema


def _describe_allowed(values: list) -> str:
    return ", ".join(shown(v) for v in values[:6]) + (f" and {len(values) - 6} more" if len(values) > 6 else "")


def column_changes(name: str, old: ColumnSchema, new: ColumnSchema) -> tuple[list[str], list[str]]:
    """Breaking and compatible changes of one raw column."""
    breaking: list[str] = []
    compatible: list[str] = []
    if old.dtype != new.dtype:
        breaking.append(f"{name}: retyped {old.dtype} -> {new.dtype}")
        return breaking, compatible
    if old.nullable and not new.nullable:
        breaking.append(f"{name}: may no longer be missing")
    elif new.nullable and not old.nullable:
        compatible.append(f"{name}: may now be missing")
    old_allowed, new_allowed = old.allowed, new.allowed
    if new_allowed is not None:
        if old_allowed is None:
            breaking.append(f"{name}: now limited to {_describe_allowed(list(new_allowed))}")
        else:
            removed = [v for v in old_allowed if v not in new_allowed]
            added = [v for v in new_allowed if v not in old_allowed]
            if removed:
                breaking.append(f"{name}: categories removed: {_describe_allowed(removed)}")
            if added:
                compatible.append(f"{name}: categories added: {_describe_allowed(added)}")
    elif old_allowed is not None:
        compatible.append(f"{name}: no longer limited to a list of categories")
    for bound, tighter in (("min", lambda o, n: n > o), ("max", lambda o, n: n < o)):
        o, n = getattr(old, bound), getattr(new, bound)
        if n is not None and (o is None or _compare(tighter, o, n)):
            breaking.append(f"{name}: {bound} narrowed from {o if o is not None else 'none'} to {n}")
        elif o is not None and (n is None or _compare(tighter, n, o)):
            compatible.append(f"{name}: {bound} widened from {o} to {n if n is not None else 'none'}")
    return breaking, compatible


def _compare(rule, a, b) -> bool:
    try:
        return bool(rule(a, b))
    except TypeError:
        return str(a) != str(b)


def schema_changes(old: dict[str, ColumnSchema], new: dict[str, ColumnSchema]) -> tuple[list[str], list[str]]:
    """Breaking and compatible changes from one raw input schema to another."""
    breaking, compatible = [], []
    for name, spec in old.items():
        if name not in new:
            breaking.append(f"{name}: removed")
        else:
            b, c = column_changes(name, spec, new[name])
            breaking += b
            compatible += c
    for name, spec in new.items():
        if name not in old:
            if spec.nullable:
                compatible.append(f"{name}: added (optional)")
            else:
                breaking.append(f"{name}: added as a required input; clients of the champion do not send it "
                                "(make it nullable = true to add it compatibly)")
    return breaking, compatible


def feature_changes(old: dict[str, str], new: dict[str, str]) -> tuple[list[str], list[str]]:
    """Breaking and compatible changes from one feature schema (name -> logical type) to another."""
    breaking = [f"{n}: removed" for n in old if n not in new]
    breaking += [f"{n}: retyped {old[n]} -> {new[n]}" for n in old if n in new and old[n] != new[n]]
    compatible = [f"{n}: added" for n in new if n not in old]
    return breaking, compatible


def schema_checks(config: Config, store: Store, registry: Registry, champion: VersionInfo | None) -> list[CheckItem]:
    if champion is None:
        return [CheckItem("schema", "raw", "SKIPPED", "no champion to compare with"),
                CheckItem("schema", "features", "SKIPPED", "no champion to compare with")]
    items = []
    name = f"{champion.name}/{champion.version}"
    old = registry.model_schema(champion)
    current = {n: config.data.columns[n] for n in config.feature_inputs}
    breaking, compatible = schema_changes(old.input_schema, current)
    items.append(_schema_item("raw", f"lockstep.toml against {name}'s inputs", breaking, compatible))

    lineage = registry.run_json(champion, "lineage.json")
    old_features = lineage["features"].get("dtypes") or {}
    try:
        latest = store.features(config.features.name).info()
    except NotFoundError:
        items.append(CheckItem("schema", "features", "SKIPPED", "no feature set version to compare (run "
                               "`lockstep features`)"))
        return items
    breaking, compatible = feature_changes(old_features, dict(latest.dtypes))
    items.append(_schema_item("features", f"feature set version {latest.version} against {name}'s (version "
                              f"{lineage['features'].get('version')})", breaking, compatible))
    return items


def _schema_item(name: str, what: str, breaking: list[str], compatible: list[str]) -> CheckItem:
    data = {"breaking": breaking, "compatible": compatible}
    if breaking:
        return CheckItem("schema", name, "FAIL", f"{what}: {len(breaking)} breaking change(s): " + "; ".join(breaking)
                         + (f" (compatible: {'; '.join(compatible)})" if compatible else ""), data)
    return CheckItem("schema", name, "PASS", f"{what}: " + ("compatible: " + "; ".join(compatible) if compatible
                                                           else "unchanged"), data)


# ---------------------------------------------------------------------------------------------- all


def _optional(registry: Registry, ref: ModelRef) -> VersionInfo | None:
    try:
        return registry.version(ref)
    except NotFoundError:
        return None


def run_checks(config: Config, store: Store, registry: Registry, *, champion: ModelRef, challenger: ModelRef,
               only: tuple[str, ...] = CHECKS) -> CheckReport:
    """Run the CI checks of a project's registered model.

    Parameters
    ----------
    champion, challenger : ModelRef
        The versions to check (usually ``@champion`` and ``@challenger``).
    only : tuple of str
        Some of ``golden``, ``gates``, ``schema``.

    Raises
    ------
    NotFoundError
        If neither version exists.
    """
    champ, chall = _optional(registry, champion), _optional(registry, challenger)
    if champ is None and chall is None:
        raise NotFoundError(f"neither {champion} nor {challenger} exists",
                            hint="train (and promote) a model first: `lockstep run`")
    named = champ if champ is not None else chall
    assert named is not None  # one of them exists (checked above)
    report = CheckReport(model=named.name, champion=champ.version if champ else None,
                         challenger=chall.version if chall else None)
    if "golden" in only:
        for info in {v.version: v for v in (champ, chall) if v is not None}.values():
            report.items.append(golden_check(registry, info))
    if "gates" in only:
        report.items.append(gates_check(config, store, registry, chall, champ))
    if "schema" in only:
        report.items += schema_checks(config, store, registry, champ)
    return report
