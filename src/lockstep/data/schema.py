"""Converting raw tables to the declared schema and validating them with pandera.

Two steps, both lazy (every failure is collected, nothing stops at the first):

1. **Conversion**: each declared column is converted to its logical type's
   Arrow type (:data:`lockstep.core.dtypes.DTYPES`). Text is trimmed before it is parsed as a
   number, boolean or date; a value that does not convert is a failure of
   the rule ``dtype <type>`` and becomes missing in the converted table.
   Floating-point NaN becomes missing.
2. **Checks**: the converted table is validated with a pandera schema built
   from ``[data.schema]`` (:func:`pandera_schema`): nullability, ``min`` and
   ``max``, ``allowed`` values. Columns the schema declares but the data
   lacks, and columns the data has but the schema does not declare, are
   failures too.

The result says which rows broke which rules, so that the caller can refuse
the data or quarantine those rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lockstep.core.dtypes import arrow_type
from lockstep.core.errors import SchemaFailure, shown
from lockstep.core.lazy import lazy_module
from lockstep.core.values import plain
from lockstep.data.rules import rules_hold

if TYPE_CHECKING:  # pragma: no cover
    import pandera.pandas as pandera

    from lockstep.core.sections import ColumnSchema, DataConfig
else:  # pandera, imported by the first validation (an up-to-date ingest validates nothing)
    pandera = lazy_module("pandera.pandas")

__all__ = ["INT_LIMIT", "ValidationResult", "convert_table", "pandera_failures", "pandera_schema", "to_pandas",
           "validate_table"]

_MAX_EXAMPLES = 5
#: The largest magnitude of an ``int`` value, on every path (ingest, predict, serve, monitor): 2**53, the
#: largest whole number a float64 holds exactly. Models see numbers as float64, so beyond it two different
#: integers become the same input.
INT_LIMIT = 2**53
INT_RULE = "dtype int (beyond ±2**53, the largest whole number a float64 holds exactly)"
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}




@dataclass
class RowFailure:
    """Rows of one column that broke one rule."""

    column: str
    rule: str
    rows: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)


@dataclass
class ValidationResult:
    """What :func:`validate_table` found.

    Attributes
    ----------
    table : pyarrow.Table
        The declared columns that exist, converted to their logical types
        (failed cells are missing).
    column_failures : list of SchemaFailure
        Failures of whole columns (missing or undeclared); rows cannot be
        quarantined for these.
    row_failures : list of RowFailure
        Failures of individual rows.
    """

    table: pa.Table
    column_failures: list[SchemaFailure] = field(default_factory=list)
    row_failures: list[RowFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.column_failures and not self.row_failures

    def bad_rows(self) -> list[int]:
        """Sorted positions of every row that broke a rule."""
        return sorted({r for f in self.row_failures for r in f.rows})

    def reasons_by_row(self) -> dict[int, list[str]]:
        """For each failing row, the rules it broke with its value."""
        out: dict[int, list[str]] = defaultdict(list)
        for failure in self.row_failures:
            for row, value in zip(failure.rows, failure.values):
                out[row].append(f"{failure.column}: {failure.rule} (got {shown(value)})")
        return dict(out)

    def failures(self, locate) -> list[SchemaFailure]:
        """Every failure as a :class:`SchemaFailure`, rows located by ``locate(row) -> str``."""
        out = list(self.column_failures)
        for f in self.row_failures:
            examples = [(locate(r), v) for r, v in zip(f.rows[:_MAX_EXAMPLES], f.values[:_MAX_EXAMPLES])]
            out.append(SchemaFailure(column=f.column, rule=f.rule, rows=len(f.rows), examples=examples))
        return out


def validate_table(table: pa.Table, data: DataConfig | dict[str, ColumnSchema], *, source: str = "the data",
                   extra_columns: str = "error", keep_dictionary: bool = False) -> ValidationResult:
    """Convert ``table`` to the declared schema and check every rule.

    Parameters
    ----------
    table : pyarrow.Table
        The raw rows, as read.
    data : DataConfig or dict
        The ``[data]`` section (its schema, id and target), or just a schema:
        column name to :class:`~lockstep.core.sections.ColumnSchema`.
    source : str
        How to name the data in messages.
    extra_columns : {"error", "ignore"}
        What to do with columns the schema does not declare.
    keep_dictionary : bool, default False
        Leave dictionary-encoded text encoded in the converted table (the same values; a Parquet input's text
        columns are read that way, and checking and converting their distinct values is cheaper).

    Returns
    -------
    ValidationResult
    """

    declared = data if isinstance(data, dict) else data.columns
    target = None if isinstance(data, dict) else data.target
    id_column = None if isinstance(data, dict) else data.id
    column_failures: list[SchemaFailure] = []
    for name in declared:
        if name not in table.column_names:
            role = " (the target)" if name == target else " (the id column)" if name == id_column else ""
            column_failures.append(SchemaFailure(
                column=name, rule=f"declared in [data.schema]{role} but missing from {source}", rows=0))
    for name in table.column_names:
        if name not in declared and extra_columns == "error":
            column_failures.append(SchemaFailure(
                column=name, rule=f"in {source} but not declared in [data.schema] "
                                  "(declare it, or select columns with [data] sql)", rows=0))

    typed, row_failures = convert_table(table, declared, keep_dictionary=keep_dictionary)
    converted_failed = {(f.column, r) for f in row_failures for r in f.rows}
    row_failures += _check_rules(typed, declared, converted_failed)
    return ValidationResult(table=typed, column_failures=column_failures, row_failures=row_failures)


# --------------------------------------------------------------------------- conversion


def convert_table(table: pa.Table, declared: dict[str, ColumnSchema], *,
                  keep_dictionary: bool = False) -> tuple[pa.Table, list[RowFailure]]:
    """Convert the declared columns ``table`` has to their types, without checking any other rule.

    Values that do not convert become missing and are returned as failures of
    the rule ``dtype <type>``. Monitoring uses this alone: a category the
    schema does not allow, or a value out of range, is what it looks for.
    With ``keep_dictionary``, dictionary-encoded text stays encoded.
    """
    arrays, names, row_failures = [], [], []
    for name, spec in declared.items():
        if name not in table.column_names:
            continue
        column = table.column(name)
        if keep_dictionary and spec.dtype == "str" and pa.types.is_dictionary(column.type) and \
                pa.types.is_string(column.type.value_type):
            arrays.append(column)
            names.append(name)
            continue
        converted, failure = _convert(column, spec, name)
        if spec.dtype == "int":
            converted, beyond = _int_range(converted, name)
            row_failures += [beyond] if beyond is not None else []
        arrays.append(converted)
        names.append(name)
        if failure is not None:
            row_failures.append(failure)
    return (pa.table(arrays, names=names) if arrays else pa.table({})), row_failures


def _int_range(column: pa.ChunkedArray, name: str) -> tuple[pa.ChunkedArray, RowFailure | None]:
    """Integers beyond :data:`INT_LIMIT` made missing, with their failure."""
    bad = pc.fill_null(pc.or_(pc.greater(column, INT_LIMIT), pc.less(column, -INT_LIMIT)), False)
    if not pc.any(bad).as_py():
        return column, None
    return _with_failures(column, bad, pc.if_else(bad, pa.scalar(None, pa.int64()), column), name, INT_RULE)


Converted = tuple[pa.ChunkedArray, "RowFailure | None"]


def _convert(column: pa.ChunkedArray, spec: ColumnSchema, name: str) -> tuple[pa.ChunkedArray, RowFailure | None]:
    """The column as its declared dtype's Arrow type, and the rows that could not be converted."""
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    t = column.type
    if spec.dtype == "str":
        return pc.cast(column, pa.string()), None
    is_text = pa.types.is_string(t) or pa.types.is_large_string(t) or (
        hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t))
    if is_text:  # trimmed, and empty text is missing
        column = pc.utf8_trim_whitespace(column)
        column = pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
    return _CONVERTERS[spec.dtype](column, t, is_text, name)


def _to_float(column: pa.ChunkedArray, t: pa.DataType, is_text: bool, name: str) -> Converted:
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        return _nan_to_null(pc.cast(column, pa.float64())), None
    return _cast_each(column, pa.float64(), name, "dtype float (not a number)", nan_to_null=True)


def _to_int(column: pa.ChunkedArray, t: pa.DataType, is_text: bool, name: str) -> Converted:
    if pa.types.is_integer(t):
        return _cast_each(column, pa.int64(), name, "dtype int (out of the 64-bit range)")
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return _float_to_int(column, name)
    if pa.types.is_boolean(t):
        return pc.cast(column, pa.int64()), None
    return _cast_each(column, pa.int64(), name, "dtype int (not an integer)")


def _to_bool(column: pa.ChunkedArray, t: pa.DataType, is_text: bool, name: str) -> Converted:
    if pa.types.is_boolean(t):
        return column, None
    if pa.types.is_integer(t):
        bad = pc.fill_null(pc.invert(pc.is_in(column, value_set=pa.array([0, 1], t))), False)
        return _with_failures(column, bad, pc.cast(pc.if_else(bad, pa.scalar(None, t), column), pa.bool_()),
                              name, "dtype bool (only 0 and 1 are booleans)")
    if is_text:
        lowered = pc.utf8_lower(column)
        is_true = pc.is_in(lowered, value_set=pa.array(sorted(_TRUE)))
        is_false = pc.is_in(lowered, value_set=pa.array(sorted(_FALSE)))
        bad = pc.and_(pc.is_valid(column), pc.invert(pc.or_(is_true, is_false)))
        out = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
        return _with_failures(column, bad, out, name, "dtype bool (expected true/false, yes/no or 1/0)")
    return _cast_each(column, pa.bool_(), name, "dtype bool")


def _to_datetime(column: pa.ChunkedArray, t: pa.DataType, is_text: bool, name: str) -> Converted:
    if pa.types.is_timestamp(t):
        target = arrow_type("datetime", "UTC" if t.tz else None)
        return _cast_each(column, target, name, "dtype datetime (out of range)", safe=False)
    if pa.types.is_date(t):
        return pc.cast(column, arrow_type("datetime")), None
    if is_text:
        return _parse_datetimes(column, name)
    return _cast_each(column, arrow_type("datetime"), name, "dtype datetime (not a date and time)")


def _to_date(column: pa.ChunkedArray, t: pa.DataType, is_text: bool, name: str) -> Converted:
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return pc.cast(column, pa.date32()), None
    return _cast_each(column, pa.date32(), name, "dtype date (not a date)")


#: One converter per declared dtype but ``str``: (column, its Arrow type, whether it is text, name).
_CONVERTERS = {"float": _to_float, "int": _to_int, "bool": _to_bool, "datetime": _to_datetime, "date": _to_date}


def _nan_to_null(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    if pc.any(pc.is_nan(arr)).as_py():
        return pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
    return arr


def _with_failures(source: pa.ChunkedArray, bad: pa.ChunkedArray, converted: pa.ChunkedArray,
                   name: str, rule: str) -> tuple[pa.ChunkedArray, RowFailure | None]:
    mask = np.asarray(bad.to_numpy(zero_copy_only=False), dtype=bool)
    if not mask.any():
        return converted, None
    rows = np.flatnonzero(mask)
    values = source.take(rows[:_MAX_EXAMPLES]).to_pylist()
    return converted, RowFailure(column=name, rule=rule, rows=rows.tolist(), values=values)


def _cast_each(column: pa.ChunkedArray, target: pa.DataType, name: str, rule: str, *,
               safe: bool = True, nan_to_null: bool = False) -> tuple[pa.ChunkedArray, RowFailure | None]:
    """Cast; if some values do not convert, find them (by distinct value) and make them missing."""
    try:
        out = pc.cast(column, target, safe=safe)
        return (_nan_to_null(out) if nan_to_null else out), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    bad_values = []
    for value in pc.unique(column).drop_null():
        try:
            pc.cast(pa.array([value.as_py()], column.type), target, safe=safe)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad_values.append(value.as_py())
    bad = pc.is_in(column, value_set=pa.array(bad_values, column.type))
    cleaned = pc.if_else(bad, pa.scalar(None, column.type), column)
    out = pc.cast(cleaned, target, safe=safe)
    if nan_to_null:
        out = _nan_to_null(out)
    return _with_failures(column, bad, out, name, rule)


def _float_to_int(column: pa.ChunkedArray, name: str) -> tuple[pa.ChunkedArray, RowFailure | None]:
    as_float = _nan_to_null(pc.cast(column, pa.float64()))
    whole = pc.and_(pc.equal(pc.floor(as_float), as_float), pc.less_equal(pc.abs(as_float), 2.0**53))
    bad = pc.fill_null(pc.invert(whole), False)
    cleaned = pc.if_else(bad, pa.scalar(None, pa.float64()), as_float)
    return _with_failures(column, bad, pc.cast(cleaned, pa.int64()), name, "dtype int (not a whole number)")


def _parse_datetimes(column: pa.ChunkedArray, name: str) -> tuple[pa.ChunkedArray, RowFailure | None]:
    """ISO 8601 text to timestamps; values with a zone offset become UTC."""
    has_zone = pc.fill_null(pc.match_substring_regex(column, r"(Z|[+-]\d\d:?\d\d)$"), False)
    if pc.any(has_zone).as_py():
        if not pc.all(pc.or_(has_zone, pc.is_null(column))).as_py():
            return _cast_each(column, arrow_type("datetime", "UTC"), name,
                              "dtype datetime (mixes values with and without a time zone)")
        return _cast_each(column, arrow_type("datetime", "UTC"), name, "dtype datetime (not a date and time)")
    return _cast_each(column, arrow_type("datetime"), name, "dtype datetime (not a date and time)")


# --------------------------------------------------------------------------- pandera checks


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas with nullable integer and boolean dtypes and datetime64 dates."""
    mapping = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return table.to_pandas(types_mapper=mapping.get, date_as_object=False)


def pandera_schema(columns: dict[str, ColumnSchema], *, dtypes: bool = True):
    """The pandera ``DataFrameSchema`` of ``[data.schema]``.

    Parameters
    ----------
    columns : dict
        ``[data.schema]``: column name to :class:`~lockstep.core.sections.ColumnSchema`.
    dtypes : bool, default True
        Include the pandas dtypes (with ``coerce=True``). lockstep converts
        types itself before checking, so it validates with ``dtypes=False``;
        with ``True`` the schema is usable on your own DataFrames, for example
        in data tests.

    Returns
    -------
    pandera.pandas.DataFrameSchema
    """
    pandas_dtypes = {"int": "Int64", "float": "float64", "bool": "boolean", "str": "str",
                     "datetime": "datetime64[us]", "date": "datetime64[ms]"}
    schema_columns = {}
    for name, spec in columns.items():
        checks = [check for check, _ in _checks(spec, tz_aware=False)]
        schema_columns[name] = pandera.Column(
            pandas_dtypes[spec.dtype] if dtypes else None,
            checks=checks,
            nullable=spec.nullable,
            coerce=dtypes,
            required=True,
        )
    return pandera.DataFrameSchema(schema_columns, strict=dtypes, coerce=dtypes, name="lockstep raw schema")


def _bound(value: Any, dtype: str, tz_aware: bool) -> Any:
    if dtype in ("datetime", "date"):
        ts = pd.Timestamp(value)
        if tz_aware and ts.tzinfo is None:
            ts = ts.tz_localize("UTC")
        return ts
    return value


def _checks(spec: ColumnSchema, tz_aware: bool) -> list[tuple[Any, str]]:
    """pandera checks of one column, each with the rule as lockstep words it."""
    out = []
    if spec.min is not None:
        out.append((pandera.Check.ge(_bound(spec.min, spec.dtype, tz_aware)), f"min {shown(spec.min)}"))
    if spec.max is not None:
        out.append((pandera.Check.le(_bound(spec.max, spec.dtype, tz_aware)), f"max {shown(spec.max)}"))
    if spec.allowed is not None:
        values = ", ".join(shown(v) for v in spec.allowed[:8]) + (", ..." if len(spec.allowed) > 8 else "")
        out.append((pandera.Check.isin(list(spec.allowed)), f"allowed values [{values}]"))
    return out


def _check_rules(typed: pa.Table, declared: dict[str, ColumnSchema],
                 converted_failed: set[tuple[str, int]]) -> list[RowFailure]:
    """The rows that break a rule: none when Arrow vouches for every row (:func:`rules_hold`), else pandera's."""
    if typed.num_columns == 0 or rules_hold(typed, declared):
        return []  # pandera, and the table in pandas, only to name the rows that break a rule
    return pandera_failures(typed, declared, converted_failed)


def pandera_failures(typed: pa.Table, declared: dict[str, ColumnSchema],
                     converted_failed: set[tuple[str, int]]) -> list[RowFailure]:
    """The rows of ``typed`` that break a rule, found by pandera on the table in pandas (conversion failures,
    ``converted_failed``, are not reported again as missing values). Dictionary-encoded text is decoded first:
    pandera sees plain text, as it always has."""
    frame = to_pandas(_decoded(typed))
    rules: dict[tuple[str, int | None], str] = {}
    columns = {}
    for name in typed.column_names:
        spec = declared[name]
        tz_aware = bool(getattr(typed.schema.field(name).type, "tz", None))
        checks = _checks(spec, tz_aware)
        for number, (_, rule) in enumerate(checks):
            rules[(name, number)] = rule
        columns[name] = pandera.Column(None, checks=[c for c, _ in checks], nullable=spec.nullable)
    schema = pandera.DataFrameSchema(columns, strict=False, coerce=False)
    try:
        schema.validate(frame, lazy=True)
        return []
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    grouped: dict[tuple[str, str], RowFailure] = {}
    for column, check, number, value, index in zip(cases["column"], cases["check"], cases["check_number"],
                                                   cases["failure_case"], cases["index"]):
        if index is None or column is None or (isinstance(index, float) and index != index):
            continue
        row = int(index)
        if check == "not_nullable":
            if (column, row) in converted_failed:
                continue  # already reported as a conversion failure
            rule = "not nullable (missing value)"
            value = None
        else:
            key_number = None if number is None or number != number else int(number)
            rule = rules.get((column, key_number), str(check))
        failure = grouped.setdefault((column, rule), RowFailure(column=column, rule=rule))
        failure.rows.append(row)
        failure.values.append(plain(value, nan_as_none=False))
    out = []
    for failure in grouped.values():
        order = sorted(range(len(failure.rows)), key=failure.rows.__getitem__)
        failure.rows = [failure.rows[i] for i in order]
        failure.values = [failure.values[i] for i in order]
        out.append(failure)
    return out




def _decoded(table: pa.Table) -> pa.Table:
    """``table`` with its dictionary-encoded columns as their plain values."""
    for number, field_ in enumerate(table.schema):
        if pa.types.is_dictionary(field_.type):
            table = table.set_column(number, field_.name, pc.cast(table.column(number), field_.type.value_type))
    return table


def bad_row_mask(n: int, rows: list[int]) -> np.ndarray:
    """A boolean mask of length ``n``, True at ``rows``."""
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask
