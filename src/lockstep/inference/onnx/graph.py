"""A small builder for the ONNX form of a feature pipeline, one tensor per column.

A feature pipeline works on a DataFrame of named columns of mixed types;
ONNX has tensors. :class:`FrameGraph` holds the current columns, each a
tensor of shape ``[N, 1]`` of kind ``double`` (numbers; missing is NaN),
``int64`` (integers that cannot be missing) or ``string`` (missing is the
empty string), and offers the operations transformers need. A transformer
makes itself exportable by implementing ``lockstep_onnx(self, graph)``, which
reads and replaces columns of the graph exactly as its ``transform`` does on
a DataFrame (arithmetic is in double precision, as NumPy's).

String columns can carry a *domain*: the finite set of values they can
hold (from the allowed values of the raw schema, or produced by a step such
as binning). A string-to-string function of a column with a known domain is
exported as a lookup table computed by the transformer's own Python code,
which is why any stateless text normalization can be exported exactly.

Example, the ``lockstep_onnx`` of a transformer adding ``a / b``::

    def lockstep_onnx(self, g):
        g[self.name] = g.div(g.number("a"), g.number("b"))
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

__all__ = ["Column", "FrameGraph", "OnnxExportError", "OPSET"]

#: Opsets of the exported graphs (string ``Equal`` needs 19; skl2onnx supports up to 22 and ``ai.onnx.ml`` 3).
OPSET = {"": 21, "ai.onnx.ml": 3}


class OnnxExportError(Exception):
    """A step of the pipeline cannot be exported; the message names the step and why."""


@dataclass(frozen=True)
class Column:
    """One column of the graph: its tensor's name, kind and, for text, its known values."""

    tensor: str
    kind: str  # "double", "int64", "string" or "datetime" (double microseconds since the epoch)
    domain: frozenset[str] | None = None


@dataclass
class FrameGraph:
    """The ONNX nodes of a feature pipeline, built column by column."""

    columns: dict[str, Column] = field(default_factory=dict)
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    step: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count())

    # ------------------------------------------------------------------ columns

    def add_input(self, name: str, kind: str, domain: frozenset[str] | None = None) -> None:
        """An input column: ``double``, ``int64``, ``string``, or ``datetime`` (a double tensor of microseconds
        since 1970-01-01 UTC, NaN where missing)."""
        elem = {"double": TensorProto.DOUBLE, "int64": TensorProto.INT64, "string": TensorProto.STRING,
                "datetime": TensorProto.DOUBLE}[kind]
        tensor = f"in_{name}"
        self.inputs.append(helper.make_tensor_value_info(tensor, elem, [None, 1]))
        self.columns[name] = Column(tensor, kind, domain)

    def __getitem__(self, name: str) -> Column:
        if name not in self.columns:
            raise OnnxExportError(f"{self.step}: column {name!r} is not in the frame")
        return self.columns[name]

    def __setitem__(self, name: str, column: Column) -> None:
        self.columns[name] = column

    def select(self, names: list[str]) -> None:
        self.columns = {n: self[n] for n in names}

    def drop(self, names: list[str]) -> None:
        for name in names:
            self.columns.pop(name, None)

    def rename(self, mapping: dict[str, str]) -> None:
        self.columns = {mapping.get(n, n): c for n, c in self.columns.items()}

    # ------------------------------------------------------------------ plumbing

    def _name(self, hint: str) -> str:
        return f"{hint}_{next(self._ids)}"

    def _node(self, op: str, inputs: list[str], *, domain: str = "", **attrs: Any) -> str:
        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], domain=domain, **attrs))
        return out

    def _const(self, value: Any, kind: str) -> str:
        name = self._name("const")
        dtype = {"double": np.float64, "int64": np.int64, "bool": np.bool_}.get(kind, object)
        array: np.ndarray = np.asarray(value, dtype=dtype)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def const(self, value: Any, kind: str = "double") -> Column:
        """A constant (broadcast against ``[N, 1]`` columns)."""
        return Column(self._const(value, kind), kind)

    # ------------------------------------------------------------------ numbers

    def number(self, name_or_column: str | Column) -> Column:
        """A column as double (integers converted exactly, as ``pd.to_numeric(...).to_numpy(float64)``)."""
        column = self[name_or_column] if isinstance(name_or_column, str) else name_or_column
        if column.kind == "double":
            return column
        if column.kind == "int64" or column.kind == "bool":
            return Column(self._node("Cast", [column.tensor], to=11), "double")  # 11 = DOUBLE
        if column.kind == "datetime":
            raise OnnxExportError(f"{self.step}: a date or time is used where a number is needed")
        raise OnnxExportError(f"{self.step}: column is text where a number is needed")

    def _binary(self, op: str, a: Column, b: Column) -> Column:
        return Column(self._node(op, [self.number(a).tensor, self.number(b).tensor]), "double")

    def add(self, a: Column, b: Column) -> Column:
        return self._binary("Add", a, b)

    def sub(self, a: Column, b: Column) -> Column:
        return self._binary("Sub", a, b)

    def mul(self, a: Column, b: Column) -> Column:
        return self._binary("Mul", a, b)

    def div(self, a: Column, b: Column) -> Column:
        return self._binary("Div", a, b)

    def pow(self, a: Column, b: Column) -> Column:
        return self._binary("Pow", a, b)

    def floor(self, a: Column) -> Column:
        return Column(self._node("Floor", [self.number(a).tensor]), "double")

    def floor_div(self, a: Column, divisor: float) -> Column:
        """``floor(a / divisor)``; exact for the whole numbers below 2**53 that dates are made of."""
        return self.floor(self.div(a, self.const(float(divisor))))

    def microseconds(self, name_or_column: str | Column) -> Column:
        """A ``datetime`` column as its double tensor of microseconds since 1970-01-01 UTC."""
        column = self[name_or_column] if isinstance(name_or_column, str) else name_or_column
        if column.kind != "datetime":
            raise OnnxExportError(f"{self.step}: a column that is not a date or time is used as one")
        return Column(column.tensor, "double")

    def log(self, a: Column) -> Column:
        return Column(self._node("Log", [self.number(a).tensor]), "double")

    def is_nan(self, a: Column) -> Column:
        return Column(self._node("IsNaN", [self.number(a).tensor]), "bool")

    def is_finite(self, a: Column) -> Column:
        x = self.number(a)
        infinite = self._node("IsInf", [x.tensor])
        bad = self._node("Or", [infinite, self._node("IsNaN", [x.tensor])])
        return Column(self._node("Not", [bad]), "bool")

    def compare(self, op: str, a: Column, b: Column) -> Column:
        """``Less``, ``LessOrEqual``, ``Greater``, ``GreaterOrEqual`` or ``Equal`` on numbers; a bool column."""
        return Column(self._node(op, [self.number(a).tensor, self.number(b).tensor]), "bool")

    def where(self, condition: Column, a: Column, b: Column) -> Column:
        kind = a.kind if a.kind == b.kind else "double"
        ta = a.tensor if a.kind == kind else self.number(a).tensor
        tb = b.tensor if b.kind == kind else self.number(b).tensor
        return Column(self._node("Where", [condition.tensor, ta, tb]), kind,
                      a.domain | b.domain if a.domain is not None and b.domain is not None else None)

    def logical(self, op: str, a: Column, b: Column | None = None) -> Column:
        inputs = [a.tensor] if b is None else [a.tensor, b.tensor]
        return Column(self._node(op, inputs), "bool")

    def to_double(self, condition: Column) -> Column:
        """A bool column as 0.0 / 1.0."""
        return Column(self._node("Cast", [condition.tensor], to=11), "double")

    # ------------------------------------------------------------------ text

    def text(self, name_or_column: str | Column) -> Column:
        column = self[name_or_column] if isinstance(name_or_column, str) else name_or_column
        if column.kind != "string":
            raise OnnxExportError(f"{self.step}: a numeric column is used where text is needed")
        return column

    def equals_text(self, a: Column, value: str) -> Column:
        return Column(self._node("Equal", [self.text(a).tensor, self._const(value, "string")]), "bool")

    def map_text(self, a: Column, func: Any, what: str) -> Column:
        """Apply a Python function to every possible value of a text column (its domain) as a lookup table.

        Missing values (empty strings) stay missing.
        """
        column = self.text(a)
        if column.domain is None:
            raise OnnxExportError(
                f"{self.step}: {what} needs the column's possible values, which are unknown; "
                "declare allowed values for it in [data.schema] so that the step can be tabulated")
        keys = sorted(column.domain)
        values = [func(k) for k in keys]
        if any(not isinstance(v, str) for v in values):
            raise OnnxExportError(f"{self.step}: {what} does not map text to text")
        out = self._node("LabelEncoder", [column.tensor], domain="ai.onnx.ml", keys_strings=[*keys, ""],
                         values_strings=[*values, ""], default_string="")
        return Column(out, "string", frozenset(v for v in values if v != ""))

    def lookup_number(self, a: Column, table: dict[str, float], default: float = float("nan")) -> Column:
        """Text to numbers through a table (values exactly representable in float32 are exact)."""
        column = self.text(a)
        keys = sorted(table)
        values = [float(table[k]) for k in keys]
        if any(np.float32(v) != v for v in values if v == v):
            raise OnnxExportError(f"{self.step}: lookup values must be exactly representable as float32")
        out = self._node("LabelEncoder", [column.tensor], domain="ai.onnx.ml", keys_strings=keys,
                         values_floats=values, default_float=float(default))
        return Column(self._node("Cast", [out], to=11), "double")

    def gather_text(self, labels: list[str], index: Column) -> Column:
        """``labels[index]`` as a text column; an index of -1 gives a missing value."""
        table = self._const([*labels, ""], "string")
        squeezed = self._node("Squeeze", [index.tensor, self._const([1], "int64")])
        gathered = self._node("Gather", [table, squeezed], axis=0)
        out = self._node("Unsqueeze", [gathered, self._const([1], "int64")])
        return Column(out, "string", frozenset(labels))

    def to_int(self, a: Column) -> Column:
        return Column(self._node("Cast", [self.number(a).tensor], to=7), "int64")  # 7 = INT64

    def sum_of(self, columns: list[Column]) -> Column:
        total = self.const(0.0)
        for column in columns:
            total = self.add(total, column)
        return total
