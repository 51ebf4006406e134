"""The false-alarm rate of the default drift thresholds on windows with no drift, and their power on drift.

Run: ``.venv/bin/python bench/false_alarms.py [--repeats 100]``

For each example, a model is trained (one seed) and windows of 200, 1,000
and 5,000 rows are drawn, with replacement, from its own data (the same
population the reference profile summarizes). Every window is monitored with
the default ``[monitor]`` thresholds; a window with any drifted column is a
false alarm. The rate per window size is printed, with the statistics and
columns responsible. Then the same sizes are drawn from each example's
drift scenario (``examples/*/drift.py``, shifted batch), and the share of
windows in which drift is found is printed: the power of the defaults. Last,
a mild shift: one numeric input 5% higher (``MILD``), the rest unchanged.
"""

from __future__ import annotations

import argparse
import shutil
from collections import Counter
from pathlib import Path

from _common import ROOT, lockstep

OUT = ROOT / "bench" / "out" / "false-alarms"
MILD = {"telco-churn": "monthly_charges", "ames-housing": "Gr_Liv_Area"}


def prepare(example: str) -> Path:
    project = OUT / example
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(ROOT / "examples" / example, project, ignore=shutil.ignore_patterns(".lockstep", "scenario"))
    toml = project / "lockstep.toml"
    text = toml.read_text().replace("seeds = [0, 1, 2]", "seeds = [0]").replace("thread_check = true",
                                                                               "thread_check = false")
    toml.write_text(text)
    lockstep(project, ["ingest"], ["features"], ["train"], ["promote"])
    return project


def main() -> None:
    import pandas as pd

    from lockstep import Project
    from lockstep.monitoring.monitor import monitor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    for example, data in (("telco-churn", "data/wa_churn.csv"), ("ames-housing", "data/ames.csv")):
        project = Project(prepare(example))
        loaded = project.registry.load(project.model_ref(None, "champion"))
        ref = project.model_ref(f"{loaded.info.name}/{loaded.info.version}")
        rows = pd.read_csv(project.path / data)
        for size in (200, 1000, 5000):
            alarms, causes = 0, Counter()
            for seed in range(args.repeats):
                window = OUT / f"{example}-window.csv"
                rows.sample(size, replace=True, random_state=seed).to_csv(window, index=False)
                report = monitor(project.config, project.store, project.registry, ref, data=window, loaded=loaded)
                if report.drift:
                    alarms += 1
                    for column in report.drifted():
                        for stat in column.statistics:
                            if stat.drift:
                                causes[f"{column.group} {column.name} {stat.name}"] += 1
            top = ", ".join(f"{k} ({v})" for k, v in causes.most_common(4)) or "-"
            print(f"{example}: windows of {size:>5,} rows: {alarms}/{args.repeats} false alarms "
                  f"({alarms / args.repeats:.0%}); most frequent: {top}", flush=True)
        import runpy

        scenario = runpy.run_path(str(project.path / "drift.py"))["scenario"]
        for size in (200, 1000, 5000):
            found = 0
            repeats = max(args.repeats // 5, 5)
            for seed in range(repeats):
                shifted, _fresh = scenario(size, 1000 + seed)
                window = OUT / f"{example}-shifted.csv"
                shifted.to_csv(window, index=False)
                found += monitor(project.config, project.store, project.registry, ref, data=window,
                                 loaded=loaded).drift
            print(f"{example}: shifted windows of {size:>5,} rows: drift found in {found}/{repeats}", flush=True)
        # a mild shift: one numeric input 5% higher, everything else resampled unchanged
        column = MILD[example]
        for size in (200, 1000, 5000):
            found = 0
            repeats = max(args.repeats // 5, 5)
            for seed in range(repeats):
                window_rows = rows.sample(size, replace=True, random_state=10_000 + seed)
                shifted = window_rows[column] * 1.05
                # an integer column stays integer (a fraction would be an invalid value, not a shift)
                integer = pd.api.types.is_integer_dtype(window_rows[column])
                window_rows[column] = shifted.round().astype("int64") if integer else shifted
                window = OUT / f"{example}-mild.csv"
                window_rows.to_csv(window, index=False)
                found += monitor(project.config, project.store, project.registry, ref, data=window,
                                 loaded=loaded).drift
            print(f"{example}: {column} x 1.05, windows of {size:>5,} rows: drift found in {found}/{repeats}",
                  flush=True)


if __name__ == "__main__":
    main()
