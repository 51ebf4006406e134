"""Whose fault: a failure inside a call into the user's code is the user's (exit 2), unless lockstep's own code
had the bug (exit 1); tampered models are integrity errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from lockstep.core.errors import InternalError, LockstepError, PipelineError, UserError
from lockstep.core.usercode import LOCKSTEP_ROOT, defines, raised_by_lockstep, user_code_failure
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



@pytest.mark.parametrize(("source", "ref", "expected"), [
    ("def model():\n    pass\n", "pipeline:model", True),
    ("class Model:\n    pass\n", "pipeline:Model", True),
    ("from sklearn.linear_model import LogisticRegression as model\n", "pipeline:model", True),
    ("model = lambda: None\n", "pipeline:model", True),
    ("try:\n    import fast as model\nexcept ImportError:\n    def model():\n        pass\n", "pipeline:model", True),
    ("if True:\n    model: object = None\n", "pipeline:model", True),
    ("def model():\n    pass\n", "pipeline:modle", False),  # misspelled: imported, to say "did you mean"
    ("def helper():\n    model = 1\n", "pipeline:model", False),  # not at the top level
    ("globals()['model'] = print\n", "pipeline:model", False),  # made at run time: only an import can tell
    ("def model(:\n", "pipeline:model", False),  # a syntax error: the import reports it
    ("def model():\n    pass\n", "missing:model", False),
])
def test_a_reference_the_source_visibly_defines_is_not_imported_to_check_it(tmp_path, source, ref, expected) -> None:
    (tmp_path / "pipeline.py").write_text(source)
    assert defines(ref, tmp_path) is expected
