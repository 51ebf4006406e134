"""The feature table: the pipeline's input from raw rows, its output checked, and the stored table assembled.

Used on the whole raw snapshot in this process, and on one partition of it
on a Dask worker (:mod:`lockstep.features.partitioned`): each function works
on any run of rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lockstep.core.dtypes import dtype_of
from lockstep.core.errors import LeakageError, PipelineError
from lockstep.core.factorize import factorize_objects
from lockstep.core.frames import raw_frame
from lockstep.data.splits import SPLIT_VALUES, UNLABELED, split_codes
from lockstep.features.pipeline import make_transformer, run_pipeline

if TYPE_CHECKING:  # pragma: no cover
    from lockstep.core.config import Config

__all__ = ["IDENTITY", "feature_table", "first_missing_rows", "transform_raw"]

#: The identity pipeline (no ``[features] pipeline``: the raw columns) as messages name it.
IDENTITY = "(identity: the raw columns)"


def transform_raw(config: Config, raw: pa.Table, factory: Callable[[], Any] | None,
                  ref: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pipeline's input frame from raw rows, and the features it computes (output contract checked)."""
    frame = raw_frame(raw, config.data.columns, config.feature_inputs)
    features = run_pipeline(make_transformer(factory, ref), frame, ref)
    _check_names(features, config, ref)
    return frame, features


def feature_table(config: Config, raw: pa.Table, features: pd.DataFrame, id_column: str, target: str, ref: str, *,
                  decoded: bool = True):
    """The stored feature table (id, features, label, split), its feature dtypes, and the split codes.

    With ``decoded=False``, text features stay dictionary-encoded (the same fingerprint): the caller
    decodes them, for example in the thread that writes them.

    A row whose target is missing is in the split ``unlabeled``: it cannot be learned from or scored, so
    training, evaluation, parity and monitoring's reference leave it out (``lockstep predict`` is for it).
    """
    codes = split_codes(raw, id_column, config.split, config.feature_inputs)
    label = raw.column(target)
    if label.null_count or pa.types.is_floating(label.type):
        missing = np.asarray(pc.is_null(label, nan_is_null=True).to_numpy(zero_copy_only=False), dtype=bool)
        codes = np.where(missing, SPLIT_VALUES.index(UNLABELED), codes).astype(np.int8)
    output, dtypes = _assemble(raw, features, id_column, target, codes, ref, decoded)
    return output, dtypes, codes


def first_missing_rows(raw: pa.Table, columns: list[str]) -> list[int | None]:
    """For each column, the first row the pipeline's input has missing, or None: read from Arrow's validity
    and dictionaries, without a scan of the pandas frame's text (:func:`~lockstep.core.frames.raw_frame`'s
    missing values: null, NaN, and empty text)."""
    found: list[int | None] = []
    for name in columns:
        column = raw.column(name)
        missing = None
        if column.null_count:
            missing = pc.is_null(column)
        if pa.types.is_floating(column.type):
            missing = pc.is_nan(column) if missing is None else pc.or_kleene(missing, pc.is_nan(column))
        elif pa.types.is_dictionary(column.type) or pa.types.is_string(column.type) \
                or pa.types.is_large_string(column.type):
            empty = _empty_text(column)
            if empty is not None:
                missing = empty if missing is None else pc.or_kleene(missing, empty)
        row = -1 if missing is None else pc.index(pc.fill_null(missing, True), True).as_py()
        found.append(None if row < 0 else row)
    return found


def _empty_text(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """Where a text column holds "", or None when it never does (looked up in the dictionaries when encoded)."""
    if pa.types.is_dictionary(column.type):
        chunks = []
        for chunk in column.chunks:
            empty = pc.equal(chunk.dictionary, "")
            if not pc.any(empty).as_py():
                chunks.append(pa.repeat(pa.scalar(False), len(chunk)))
                continue
            chunks.append(pc.take(empty, chunk.indices))
        mask = pa.chunked_array(chunks, pa.bool_())
    else:
        mask = pc.equal(column, "")
    return mask if pc.any(mask).as_py() else None


def _check_names(features: pd.DataFrame, config: Config, ref: str) -> None:
    names = [str(c) for c in features.columns]
    target = config.data.target
    if target in names:
        raise LeakageError(f"the feature pipeline {ref!r} outputs a column named like the target '{target}'",
                           hint="features must not contain the answer; drop or rename that column")
    for reserved in (config.data.id_column, "split"):
        if reserved in names:
            raise PipelineError(f"the feature pipeline {ref!r} outputs a column named '{reserved}', which the "
                                "feature table uses for the id or the split", hint="rename that feature")
    if not names:
        raise PipelineError(f"the feature pipeline {ref!r} outputs no columns")


def _text_array(series: pd.Series) -> pa.Array | None:
    """Text to Arrow through its distinct values (one conversion per distinct value, not per row), dictionary-
    encoded; None when the values are not all text (their kinds read from the distinct values alone)."""
    if pd.api.types.is_object_dtype(series.dtype):  # strings shared by many rows: factorized by identity first
        codes, uniques = factorize_objects(series.to_numpy())
    else:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if pd.api.types.infer_dtype(uniques, skipna=True) not in ("string", "empty"):
        return None
    dictionary = pa.array(np.asarray(uniques, dtype=object), pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32(), mask=codes < 0), dictionary)


def _assemble(raw: pa.Table, features: pd.DataFrame, id_column: str, label: str, codes, ref: str,
              decode_text: bool):
    """id, features, label, split as one Arrow table (text dictionary-encoded unless ``decode_text``); feature
    dtypes as logical types."""
    def decoded(column):
        if decode_text and pa.types.is_dictionary(column.type):
            return column.cast(column.type.value_type)
        return column

    arrays, names, dtypes = [decoded(raw.column(id_column))], [id_column], {}
    for name in features.columns:
        series = features[name]
        textual = pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)
        try:
            array = _text_array(series) if textual else None
            array = pa.array(series, from_pandas=True) if array is None else decoded(array)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:  # overflow: an int beyond 64 bits
            raise PipelineError(f"feature {name!r} of {ref!r} mixes types that cannot be stored: {exc}",
                                hint="give every feature one type: numbers, booleans or text") from None
        if pa.types.is_null(array.type):
            array = array.cast(pa.float64())
        arrays.append(array)
        names.append(str(name))
        dtypes[str(name)] = dtype_of(array.type)
    split = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), pa.array(SPLIT_VALUES, pa.string()))
    arrays += [decoded(raw.column(label)), decoded(split)]
    names += [label, "split"]
    return pa.table(arrays, names=names), dtypes
