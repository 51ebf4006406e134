"""Feature sets: one Delta table per feature set, one version per computation.

The table lives at ``<store>/features/<name>``. Each version holds the id,
the feature columns, the label (named as the target) and the row's split,
and its commit carries a :class:`FeatureInfo`: the fingerprints of every
input (raw snapshot, code, configuration, environment) and of the output.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockstep.core.errors import NotFoundError
from lockstep.store import _delta

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["FeatureInfo", "FeatureTable"]


@dataclass(frozen=True)
class FeatureInfo:
    """What lockstep recorded about one version of a feature set.

    Attributes
    ----------
    version : int
    name : str
        The feature set's name.
    fingerprint : str
        Data fingerprint of the whole version (id, features, label, split).
    rows : int
    columns : list of str
        The feature columns, in order.
    dtypes : dict
        Feature column to logical type.
    id_column, label_column : str
    raw_version : int
    raw_fingerprint : str
    code : dict
        ``ref``, ``files`` (path to fingerprint) and ``fingerprint`` of the feature pipeline's code.
    config_fingerprint : str
        Fingerprint of the configuration that shapes the features.
    environment_fingerprint : str
        Fingerprint of the numerical environment (see :mod:`lockstep.core.environment`).
    environment : dict
        The whole environment, as captured.
    inputs : str
        Fingerprint of all the inputs above plus lockstep's version: the cache key.
    parity : dict
        The stateless check: rows checked, identical.
    splits : dict
        Rows per split.
    created, lockstep_version : str
    git : dict
        Commit and dirty flag of the project's repository, when there is one.
    """

    version: int
    name: str
    fingerprint: str
    rows: int
    columns: list[str]
    dtypes: dict[str, str]
    id_column: str
    label_column: str
    raw_version: int
    raw_fingerprint: str
    code: dict[str, Any]
    config_fingerprint: str
    environment_fingerprint: str
    inputs: str
    parity: dict[str, Any]
    splits: dict[str, int]
    created: str
    lockstep_version: str
    environment: dict[str, Any] = field(default_factory=dict)
    git: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_metadata(cls, version: int, meta: dict[str, Any]) -> FeatureInfo:
        fields = {k: meta[k] for k in cls.__dataclass_fields__ if k in meta and k != "version"}
        return cls(version=version, **fields)

    def to_metadata(self) -> dict[str, Any]:
        out = self.to_dict(environment=True)
        del out["version"]
        return out

    def to_dict(self, *, environment: bool = False) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if not environment:
            out.pop("environment")
        return out


class FeatureTable:
    """The versions of one feature set (``<store>/features/<name>``)."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = Path(path)
        self.name = name

    def __repr__(self) -> str:
        return f"FeatureTable({str(self.path)!r})"

    def list(self) -> list[FeatureInfo]:
        """Every version, oldest first."""
        return [FeatureInfo.from_metadata(v, m) for v, m in _delta.commit_metadata(self.path).items()]

    def find(self, inputs: str) -> FeatureInfo | None:
        """The newest version computed from exactly these inputs, if any."""
        matches = [info for info in self.list() if info.inputs == inputs]
        return matches[-1] if matches else None

    def info(self, version: int | None = None) -> FeatureInfo:
        """Version ``version`` (default: the latest).

        Raises
        ------
        NotFoundError
            If there is no such version; the message lists those that exist.
        """
        infos = self.list()
        if not infos:
            raise NotFoundError(f"the feature set '{self.name}' has no version yet",
                                hint="run `lockstep features` first")
        if version is None:
            return infos[-1]
        for info in infos:
            if info.version == version:
                return info
        known = ", ".join(str(i.version) for i in infos)
        raise NotFoundError(f"feature set '{self.name}' has no version {version} (versions: {known})",
                            hint="`lockstep features list` shows every version")

    def read(self, version: int | None = None, columns: builtins.list[str] | None = None) -> pa.Table:
        """The rows of version ``version`` (default: the latest)."""
        info = self.info(version)
        return _delta.to_table(self.path, info.version, columns)

    def write(self, table: pa.Table, info: FeatureInfo) -> FeatureInfo:
        """Write ``table`` as a new version, atomically; return its info with the version set."""
        _delta.write_table(self.path, table, info.to_metadata())
        version = _delta.open_table(self.path).version()
        return FeatureInfo.from_metadata(version, info.to_metadata())
