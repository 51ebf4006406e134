"""Rows that break the schema, set aside: the rows kept, and one quarantine record per row set aside.

``lockstep ingest --quarantine`` and ``lockstep predict --quarantine`` both
set rows aside with :func:`set_aside`, so a record says the same things
whichever command wrote it: the source and row number, the id, every rule
the row broke, and its values as they were read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from lockstep.data.schema import ValidationResult, bad_row_mask
from lockstep.store import QuarantineRecord

__all__ = ["set_aside"]


def set_aside(result: ValidationResult, raw_rows: Callable[[list[int]], list[dict[str, Any]]],
              where: Callable[[int], tuple[str, int]], id_column: str | None,
              ) -> tuple[pa.Table, list[QuarantineRecord]]:
    """The validated rows without those that failed, and a quarantine record for each that failed.

    Parameters
    ----------
    result : ValidationResult
        The validation of a table, with row failures.
    raw_rows : callable
        Given the failing rows' positions, their values as read (before conversion).
    where : callable
        Given a row's position, its source's name and its row number there (for people: from 1, or the
        source's own numbering).
    id_column : str or None
        The id column, whose converted value (or, when it did not convert, its text) identifies the row.
    """
    bad = result.bad_rows()
    reasons = result.reasons_by_row()
    ids = result.table.column(id_column).take(pa.array(bad)).to_pylist() if id_column else [None] * len(bad)
    records = []
    for row, raw, ident in zip(bad, raw_rows(bad), ids):
        source, number = where(row)
        if ident is None and id_column:
            ident = raw.get(id_column)
        records.append(QuarantineRecord(source=source, row=number, id=None if ident is None else str(ident),
                                        reasons="; ".join(reasons[row]),
                                        record=json.dumps(raw, default=str, sort_keys=True)))
    return result.table.filter(pa.array(~bad_row_mask(result.table.num_rows, bad))), records
