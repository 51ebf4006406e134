"""Files handed to and from another process (``lockstep predict`` run by ``parity``), in a private folder.

The folder is created empty, readable only by this user, and removed with
everything in it when the block ends, whatever happens inside.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from lockstep.core.lazy import lazy_module

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq
else:  # Arrow (and NumPy with it): imported by the first call that reads or writes data, not by a skip
    pa = lazy_module("pyarrow")
    pq = lazy_module("pyarrow.parquet")


__all__ = ["FileExchange", "file_exchange", "scratch_file"]


class FileExchange:
    """A private folder of named files: tables in, tables out, and the paths to name them to another process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        """Where the file ``name`` is (or will be): for the command line of the other process."""
        return self.folder / name

    def put_table(self, name: str, table: pa.Table) -> Path:
        """Write ``table`` as the Parquet file ``name``; its path."""
        pq.write_table(table, self.path(name))
        return self.path(name)

    def get_table(self, name: str) -> pa.Table:
        """The Parquet file ``name`` that the other process wrote."""
        return pq.read_table(self.path(name))


@contextmanager
def file_exchange(prefix: str = "lockstep-") -> Iterator[FileExchange]:
    """A :class:`FileExchange` in a new private temporary folder, removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        yield FileExchange(Path(folder))


def scratch_file() -> IO[bytes]:
    """An anonymous temporary file (a child process's log), gone when closed."""
    return tempfile.TemporaryFile()
