"""Promotion gates: may a model version become the champion?

Two kinds of rules, both on the test split's metrics:

* absolute thresholds from ``[registry] gates``: ``min_<metric>`` (the mean
  must be at least this) and ``max_<metric>`` (at most this);
* against the current champion, when there is one, by ``[registry]
  improvement``:

  ``"bootstrap"`` (the default)
      both models predict the challenger's test rows, and a paired
      bootstrap of the primary metric (:mod:`lockstep.evaluation.paired`)
      estimates the noise of the difference: the challenger passes unless
      it is worse beyond that noise (the whole 95% interval of the
      difference below 0). A retrain on newer data that is as good passes;
      a model that gives the champion's outputs passes exactly.
  ``"std"``
      the primary metric must improve by more than the larger of the two
      versions' seed-to-seed standard deviations (a change smaller than the
      noise between seeds is no improvement);
  a number
      it must improve by more than that.

Every rule reports its numbers, passed or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.evaluation.paired import PairedComparison

__all__ = ["GateReport", "GateRule", "check_gates"]


@dataclass(frozen=True)
class GateRule:
    rule: str
    passed: bool
    detail: str

    def to_dict(self) -> dict:
        return {"rule": self.rule, "passed": self.passed, "detail": self.detail}


@dataclass
class GateReport:
    candidate: str
    champion: str | None
    rules: list[GateRule] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rules)

    def failures(self) -> list[GateRule]:
        return [r for r in self.rules if not r.passed]

    def to_dict(self) -> dict:
        return {"candidate": self.candidate, "champion": self.champion, "passed": self.passed,
                "rules": [r.to_dict() for r in self.rules]}


def _fmt(x: float | None) -> str:
    return "missing" if x is None else f"{x:.6g}"


def check_gates(candidate: dict[str, dict[str, float]], gates: dict[str, float], *, primary: str,
                higher_is_better: bool, improvement: Any, champion: dict[str, dict[str, float]] | None,
                candidate_name: str, champion_name: str | None, same_model: bool = False,
                paired: PairedComparison | None = None, paired_problem: str | None = None) -> GateReport:
    """Check a candidate's test metrics (name -> {mean, std}) against the gates and the champion.

    With ``same_model`` (the candidate's model fingerprint is the champion's:
    the same model retrained, for example after a change that did not change
    it), the improvement rule passes: replacing a model by itself is no risk.
    With ``improvement = "bootstrap"``, ``paired`` is the comparison of both
    on the candidate's test rows; when it could not be made
    (``paired_problem`` says why), the candidate's recorded test mean must be
    at least the champion's.
    """
    report = GateReport(candidate=candidate_name, champion=champion_name)
    for gate, threshold in sorted(gates.items()):
        kind, _, metric = gate.partition("_")
        value = candidate.get(metric, {}).get("mean")
        passed = value is not None and (value >= threshold if kind == "min" else value <= threshold)
        sign = ">=" if kind == "min" else "<="
        report.rules.append(GateRule(gate, passed, f"test {metric} mean {_fmt(value)} {sign} {threshold:g}"))
    if champion is not None and champion_name != candidate_name and same_model:
        report.rules.append(GateRule("improvement", True, f"the same model as the champion {champion_name} (equal "
                                     "model fingerprints)"))
    elif champion is not None and champion_name != candidate_name and improvement == "bootstrap":
        report.rules.append(_bootstrap_rule(candidate, champion, primary, higher_is_better, str(champion_name), paired,
                                            paired_problem))
    elif champion is not None and champion_name != candidate_name:
        new = candidate.get(primary, {})
        old = champion.get(primary, {})
        if improvement == "std":
            margin = max(new.get("std", 0.0) or 0.0, old.get("std", 0.0) or 0.0)
            margin_text = f"the larger seed-to-seed std ({margin:.6g})"
        else:
            margin = float(improvement)
            margin_text = f"the configured margin ({margin:g})"
        if new.get("mean") is None or old.get("mean") is None:
            report.rules.append(GateRule("improvement", False, f"{primary} is missing for one of the versions"))
        else:
            gain = (new["mean"] - old["mean"]) if higher_is_better else (old["mean"] - new["mean"])
            direction = "higher" if higher_is_better else "lower"
            report.rules.append(GateRule(
                "improvement", gain > margin,
                f"{primary} {_fmt(new['mean'])} vs champion {champion_name} {_fmt(old['mean'])}: improvement "
                f"{gain:+.6g} ({direction} is better), which must exceed {margin_text}",
            ))
    return report


def _bootstrap_rule(candidate: dict, champion: dict, primary: str, higher_is_better: bool, champion_name: str,
                    paired: PairedComparison | None, problem: str | None) -> GateRule:
    if paired is not None:
        detail = (f"{primary} {_fmt(paired.challenger)} vs champion {champion_name} {_fmt(paired.champion)} on the "
                  f"same {paired.rows:,} test rows: difference {paired.difference:+.6g} (better is positive), 95% "
                  f"bootstrap interval {paired.low:+.6g} .. {paired.high:+.6g} over {paired.resamples} resamples; "
                  "refused only if the whole interval is below 0")
        return GateRule("improvement", not paired.worse, detail)
    new, old = candidate.get(primary, {}).get("mean"), champion.get(primary, {}).get("mean")
    if new is None or old is None:
        return GateRule("improvement", False, f"{primary} is missing for one of the versions")
    gain = (new - old) if higher_is_better else (old - new)
    return GateRule("improvement", gain >= 0, f"{primary} {_fmt(new)} vs champion {champion_name} {_fmt(old)} on "
                    f"their own test splits (no paired comparison: {problem or 'not computed'}): the challenger "
                    "must not be worse")
