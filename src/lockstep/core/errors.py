"""The exceptions lockstep raises.

Every error lockstep raises on purpose is a :class:`LockstepError`; catch
that one class to handle them all. The tree::

    LockstepError                 base class, exit code 1 in the CLI
    ├── UserError                 the user can fix it: exit code 2, no traceback
    │   ├── ConfigError           lockstep.toml is missing, not TOML, or invalid
    │   ├── ProjectError          the project folder is not usable (exists, missing)
    │   ├── SourceError           the raw data cannot be read (missing, empty, bad CSV)
    │   ├── SchemaValidationError rows or columns break the declared schema
    │   ├── LeakageError          duplicate ids, target used as a feature, rows shared across splits
    │   ├── CodeError             the code lockstep.toml names cannot be imported or called
    │   ├── PipelineError         a pipeline breaks its contract (output, statelessness)
    │   ├── NotFoundError         an unknown version or artifact was asked for
    │   ├── FileSystemError       the file system refused: a full disk, a read-only store, no permission
    │   └── IntegrityError        a stored model is not what was registered (changed files, a wrong
    │                             fingerprint or signature, unrecorded code): refused, never run
    ├── StoreError                the store is damaged or cannot be written (exit code 1)
    └── InternalError             a bug in lockstep itself, even inside a call into the user's code (exit 1)

Messages are short and name the file, key, column or row at fault; where
there is an obvious fix, :attr:`LockstepError.hint` says what to do.
"""

from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CodeError",
    "ConfigError",
    "LeakageError",
    "LockstepError",
    "NotFoundError",
    "PipelineError",
    "ProjectError",
    "SchemaFailure",
    "SchemaValidationError",
    "ServiceError",
    "SourceError",
    "StoreError",
    "FileSystemError",
    "IntegrityError",
    "InternalError",
    "UserError",
    "shown",
]


def shown(value: object) -> str:
    """A value as a message shows it to people: ``"Paris"``, ``2016-07-02``, ``3``, ``0.25``, ``missing``.

    NumPy scalars are shown as the Python numbers they are, dates and times
    in ISO form, text in double quotes; never a Python repr such as
    ``np.int64(1)`` or ``datetime.date(2016, 7, 2)``.

    Examples
    --------
    >>> import datetime, numpy as np
    >>> [shown(v) for v in (np.int64(1), datetime.date(2016, 7, 2), "Paris", None, float("nan"), 0.25)]
    ['1', '2016-07-02', '"Paris"', 'missing', 'missing', '0.25']
    """
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if value is None or (isinstance(value, float) and value != value):
        return "missing"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


class LockstepError(Exception):
    """Base class of every error lockstep raises on purpose.

    Parameters
    ----------
    message : str
        What went wrong, naming the file, key, column or row at fault.
    hint : str, optional
        How to fix it.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nHint: {self.hint}"
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable description of the error."""
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}


class UserError(LockstepError):
    """An error the user can fix; the CLI prints it without a traceback and exits 2."""

    exit_code = 2


class FileSystemError(UserError):
    """The file system refused a read or a write: a full disk, a read-only folder, no permission.

    Not a bug in lockstep: the message names the path and the reason, and
    nothing half-written is left behind.
    """

    @classmethod
    def from_os_error(cls, exc: OSError, doing: str, path: object = None) -> FileSystemError:
        """``cannot <doing> <path>: <reason>`` with a hint for the common reasons."""
        where = path if path is not None else exc.filename
        reason = exc.strerror or str(exc)
        hints = {errno.ENOSPC: "the disk is full: free space on it, or move the store ([project] store)",
                 errno.EDQUOT: "the disk quota is exhausted: free space, or move the store ([project] store)",
                 errno.EACCES: "this user lacks the permission: fix the permissions, or run as the owner",
                 errno.EPERM: "this user lacks the permission: fix the permissions, or run as the owner",
                 errno.EROFS: "the file system is read-only: mount it read-write, or move the store"}
        return cls(f"cannot {doing} {where}: {reason}" if where else f"cannot {doing}: {reason}",
                   hint=hints.get(exc.errno) if exc.errno is not None else None)


    @classmethod
    def of(cls, exc: BaseException, doing: str, path: object = None) -> FileSystemError | None:
        """The file-system error behind ``exc``, or None if it is something else.

        ``exc`` is an :class:`OSError` (full disk, no permission, read-only
        file system), an error from Rust code such as deltalake's, whose
        message carries the reason as ``(os error N)``, or SQLite's "database
        or disk is full" and "attempt to write a readonly database".
        """
        reasons = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}
        if isinstance(exc, OSError) and exc.errno in reasons:
            return cls.from_os_error(exc, doing, path)
        text = str(exc)
        # Rust's io::Error, shown or debugged; Arrow's "[errno N]"
        found = re.search(r"\(os error (\d+)\)|Os \{ code: (\d+)|\[errno (\d+)\]", text)
        number = int(next(g for g in found.groups() if g)) if found else None
        if "database or disk is full" in text:  # SQLite (the MLflow registry, the audit index)
            number = errno.ENOSPC
        elif "attempt to write a readonly database" in text:  # a read-only mount, or no permission
            number = errno.EROFS if path is None or _read_only_mount(path) else errno.EACCES
        if number in reasons:
            return cls.from_os_error(OSError(number, os.strerror(number)), doing, path)
        return None


def _read_only_mount(path: object) -> bool:
    """Whether ``path`` (or its nearest existing parent) is on a file system mounted read-only."""
    where = Path(str(path))
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        return bool(os.statvfs(where).f_flag & os.ST_RDONLY)
    except OSError:
        return True


class ConfigError(UserError):
    """``lockstep.toml`` is missing, is not valid TOML or breaks the configuration model."""


class ProjectError(UserError):
    """The project folder cannot be used as asked (for example it already has a project)."""


class SourceError(UserError):
    """The raw data source cannot be read: missing, empty, mis-delimited, badly encoded."""


class LeakageError(UserError):
    """A check against leakage between the target, the features and the splits failed."""


class CodeError(UserError):
    """The code that ``lockstep.toml`` names cannot be found, imported or called."""


class PipelineError(UserError):
    """A feature or model pipeline breaks its contract.

    For example its output is not a DataFrame with the input's rows, or a
    step of a feature pipeline learns from the data.
    """


class NotFoundError(UserError):
    """A version or artifact that was asked for does not exist."""


class StoreError(LockstepError):
    """The store cannot be read or written; this is not something the user did."""


class ServiceError(UserError):
    """A shared service cannot be reached or refuses lockstep: an S3 endpoint, bucket or credential, a database,
    an MLflow tracking server. The message names which; the address or credentials are the user's to fix."""


class IntegrityError(UserError):
    """A stored model, bundle or ONNX file is not what was registered: it is refused before it can run.

    Changed files, a fingerprint or signature that does not match, code that
    was not recorded, types that were not trusted. Catch it apart from other
    user errors to alert on tampering; the CLI exits 2 (restore or retrain).
    """


class InternalError(LockstepError):
    """A bug in lockstep: an error raised by lockstep's own code, not by the user's data, code or settings."""


@dataclass(frozen=True)
class SchemaFailure:
    """One rule of the schema broken by one or more rows (or by a whole column).

    Attributes
    ----------
    column : str or None
        The column at fault, ``None`` for table-level failures.
    rule : str
        The rule, for example ``"min 0"``, ``"allowed values"``, ``"not nullable"``.
    rows : int
        How many rows break the rule (0 for column-level failures).
    examples : list of tuple
        Up to five ``(location, value)`` pairs; the location names the file
        and line where it is known.
    """

    column: str | None
    rule: str
    rows: int
    examples: list[tuple[str, object]] = field(default_factory=list)

    def describe(self) -> str:
        """One line for humans."""
        where = f"column '{self.column}'" if self.column else "table"
        if not self.rows:
            return f"{where}: {self.rule}"
        examples = ", ".join(f"{loc} ({shown(value)})" for loc, value in self.examples)
        plural = "row" if self.rows == 1 else "rows"
        return f"{where}: {self.rule}: {self.rows} {plural}, e.g. {examples}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "rule": self.rule,
            "rows": self.rows,
            "examples": [{"location": loc, "value": _jsonable(v)} for loc, v in self.examples],
        }


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class SchemaValidationError(UserError):
    """The data breaks the declared schema; nothing was written.

    Parameters
    ----------
    source : str
        The data source that was validated.
    failures : list of SchemaFailure
        Every broken rule, collected at once (lazy validation).
    """

    def __init__(self, source: str, failures: list[SchemaFailure], *, hint: str | None = None):
        self.source = source
        self.failures = failures
        lines = [f"{source}: the data breaks the schema in lockstep.toml ({len(failures)} rule(s)):"]
        lines += [f"  - {f.describe()}" for f in failures]
        super().__init__(
            "\n".join(lines),
            hint=hint
            or "fix the data, widen [data.schema] in lockstep.toml, "
            "or run `lockstep ingest --quarantine` to set failing rows aside",
        )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["failures"] = [f.to_dict() for f in self.failures]
        return out
