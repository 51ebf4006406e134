"""Checks against leakage between ids, features, target and splits.

* **Duplicate ids**: an entity that appears twice can land in two splits.
* **The target (or the id) among the declared features**: ``[features]
  columns`` must not name them.
* **Rows shared between splits**: valid or test rows identical, in every
  column but the id, to a train row. Their score measures memory, not
  generalization. The largest fraction allowed is ``[split]
  max_shared_fraction`` (default 0); real data with genuinely distinct
  entities that look alike (two customers with the same plan and the same
  bill) may need a small allowance, which then is a documented decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lockstep.core.errors import LeakageError
from lockstep.core.lazy import lazy_module

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from lockstep.core.config import Config
    from lockstep.data import rows as row_keys
else:  # the configuration's check needs none of them: an ingest that finds its inputs unchanged runs only that one
    np = lazy_module("numpy")
    pa = lazy_module("pyarrow")
    pc = lazy_module("pyarrow.compute")
    row_keys = lazy_module("lockstep.data.rows")

__all__ = ["SharedRows", "check_declared_features", "check_shared_rows", "duplicate_ids", "repeated_inputs",
           "shared_rows"]


def check_declared_features(config: Config) -> None:
    """Fail if ``[features] columns`` names the target or the id column."""
    declared = config.features.columns or []
    data = config.data
    if data.target in declared:
        raise LeakageError(
            f"{config.config_path.name}: features.columns includes the target '{data.target}'",
            hint="the model would see the answer; remove it from [features] columns",
        )
    if data.id is not None and data.id in declared:
        raise LeakageError(
            f"{config.config_path.name}: features.columns includes the id column '{data.id}'",
            hint="an entity id carries no general signal and can leak the split; remove it from [features] columns",
        )


def duplicate_ids(ids: pa.ChunkedArray | pa.Array) -> dict[object, list[int]]:
    """Ids that occur more than once, each with its row positions."""
    counts = pc.value_counts(ids)
    values, freq = counts.field("values"), counts.field("counts")
    dupes = pc.filter(values, pc.greater(freq, 1))
    if len(dupes) == 0:
        return {}
    mask = np.asarray(pc.is_in(ids, value_set=dupes).to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.flatnonzero(mask)
    out: dict[object, list[int]] = {}
    for row, value in zip(rows.tolist(), ids.take(pa.array(rows)).to_pylist()):
        out.setdefault(value, []).append(row)
    return out


@dataclass(frozen=True)
class SharedRows:
    """How many valid and test rows are identical to a train row (every column but the id).

    ``repeated_inputs`` counts the rows whose model inputs are identical to
    another row's (with a split by content they share its split), and
    ``input_groups`` the groups they form.
    """

    train: int
    valid: int
    test: int
    valid_shared: int
    test_shared: int
    repeated_inputs: int = 0
    input_groups: int = 0

    @property
    def valid_fraction(self) -> float:
        return self.valid_shared / self.valid if self.valid else 0.0

    @property
    def test_fraction(self) -> float:
        return self.test_shared / self.test if self.test else 0.0

    def to_dict(self) -> dict:
        return {
            "valid_shared": self.valid_shared,
            "test_shared": self.test_shared,
            "valid_fraction": round(self.valid_fraction, 6),
            "test_fraction": round(self.test_fraction, 6),
            "repeated_inputs": self.repeated_inputs,
            "input_groups": self.input_groups,
        }


def repeated_inputs(table: pa.Table, inputs: list[str]) -> tuple[int, int]:
    """Rows whose values in ``inputs`` repeat another row's, and the number of groups they form."""
    if not inputs:
        return 0, 0
    _keys, counts = np.unique(row_keys.row_hashes(table, list(inputs)), return_counts=True)
    return int(counts[counts > 1].sum()), int((counts > 1).sum())


def shared_rows(table: pa.Table, id_column: str, splits: np.ndarray, inputs: list[str] | None = None) -> SharedRows:
    """Count valid and test rows identical to some train row in every column but ``id_column``, and the rows
    whose values in ``inputs`` (the model's raw inputs) repeat another row's."""
    repeated, groups = repeated_inputs(table, inputs or [])

    columns = [c for c in table.column_names if c != id_column]
    hashes = row_keys.row_hashes(table, columns)
    train = splits == "train"
    train_hashes = hashes[train]
    counts = {}
    for name in ("valid", "test"):
        mask = splits == name
        counts[name] = int(np.isin(hashes[mask], train_hashes).sum())
    return SharedRows(
        train=int(train.sum()),
        valid=int((splits == "valid").sum()),
        test=int((splits == "test").sum()),
        valid_shared=counts["valid"],
        test_shared=counts["test"],
        repeated_inputs=repeated,
        input_groups=groups,
    )


def check_shared_rows(shared: SharedRows, max_fraction: float) -> None:
    """Fail when more valid or test rows than ``max_fraction`` duplicate a train row."""
    problems = []
    for name, count, total, fraction in (
        ("valid", shared.valid_shared, shared.valid, shared.valid_fraction),
        ("test", shared.test_shared, shared.test, shared.test_fraction),
    ):
        if count and fraction > max_fraction:
            problems.append(f"{count} of {total} {name} rows ({fraction:.2%}) are identical to a train row")
    if problems:
        raise LeakageError(
            "rows shared between splits (every column but the id is equal): " + "; ".join(problems)
            + f"; the limit is [split] max_shared_fraction = {max_fraction}",
            hint="split by content ([split] by = \"content\"): rows with identical inputs then share a split and "
            "none can leak; or remove the duplicated rows from the data",
        )
