"""Reference profiles: what the training data looked like, in binned summaries, never the rows.

Stored with every registered model version (``reference_profile.json``) for
drift monitoring: the summaries (:mod:`lockstep.profiles.summary`) of the
raw inputs and of the features of the training split, and of the model's
predicted scores on it (the positive class's probability for a binary
classifier, the top probability for several classes, the value for a
regressor).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from lockstep.profiles.summary import new_summary

__all__ = ["PROFILE_VERSION", "profile_frame", "reference_profile"]

PROFILE_VERSION = 2
GROUPS = ("raw", "features", "prediction")


def profile_frame(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The summary of every column of ``frame``, as JSON-ready dictionaries."""
    return {str(name): new_summary(frame[name]).to_dict() for name in frame.columns}


def reference_profile(raw: pd.DataFrame, features: pd.DataFrame, scores: Any) -> dict[str, Any]:
    """The profile of the training split: raw inputs, features and predicted scores."""
    return {"version": PROFILE_VERSION, "raw": profile_frame(raw), "features": profile_frame(features),
            "prediction": profile_frame(pd.DataFrame({"prediction": scores}))}
