"""Copying a store's tables to another store (a folder or S3), every version, byte for byte.

A Delta table is its files: the data files and the log of commits that list
them, all named relative to the table. Copying every file verbatim gives a
table with the same versions, the same commit metadata (lockstep's
fingerprints and lineage) and the same rows. Each table is copied data files
first and then its log, commit by commit, so a reader of the destination
never sees a version whose files are not there yet.

A copy can be repeated: a file the destination already holds with the same
bytes (a log entry) or size (a data file, named by a random id) is skipped,
so a second push after more work copies only the new versions, and a push
that was interrupted goes on where it stopped. A destination table whose
history is not the source's (another project, or versions written there
since) is refused before anything is written.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lockstep.core.errors import StoreError, UserError
from lockstep.core.lazy import lazy_module
from lockstep.store import _delta
from lockstep.store.location import RemotePath, StorePath

if TYPE_CHECKING:
    import pyarrow.fs as fs
else:  # Arrow (and NumPy with it): imported by the first call that reads or writes data, not by a skip
    fs = lazy_module("pyarrow.fs")

__all__ = ["TableCopy", "copy_tables", "plan_tables", "store_tables"]

_LOG = "_delta_log"
_CHUNK = 8 << 20

#: Called with (bytes copied so far, bytes to copy, the table being copied).
Progress = Callable[[int, int, str], None]


@dataclass
class TableCopy:
    """What a push does (or did) to one table."""

    table: str
    versions: int
    files: int
    bytes: int
    #: Files the destination already held (an earlier push).
    skipped: int = 0
    to_copy: list[tuple[str, int]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, int | str]:
        return {"table": self.table, "versions": self.versions, "files": self.files, "bytes": self.bytes,
                "copied": self.files - self.skipped, "already_there": self.skipped}


def _files(filesystem: fs.FileSystem, where: StorePath) -> dict[str, int]:
    """Every file under the filesystem's root, by relative path, with its size (empty when there is none)."""
    try:
        infos = filesystem.get_file_info(fs.FileSelector("", recursive=True, allow_not_found=True))
    except OSError as exc:
        if isinstance(where, RemotePath):
            raise _delta._remote_error(exc, where, "list") from None
        raise StoreError(f"cannot list the store {where}: {exc}") from None
    return {info.path.lstrip("/"): int(info.size or 0) for info in infos if info.type == fs.FileType.File}


def store_tables(root: StorePath) -> dict[str, dict[str, int]]:
    """The Delta tables of a store (``raw``, ``features/churn``, ...), each with its files and their sizes.

    A table is a folder holding a ``_delta_log``; the other files of a store
    (locks, the embedded registry, audit records not yet compacted) are not
    tables and are not listed.
    """
    files = _files(_delta._filesystem(root), root)
    tables: dict[str, dict[str, int]] = {}
    for path in files:
        parts = path.split("/")
        if _LOG in parts:
            tables.setdefault("/".join(parts[: parts.index(_LOG)]), {})
    for path, size in files.items():
        for table in tables:
            if path.startswith(f"{table}/") and not path.endswith(".tmp"):
                tables[table][path[len(table) + 1:]] = size
    return dict(sorted(tables.items()))


def _log_order(name: str) -> tuple[int, str]:
    """Data files first, then the log's commits and checkpoints in order, ``_last_checkpoint`` last."""
    if not name.startswith(f"{_LOG}/"):
        return (0, name)
    return (2, name) if name.endswith("_last_checkpoint") else (1, name)


def plan_tables(source: StorePath, destination: StorePath) -> list[TableCopy]:
    """What copying ``source``'s tables to ``destination`` takes, checked before anything is written.

    Raises
    ------
    UserError
        If a destination table holds a commit the source does not have, or
        one with other contents: it is another table.
    """
    source_tables, target_tables = store_tables(source), store_tables(destination)
    source_fs, target_fs = _delta._filesystem(source), _delta._filesystem(destination)
    plans = []
    for table, files in source_tables.items():
        there = target_tables.get(table, {})
        for name in sorted(n for n in there if n.startswith(f"{_LOG}/") and n.endswith(".json")):
            if name not in files:
                raise UserError(f"the destination {destination}/{table} has commit {posixpath.basename(name)}, which "
                                f"the source {source}/{table} does not: it is another table, or was written since "
                                "the last push", hint="push into an empty prefix or folder")
            if _read(target_fs, f"{table}/{name}") != _read(source_fs, f"{table}/{name}"):
                raise UserError(f"the destination {destination}/{table} has another commit "
                                f"{posixpath.basename(name)} than the source: it is another table",
                                hint="push into an empty prefix or folder")
        todo = [(name, size) for name, size in sorted(files.items(), key=lambda item: _log_order(item[0]))
                if there.get(name) != size]
        versions = sum(1 for n in files if n.startswith(f"{_LOG}/") and n.endswith(".json"))
        plans.append(TableCopy(table, versions, len(files), sum(files.values()), len(files) - len(todo), todo))
    return plans


def _read(filesystem: fs.FileSystem, path: str) -> bytes:
    with filesystem.open_input_stream(path) as stream:
        return bytes(stream.read())


def copy_tables(source: StorePath, destination: StorePath, plans: list[TableCopy],
                progress: Progress | None = None) -> None:
    """Copy the files :func:`plan_tables` listed, table by table, data files before the log; then check
    that every destination table has the source's versions and commit metadata.

    Raises
    ------
    StoreError
        If a file cannot be copied, or the copy does not read back as the source.
    """
    source_fs, target_fs = _delta._filesystem(source), _delta._filesystem(destination)
    total = sum(size for plan in plans for _, size in plan.to_copy)
    done = 0
    for plan in plans:
        for name, size in plan.to_copy:
            _copy_file(source_fs, target_fs, f"{plan.table}/{name}", destination)
            done += size
            if progress is not None:
                progress(done, total, plan.table)
        _check_table(source, destination, plan.table)


def _copy_file(source_fs: fs.FileSystem, target_fs: fs.FileSystem, path: str, destination: StorePath) -> None:
    """One file, streamed; on a local disk written under a temporary name and renamed into place."""
    local = not isinstance(destination, RemotePath)
    parent = posixpath.dirname(path)
    target = f"{path}.partial" if local else path
    try:
        if local and parent:
            target_fs.create_dir(parent, recursive=True)
        with source_fs.open_input_stream(path) as reader, target_fs.open_output_stream(target) as writer:
            while chunk := reader.read(_CHUNK):
                writer.write(chunk)
        if local:
            target_fs.move(target, path)
    except OSError as exc:
        if isinstance(destination, RemotePath):
            raise _delta._remote_error(exc, destination, f"copy {path} to") from None
        raise StoreError(f"cannot copy {path} to {destination}: {exc}",
                         hint="check that the destination can be written and has room") from None


def _check_table(source: StorePath, destination: StorePath, table: str) -> None:
    """The destination table has the source's versions, with the same lockstep metadata, and its latest
    version's files are all there with the sizes its log records."""
    source_meta = _delta.commit_metadata(_join(source, table))
    copied = _join(destination, table)
    if _delta.commit_metadata(copied) != source_meta:
        raise StoreError(f"the copy of {table} in {destination} does not read back with the source's versions "
                         "and metadata", hint="push again: files already copied are skipped")
    _delta.dataset(copied)  # checks every data file of the latest version against the log


def _join(root: StorePath, relative: str) -> StorePath:
    path = root
    for part in relative.split("/"):
        path = path / part
    return path
