"""The environment record: what is installed, read once per state of the import path."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from lockstep.core import environment


def test_installed_distributions_are_read_again_when_the_import_path_changes(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    first = environment._packages()
    assert "scikit-learn" in first and environment._packages() == first  # the kept answer
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    assert "lockstep-probe" not in environment._packages()
    info = site / "lockstep_probe-1.2.3.dist-info"
    info.mkdir()  # what installing a distribution does to its folder
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lockstep-probe\nVersion: 1.2.3\n")
    assert environment._packages()["lockstep-probe"] == "1.2.3"
    (info / "METADATA").unlink()
    info.rmdir()  # and uninstalling it
    assert "lockstep-probe" not in environment._packages()
    assert environment.capture()["packages"] == first


def test_packages_read_from_the_header_lines_are_those_of_the_parsed_metadata() -> None:
    """The fast read of Name and Version gives what ``importlib.metadata`` gives, for every installed distribution."""
    parsed: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            parsed.setdefault(name.lower().replace("_", "-"), dist.version)
    packages = environment.capture()["packages"]
    assert len(packages) > 50 and packages == dict(sorted(parsed.items()))


def test_the_thread_pools_are_recorded_in_the_same_order_whatever_order_they_were_loaded_in(monkeypatch) -> None:
    pools = [{"user_api": "openmp", "internal_api": "openmp", "prefix": "libgomp", "num_threads": 2},
             {"user_api": "blas", "internal_api": "openblas", "prefix": "libscipy_openblas", "num_threads": 2},
             {"user_api": "blas", "internal_api": "openblas", "prefix": "libopenblas", "num_threads": 2}]
    keys = ("user_api", "internal_api", "prefix", "num_threads")
    seen = []
    for order in (pools, pools[::-1], pools[1:] + pools[:1]):
        monkeypatch.setattr(environment, "threadpool_info", lambda order=order: [dict(p) for p in order])
        seen.append(environment.threadpool_summary(keys))
    assert seen[0] == seen[1] == seen[2] and len(seen[0]) == 3
    limited = [{**pool, "num_threads": 1 if pool["prefix"] == "libscipy_openblas" else 2} for pool in pools]
    monkeypatch.setattr(environment, "threadpool_info", lambda: [dict(p) for p in limited])
    order = [pool["prefix"] for pool in environment.threadpool_summary(keys)]
    assert order == [pool["prefix"] for pool in seen[0]]  # the same order whatever the sizes
