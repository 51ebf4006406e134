"""Stable split assignment: train, valid and test.

By hash (the default): a row's split depends only on its id and the salt.
``u = XXH3-64(salt + "\\x1f" + str(id)) / 2**64`` is uniform on [0, 1); the
row is ``test`` if ``u < test``, ``valid`` if ``u < test + valid``, else
``train``. Appending rows never moves an existing row, and changing the salt
reshuffles everything on purpose.

By content: as by hash, with the 64-bit hash of the row's input values
(:func:`lockstep.data.rows.row_hashes` of the columns the model reads) in
place of the id, so that rows with identical inputs always share a split and
none of them can leak from training into valid or test. A row's split still
never changes when rows are appended.

By time: rows before ``valid_from`` are train, rows from ``valid_from`` to
before ``test_from`` are valid, the rest test (naive cut-offs are read as UTC
for time-zone-aware columns).

Examples
--------
>>> from lockstep.core.config import SplitConfig
>>> import pyarrow as pa
>>> labels = assign_splits(pa.table({"id": list(range(1000))}), "id", SplitConfig())
>>> sorted(set(labels))
['test', 'train', 'valid']
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lockstep.data.rows import row_hashes
from lockstep.data.xxh3 import xxh3_64

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.sections import SplitConfig

__all__ = ["SPLITS", "SPLIT_VALUES", "UNLABELED", "assign_splits", "content_keys", "split_codes",
           "split_unit"]

SPLITS = ("train", "valid", "test")
#: The split of a row whose target is missing in a feature set: it is predicted, never trained or evaluated on.
UNLABELED = "unlabeled"
#: Every value of a feature set's ``split`` column, by code (0 to 3).
SPLIT_VALUES = (*SPLITS, UNLABELED)


def split_unit(ids, salt: str) -> np.ndarray:
    """The uniform number in [0, 1) that decides each id's split.

    Parameters
    ----------
    ids : pyarrow.Array, pyarrow.ChunkedArray or list
        Integer or text ids; an id's decimal text is what is hashed.
    salt : str
    """
    if not isinstance(ids, (pa.Array, pa.ChunkedArray)):
        ids = pa.array([str(i) for i in ids], pa.string())
    keys = pc.binary_join_element_wise(pa.scalar(f"{salt}\x1f"), pc.cast(ids, pa.string()), "")
    return xxh3_64(keys) / float(2**64)


def assign_splits(table: pa.Table, id_column: str, split: SplitConfig,
                  content: list[str] | None = None) -> np.ndarray:
    """The split of every row of ``table``, as an array of ``"train"``, ``"valid"``, ``"test"``.

    Parameters
    ----------
    table : pyarrow.Table
        Must hold ``id_column`` (and ``split.time_column`` for time splits).
    id_column : str
    split : SplitConfig
    content : list of str, optional
        The columns whose values group rows, for ``by = "content"`` (the
        model's raw inputs).

    Returns
    -------
    numpy.ndarray of str
    """
    return np.array(SPLITS, dtype=object)[split_codes(table, id_column, split, content)]


def split_codes(table: pa.Table, id_column: str, split: SplitConfig, content: list[str] | None = None) -> np.ndarray:
    """The split of every row as an int8 code: 0 train, 1 valid, 2 test (``SPLITS[code]``)."""
    if split.by == "time":
        codes = _time_codes(table, split)
    else:
        if split.by == "content":
            if not content:
                raise ValueError("a split by content needs the columns that group rows")
            keys = pa.array(content_keys(table, content))
        else:
            keys = table.column(id_column)
        u = split_unit(keys, split.salt)
        codes = np.where(u < split.test, 2, np.where(u < split.test + split.valid, 1, 0))
    return codes.astype(np.int8)


def content_keys(table: pa.Table, columns: list[str]) -> np.ndarray:
    """The content group of every row: the 64-bit hash of its values in ``columns``, as unsigned integers."""
    return row_hashes(table, list(columns))


def _time_codes(table: pa.Table, split: SplitConfig) -> np.ndarray:
    column = table.column(split.time_column)
    valid_from, test_from = split.cutoffs()
    t = column.type
    if pa.types.is_date(t):
        column = pc.cast(column, pa.timestamp("us"))
        t = column.type
    tz = getattr(t, "tz", None)

    def scalar(value):
        if tz and value.tzinfo is None:

            value = value.replace(tzinfo=UTC)
        return pa.scalar(value, pa.timestamp("us", tz=tz))

    col = pc.cast(column, pa.timestamp("us", tz=tz))
    before_valid = pc.less(col, scalar(valid_from)).to_numpy(zero_copy_only=False)
    before_test = pc.less(col, scalar(test_from)).to_numpy(zero_copy_only=False)
    before_valid = np.asarray(before_valid, dtype=bool)
    before_test = np.asarray(before_test, dtype=bool)
    return np.where(before_valid, 0, np.where(before_test, 1, 2))
