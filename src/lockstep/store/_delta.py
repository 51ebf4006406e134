"""Delta Lake helpers shared by the store's tables.

A lockstep table is a Delta table whose commits carry lockstep's metadata as
JSON under the commit-info key ``lockstep``. Writing the data files and the
metadata is one Delta commit: a write that fails or is interrupted before the
commit leaves the table exactly as it was (the orphaned data files are not
part of any version).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockstep.errors import StoreError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["METADATA_KEY", "TABLE_CONFIGURATION", "commit_metadata", "is_table", "open_table", "read_table",
           "write_table"]

METADATA_KEY = "lockstep"

#: Table properties set when lockstep creates a table. Old commit files are
#: never cleaned up, because they hold lockstep's metadata and time travel
#: to every version must keep working.
TABLE_CONFIGURATION = {
    "delta.enableExpiredLogCleanup": "false",
    "delta.logRetentionDuration": "interval 36500 days",
}

#: One data file per version keeps rows in the order they were written.
_ONE_FILE = 1 << 42


def is_table(path: Path) -> bool:
    return (path / "_delta_log").is_dir()


def open_table(path: Path, version: int | None = None):
    from deltalake import DeltaTable

    try:
        return DeltaTable(str(path), version=version)
    except Exception as exc:  # deltalake raises several unrelated types
        raise StoreError(f"cannot open the Delta table {path}: {exc}") from exc


def read_table(path: Path, version: int, columns: list[str] | None = None, *,
               text_as_dictionary: bool = False) -> pa.Table:
    """The rows of ``version``, in the order they were written."""
    table = open_table(path, version=version)
    if not text_as_dictionary:
        return table.to_pyarrow_table(columns=columns)
    import pyarrow as pa
    import pyarrow.dataset as ds

    schema = table.schema().to_arrow()
    text = [f.name for f in pa.schema(schema) if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(f.type))]
    dataset = table.to_pyarrow_dataset(parquet_read_options=ds.ParquetReadOptions(dictionary_columns=text))
    return dataset.to_table(columns=columns)


def write_table(path: Path, data: pa.Table | pa.RecordBatchReader, metadata: dict[str, Any], *,
                mode: str = "overwrite") -> None:
    """Write ``data`` as one new version of the table at ``path``, with ``metadata`` in the commit.

    The rows are handed to delta-rs as one record batch: given several, it
    writes them in parallel and the file holds them in whatever order the
    threads finished (delta-rs 1.6; see pola-rs/polars#26912), which would
    break "rows in the order they were ingested" and every fingerprint of
    the table. A stream is therefore collected first.
    """
    import pyarrow as pa
    from deltalake import CommitProperties, write_deltalake

    if isinstance(data, pa.RecordBatchReader):
        data = data.read_all()
    data = data.combine_chunks()

    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    if mode == "overwrite":
        kwargs["schema_mode"] = "overwrite"
    if not is_table(path):
        kwargs["configuration"] = TABLE_CONFIGURATION
    write_deltalake(
        str(path),
        data,
        mode=mode,
        target_file_size=_ONE_FILE,
        commit_properties=CommitProperties(custom_metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)}),
        **kwargs,
    )


def commit_metadata(path: Path) -> dict[int, dict]:
    """lockstep's metadata of every version of the table, by version number.

    Versions written by other tools (no lockstep metadata) are left out.
    """
    if not is_table(path):
        return {}
    out: dict[int, dict] = {}
    for entry in open_table(path).history():
        raw = entry.get(METADATA_KEY)
        if raw is None:
            continue
        try:
            meta = json.loads(raw)
        except (TypeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{path}: version {entry.get('version')} has unreadable metadata") from exc
        out[int(entry["version"])] = meta
    return dict(sorted(out.items()))
