"""skops imported with scikit-learn's estimator names from the cache: the same trusted list as skops's own walk,
without importing the whole of scikit-learn; a bad or unwritable cache only means the walk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from lockstep.registry.skops_import import skops_io
skops_io()
import skops.io._trusted_types as t
print(json.dumps({"names": t.SKLEARN_ESTIMATOR_TYPE_NAMES, "internal": t.SKLEARN_INTERNAL_TYPE_NAMES,
                  "walked": "sklearn.semi_supervised" in sys.modules}))
"""


def _probe(cache: Path) -> dict:
    env = {**os.environ, "LOCKSTEP_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout)


def test_the_cached_names_are_the_walked_ones(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    walked = _probe(cache)  # no cache yet: skops walks scikit-learn, and the names are kept
    assert walked["walked"] and len(walked["names"]) > 100
    files = list(cache.glob("skops-sklearn-estimators-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text()) == walked["names"]
    cached = _probe(cache)
    assert not cached["walked"]  # scikit-learn's modules were not all imported
    assert cached["names"] == walked["names"] and cached["internal"] == walked["internal"]


def test_a_bad_or_unwritable_cache_falls_back_to_the_walk(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _probe(cache)
    (file,) = cache.glob("*.json")
    good = json.loads(file.read_text())
    file.write_text(json.dumps([*good, "os.system"]))  # not a scikit-learn name: the file is not trusted
    again = _probe(cache)
    assert again["walked"] and again["names"] == good and json.loads(file.read_text()) == good
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert _probe(blocker / "cache")["names"] == good  # a cache folder that cannot exist: no cache, same list

