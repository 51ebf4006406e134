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

class Spy:  # counts skops's look-ups of an object in every loaded module (ufuncs have no __module__)
    scans = 0
    def find_spec(self, name, path=None, target=None):
        utils = sys.modules.get("skops.io._utils")
        if name == "skops.io._trusted_types" and utils is not None:
            look_up = utils.whichmodule
            def counted(obj, name):
                Spy.scans += getattr(obj, "__module__", None) is None
                return look_up(obj, name)
            utils.whichmodule = counted

sys.meta_path.insert(0, Spy())
skops_io()
import skops.io._trusted_types as t
print(json.dumps({"names": t.SKLEARN_ESTIMATOR_TYPE_NAMES, "internal": t.SKLEARN_INTERNAL_TYPE_NAMES,
                  "ufuncs": [t.NUMPY_UFUNC_TYPE_NAMES, t.SCIPY_UFUNC_TYPE_NAMES],
                  "walked": "sklearn.semi_supervised" in sys.modules, "scans": Spy.scans,
                  "finders": [type(f).__name__ for f in sys.meta_path]}))
"""


def _probe(cache: Path) -> dict:
    env = {**os.environ, "LOCKSTEP_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout)


def test_the_cached_names_are_the_walked_ones(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    walked = _probe(cache)  # no cache yet: skops walks scikit-learn and looks up every ufunc; the lists are kept
    assert walked["walked"] and len(walked["names"]) > 100 and walked["scans"] > 100
    assert all(len(names) > 50 for names in walked["ufuncs"])
    files = list(cache.glob("skops-trusted-names-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["sklearn"] == walked["names"]
    cached = _probe(cache)
    assert not cached["walked"]  # scikit-learn's modules were not all imported
    assert cached["scans"] == 0  # nor a ufunc looked up in every loaded module
    assert cached["names"] == walked["names"] and cached["internal"] == walked["internal"]
    assert cached["ufuncs"] == walked["ufuncs"]
    assert "_PublicNames" not in cached["finders"] + walked["finders"]  # lockstep's finder is gone


def test_a_bad_or_unwritable_cache_falls_back_to_the_walk(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _probe(cache)
    (file,) = cache.glob("*.json")
    good = json.loads(file.read_text())
    bad = {**good, "sklearn": [*good["sklearn"], "os.system"]}  # not a scikit-learn name: the file is not trusted
    file.write_text(json.dumps(bad))
    again = _probe(cache)
    assert again["walked"] and again["names"] == good["sklearn"] and json.loads(file.read_text()) == good
    key = next(k for k in good["public"] if k.startswith("scipy.special:"))
    smuggled = {**good, "public": {**good["public"], key: [*good["public"][key], "os.system"]}}
    file.write_text(json.dumps(smuggled))  # a "ufunc" outside SciPy: that list is looked up again
    again = _probe(cache)
    assert not again["walked"] and again["scans"] > 0 and "os.system" not in again["ufuncs"][1]
    assert again["ufuncs"] == _probe(tmp_path / "fresh")["ufuncs"]
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert _probe(blocker / "cache")["names"] == good["sklearn"]  # a cache folder that cannot exist: no cache

