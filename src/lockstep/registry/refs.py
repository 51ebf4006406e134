"""Model references: ``NAME``, ``NAME@ALIAS``, ``NAME/VERSION``, ``@ALIAS``, ``/VERSION``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lockstep.core.errors import UserError

__all__ = ["ModelRef", "parse_model_ref"]

_REF = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)?(?:@(?P<alias>[A-Za-z][A-Za-z0-9_-]*)|/(?P<version>\d+))?$")


@dataclass(frozen=True)
class ModelRef:
    """A reference to a registered model version: by alias, by number, or the latest."""

    name: str
    alias: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return self.name


def parse_model_ref(text: str | None, default_name: str, default_alias: str | None = None) -> ModelRef:
    """Parse a model reference; the name defaults to the project's model.

    Examples
    --------
    >>> parse_model_ref("churn@champion", "x")
    ModelRef(name='churn', alias='champion', version=None)
    >>> parse_model_ref("/3", "churn")
    ModelRef(name='churn', alias=None, version=3)
    >>> parse_model_ref(None, "churn", "challenger")
    ModelRef(name='churn', alias='challenger', version=None)
    """
    if not text:
        return ModelRef(default_name, alias=default_alias)
    match = _REF.match(text.strip())
    if not match:
        raise UserError(f"{text!r} is not a model reference",
                        hint="use NAME, NAME@ALIAS (for example churn@champion) or NAME/VERSION (churn/3)")
    name = match.group("name") or default_name
    version = match.group("version")
    return ModelRef(name=name, alias=match.group("alias"), version=int(version) if version else None)
