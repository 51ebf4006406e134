"""The data layer: schema validation, snapshots, stable splits, leakage checks, summaries and diffs.

Nothing here reads or writes files directly; the store does (:mod:`lockstep.store`).
"""
