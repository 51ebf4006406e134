"""A Delta table whose versions each carry their metadata: raw snapshots and feature sets are two of them.

Every write is one atomic Delta commit holding the rows and, in the
commit's metadata, the version's description (fingerprint, lineage, counts);
listing the versions reads only that metadata, never the rows.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TypeVar

from lockstep.core.errors import NotFoundError
from lockstep.core.lazy import lazy_module
from lockstep.store import _delta, parts
from lockstep.store.location import StorePath, as_store_path
from lockstep.store.parts import PartFile, Partition

if TYPE_CHECKING:
    import pyarrow as pa
else:  # Arrow (and NumPy with it): imported by the first call that reads or writes data, not by a skip
    pa = lazy_module("pyarrow")

__all__ = ["VersionMetadata", "VersionedTable"]


class VersionMetadata(Protocol):
    """What a version's description must do: come from, and go to, its commit's metadata."""

    @property
    def version(self) -> int: ...

    @classmethod
    def from_metadata(cls, version: int, meta: dict[str, Any]) -> Self: ...

    def to_metadata(self) -> dict[str, Any]: ...


InfoT = TypeVar("InfoT", bound=VersionMetadata)


class VersionedTable(Generic[InfoT]):
    """The versions of one Delta table, each described by an ``InfoT``.

    Subclasses set :attr:`info_type` and the words of the messages.

    Parameters
    ----------
    path : Path
        The table's folder.
    """

    info_type: type[InfoT]
    #: What one version is called, for messages ("raw snapshot").
    noun = "version"
    #: The message and hint when the table has no version yet.
    empty = ("no version exists yet", "")
    #: The hint when a version does not exist.
    missing_hint = ""

    def missing(self, version: int) -> str:
        """The message for a version that does not exist (the versions that do are added to it)."""
        return f"{self.noun} {version} does not exist"

    def __init__(self, path: StorePath) -> None:
        self.path = as_store_path(path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def list(self) -> builtins.list[InfoT]:
        """Every version, oldest first."""
        return [self.info_type.from_metadata(v, m) for v, m in _delta.commit_metadata(self.path).items()]

    def latest(self) -> InfoT | None:
        """The newest version, or ``None`` when there is none yet."""
        infos = self.list()
        return infos[-1] if infos else None

    def info(self, version: int | None = None) -> InfoT:
        """Version ``version`` (default: the latest).

        Raises
        ------
        NotFoundError
            If there is no such version; the message lists those that exist.
        """
        infos = self.list()
        if not infos:
            raise NotFoundError(self.empty[0], hint=self.empty[1])
        if version is None:
            return infos[-1]
        for info in infos:
            if info.version == version:
                return info
        known = ", ".join(str(i.version) for i in infos)
        raise NotFoundError(f"{self.missing(version)} (versions: {known})", hint=self.missing_hint)

    def read(self, version: int | None = None, columns: builtins.list[str] | None = None, *,
             text_as_dictionary: bool = False) -> pa.Table:
        """The rows of version ``version`` (default: the latest), in the order they were written.

        With ``text_as_dictionary``, text columns come back dictionary-encoded,
        as Parquet stores them: faster, and the same logical table.
        """
        info = self.info(version)
        return _delta.to_table(self.path, info.version, columns, text_as_dictionary=text_as_dictionary)

    def write(self, table: pa.Table, info: InfoT) -> InfoT:
        """Write ``table`` as a new version, atomically; return its info with the version set."""
        _delta.write_table(self.path, table, info.to_metadata())
        version = _delta.open_table(self.path).version()
        return self.info_type.from_metadata(version, info.to_metadata())

    def partitions(self, version: int | None = None,
                   rows: int = 1_000_000) -> tuple[builtins.list[Partition], pa.Schema]:
        """Version ``version`` (default: the latest) cut into runs of at most ``rows`` rows, in row order, and the
        schema to read them with (see :mod:`lockstep.store.parts`)."""
        return parts.partitions(self.path, self.info(version).version, rows)

    def read_partition(self, partition: Partition, schema: pa.Schema, *,
                       text_as_dictionary: bool = False) -> pa.Table:
        """The rows of one partition (from :meth:`partitions`)."""
        return parts.read_partition(self.path, partition, schema, text_as_dictionary=text_as_dictionary)

    def write_part(self, table: pa.Table, name: str) -> PartFile:
        """Write one part of a version to come (see :meth:`commit_parts`)."""
        return parts.write_part(self.path, table, name)

    def read_part(self, part: PartFile) -> pa.Table:
        return parts.read_part(self.path, part)

    def discard_parts(self, names: builtins.list[str]) -> None:
        """Remove parts written for a version that will not be committed."""
        parts.discard_parts(self.path, names)

    def commit_parts(self, written: builtins.list[PartFile], schema: pa.Schema, info: InfoT) -> InfoT:
        """Make the parts, in order, a new version; its info with the version set."""
        version = parts.commit_parts(self.path, written, schema, info.to_metadata())
        return self.info_type.from_metadata(version, info.to_metadata())
