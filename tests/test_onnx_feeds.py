"""The ONNX runtime's tensors built from a request's records equal those built from the same rows as a table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lockstep.core.schema import ModelSchema
from lockstep.core.sections import ColumnSchema
from lockstep.data.infer import infer_draft
from lockstep.data.schema import validate_table
from lockstep.inference.onnx.inputs import onnx_inputs
from lockstep.inference.runtime import input_groups, record_feeds

from .corpus import INIT_CORPUS


def _schema_and_table(key: str) -> tuple[ModelSchema, pa.Table]:
    dataset = INIT_CORPUS[key]
    frame = dataset.frame()
    if key == "hotels":  # a date, and a time with some missing
        frame["arrival_date"] = pd.to_datetime(frame["arrival_date"]).dt.date
        frame["booked_at"] = pd.to_datetime(frame["arrival_date"]) - pd.to_timedelta(frame["lead_time"], unit="D")
        frame.loc[::7, "booked_at"] = pd.NaT
    raw = pa.Table.from_pandas(frame, preserve_index=False)
    draft = infer_draft(raw, target=dataset.target, id_column="row_id", task=dataset.task)
    columns = {name: ColumnSchema(**entry) for name, entry in draft.schema.items()}
    inputs = [name for name in columns if name not in ("row_id", dataset.target)]
    schema = ModelSchema(inputs=inputs, columns={n: columns[n] for n in [*inputs, "row_id"]}, id_column="row_id",
                         target=dataset.target, task=draft.task)
    table = validate_table(raw.drop_columns([dataset.target]), schema.columns).table
    return schema, table


# missing numbers and text (penguins, credit, airquality), a date and a time (hotels), integers only (wine), many texts
@pytest.mark.parametrize("key", ["penguins", "credit", "airquality", "hotels", "wine", "attrition"])
def test_record_feeds_equal_the_table_s(key: str) -> None:
    schema, table = _schema_and_table(key)
    kinds = input_groups(schema)
    assert sum(len(c) for c in kinds.values()) == len(schema.inputs)
    records = table.to_pylist()
    expected = onnx_inputs(schema, table)
    for rows in (records[:1], records[1:2], records):  # one record a request, as served, and a whole batch
        got = record_feeds(rows, kinds)
        want = expected if rows is records else onnx_inputs(schema, pa.Table.from_pylist(rows, schema=table.schema))
        assert list(got) == [f"in_{n}" for kind in kinds.values() for n, _ in kind]
        assert set(got) == set(want)
        for tensor, array in got.items():
            assert array.dtype == want[tensor].dtype and array.shape == (len(rows), 1), tensor
            if array.dtype == object:
                assert array.tolist() == want[tensor].tolist(), tensor
            else:
                assert np.array_equal(array, want[tensor], equal_nan=True), tensor
                assert array.tobytes() == np.ascontiguousarray(want[tensor]).tobytes(), tensor
