"""Inputs read by partitions: a Parquet file, a folder or glob of Parquet files, a Delta table, a raw snapshot.

Each is cut into :class:`InputPiece` s, runs of ``rows`` consecutive rows
(across row groups and files), in the order of the input's rows (files in
sorted order). A piece
is a small description that any process can read, so that a Dask worker
reads its own rows: no process reads the whole input. A CSV file is not cut
this way (its rows can only be found by reading it from the start); it is
read in pieces by :func:`lockstep.store.sources.iter_file_batches`.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lockstep.core.errors import SourceError
from lockstep.core.lazy import lazy_module
from lockstep.store import parts
from lockstep.store.location import StorePath
from lockstep.store.parts import Partition

if TYPE_CHECKING:
    import pyarrow as pa
else:  # Arrow (and NumPy with it): imported by the first call that reads or writes data, not by a skip
    pa = lazy_module("pyarrow")

__all__ = ["InputPiece", "PartitionedInput", "is_parquet_input", "parquet_input", "read_piece", "table_input"]

#: Characters that make an input a glob pattern.
_GLOB = set("*?[")


@dataclass(frozen=True)
class InputPiece:
    """A run of the input's rows: read anywhere with :func:`read_piece`; ``schema`` is a table's (None: each file's
    own)."""

    root: StorePath
    partition: Partition
    schema: pa.Schema | None = None

    @property
    def rows(self) -> int:
        return self.partition.rows

    @property
    def offset(self) -> int:
        return self.partition.offset


@dataclass(frozen=True)
class PartitionedInput:
    """An input as pieces: ``name`` as messages show it, the pieces in row order."""

    name: str
    pieces: list[InputPiece]

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.pieces)


def read_piece(piece: InputPiece) -> pa.Table:
    """The rows of one piece (text dictionary-encoded, as Parquet stores it)."""
    return parts.read_partition(piece.root, piece.partition, piece.schema, text_as_dictionary=True)


def is_parquet_input(path: Path) -> bool:
    """Whether ``path`` is read by pieces: a glob, a folder (of Parquet files, or a Delta table) or a Parquet file."""
    text = str(path)
    return bool(_GLOB & set(text)) or path.is_dir() or path.suffix.lower() in (".parquet", ".pq")


def parquet_input(path: Path, name: str, rows: int) -> PartitionedInput:
    """``path`` (a Parquet file, a folder of them, a glob, or a Delta table's folder) as pieces of at most ``rows``.

    Raises
    ------
    SourceError
        When nothing matches, or a matching file is not Parquet (the message names it).
    """
    if path.is_dir() and (path / "_delta_log").is_dir():
        return table_input(path, name, rows)
    if path.is_dir():
        root = path
        files = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path)))
    elif _GLOB & set(str(path)):
        files = sorted(Path(p).resolve() for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        root = Path(_common_folder(files)) if files else path.parent
    else:
        if not path.is_file():
            raise SourceError(f"input file {name} does not exist")
        files, root = [path], path.parent
    if not files:
        raise SourceError(f"no file matches the input {name}", hint="check the path or the pattern")
    for file in files:
        if file.suffix.lower() not in (".parquet", ".pq"):
            raise SourceError(f"the input {name} holds {file}, which is not a Parquet file",
                              hint="a folder or glob of inputs must hold Parquet files only (.parquet)")
    try:
        found = parts.file_partitions(root, [f.relative_to(root).as_posix() for f in files], rows)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SourceError(f"the input {name} has a file that is not readable Parquet: {exc}") from None
    return PartitionedInput(name, [InputPiece(root, partition) for partition in found])


def table_input(path: StorePath, name: str, rows: int, version: int | None = None) -> PartitionedInput:
    """A Delta table's version (default: the latest) as pieces of at most ``rows`` rows."""
    found, schema = parts.partitions(path, version, rows)
    return PartitionedInput(name, [InputPiece(path, partition, schema) for partition in found])


def _hidden(relative: Path) -> bool:
    """Files a dataset's readers skip: hidden ones, and ``_``-prefixed ones (``_SUCCESS``, ``_delta_log``)."""
    return any(part.startswith((".", "_")) for part in relative.parts)


def _common_folder(files: list[Path]) -> str:
    folders = [str(f.resolve().parent) for f in files]
    common = Path(folders[0])
    for folder in folders[1:]:
        while not Path(folder).is_relative_to(common):
            common = common.parent
    return str(common)
