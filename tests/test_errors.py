"""Whose fault: a failure inside a call into the user's code is the user's (exit 2), unless lockstep's own code
had the bug (exit 1); tampered models are integrity errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from lockstep.core.errors import InternalError, LockstepError, PipelineError, UserError
from lockstep.core.usercode import LOCKSTEP_ROOT, raised_by_lockstep, user_code_failure
from lockstep.training.assembly import fit_model


def _raising_in(filename: str, error: type[BaseException]):
    """A function whose frame reports ``filename``, as one defined in that file would, raising ``error``."""
    namespace: dict = {}
    exec(compile(f"def fail(*args):\n    raise {error.__name__}('boom')\n", filename, "exec"), namespace)
    return namespace["fail"]


LOCKSTEP_FILE = str(LOCKSTEP_ROOT / "features" / "transformers" / "_simulated_bug.py")


def _caught(function) -> BaseException:
    try:
        function()
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc
    raise AssertionError("it did not raise")


@pytest.mark.parametrize(("where", "error", "expected", "exit_code"), [
    (LOCKSTEP_FILE, KeyError, InternalError, 1),        # lockstep's own bug
    (LOCKSTEP_FILE, AttributeError, InternalError, 1),
    (LOCKSTEP_FILE, ValueError, PipelineError, 2),      # lockstep rejecting a parameter or data: the user's to fix
    ("/home/someone/project/pipeline.py", KeyError, PipelineError, 2),  # the user's code
])
def test_a_failure_is_blamed_on_whoever_raised_it(where, error, expected, exit_code) -> None:
    exc = _caught(_raising_in(where, error))
    assert raised_by_lockstep(exc) == (where == LOCKSTEP_FILE)
    failure = user_code_failure(PipelineError, "fitting 'pipeline:model' failed", exc)
    assert type(failure) is expected and failure.exit_code == exit_code
    assert failure.message.startswith("fitting 'pipeline:model' failed: ")
    assert ("a bug in lockstep" in failure.message) == (expected is InternalError)


class _Model(ClassifierMixin, BaseEstimator):
    def __init__(self, hook=None):
        self.hook = hook

    def fit(self, X, y):
        self.hook(X)
        self.classes_ = np.unique(y)
        return self


@pytest.mark.parametrize("lockstep_bug", [True, False])
def test_a_lockstep_bug_inside_a_fit_is_not_reported_as_the_users_fault(lockstep_bug: bool) -> None:
    hook = _raising_in(LOCKSTEP_FILE if lockstep_bug else "/tmp/elsewhere/pipeline.py", KeyError)
    X, y = np.zeros((4, 1)), np.array([0, 1, 0, 1])
    with pytest.raises(LockstepError) as caught:
        fit_model(lambda: _Model(hook), "pipeline:model", {}, 0, X, y)
    assert isinstance(caught.value, InternalError) == lockstep_bug
    assert isinstance(caught.value, UserError) != lockstep_bug
    assert caught.value.exit_code == (1 if lockstep_bug else 2)
    assert isinstance(caught.value.__cause__, KeyError)

