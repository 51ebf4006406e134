"""Feature sets: one Delta table per feature set, one version per computation.

The table lives at ``<store>/features/<name>``. Each version holds the id,
the feature columns, the label (named as the target) and the row's split,
and its commit carries a :class:`FeatureInfo`: the fingerprints of every
input (raw snapshot, code, configuration, environment) and of the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lockstep.store.location import StorePath
from lockstep.store.versioned import VersionedTable

if TYPE_CHECKING:  # pragma: no cover
    pass

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
    compute : dict
        Where the pipeline ran: ``backend`` and ``workers`` (never part of a fingerprint).
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
    compute: dict[str, str] = field(default_factory=dict)

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


class FeatureTable(VersionedTable[FeatureInfo]):
    """The versions of one feature set (``<store>/features/<name>``)."""

    info_type = FeatureInfo
    missing_hint = "`lockstep features list` shows every version"

    def __init__(self, path: StorePath, name: str) -> None:
        super().__init__(path)
        self.name = name
        self.empty = (f"the feature set '{name}' has no version yet", "run `lockstep features` first")

    def missing(self, version: int) -> str:
        return f"feature set '{self.name}' has no version {version}"

    def find(self, inputs: str) -> FeatureInfo | None:
        """The newest version computed from exactly these inputs, if any."""
        matches = [info for info in self.list() if info.inputs == inputs]
        return matches[-1] if matches else None
