"""A forest with ``n_jobs=2``: scikit-learn's own parallel prediction against lockstep's deterministic one.

Run: ``.venv/bin/python bench/parallel_predict.py [--rows 1000000] [--repeats 5]``

A ``RandomForestClassifier(n_estimators=100, max_depth=12, n_jobs=2)`` fitted
on 20,000 rows of synthetic data predicts ``--rows`` rows:

* sklearn, ``n_jobs=2``: ``predict_proba`` (threads add trees into one array
  in finishing order); how many of ``--repeats`` calls differ from the first
  in any bit is counted;
* sklearn, ``n_jobs=1``: ``predict_proba`` on one thread, the bits lockstep
  promises;
* lockstep: ``lockstep.core.prediction.model_outputs``, labels *and*
  probabilities, rows in ``n_jobs`` blocks on threads, each block's trees
  summed in order; checked equal, bit for bit, to ``n_jobs=1``.

Times are the best of ``--repeats``; the ratio is sklearn ``n_jobs=2``
``predict_proba`` time over lockstep's time (higher is better for lockstep).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier

from lockstep.core.prediction import model_outputs


def best(func, repeats: int) -> tuple[float, list]:
    times, results = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        results.append(func())
        times.append(time.perf_counter() - start)
    return min(times), results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.rows, 20))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=args.rows) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=100, max_depth=12, n_jobs=2, random_state=0)
    forest.fit(X[:20_000], y[:20_000])
    serial = clone(forest).set_params(n_jobs=1).fit(X[:20_000], y[:20_000])

    parallel_s, parallel = best(lambda: forest.predict_proba(X), args.repeats)
    differing = sum(not np.array_equal(p, parallel[0]) for p in parallel[1:])
    serial_s, serial_out = best(lambda: serial.predict_proba(X), args.repeats)
    lockstep_s, ours = best(lambda: model_outputs(forest, X, "classification"), args.repeats)
    identical = all(np.array_equal(proba, serial_out[0]) and np.array_equal(labels, serial.predict(X))
                    for labels, proba in ours[:1]) and all(np.array_equal(o[1], ours[0][1]) for o in ours)

    print(f"rows: {args.rows:,}, forest of 100 trees, n_jobs=2, best of {args.repeats}")
    print(f"sklearn n_jobs=2 predict_proba: {parallel_s:6.2f} s; {differing} of {args.repeats - 1} later calls "
          "differ from the first in some bit")
    print(f"sklearn n_jobs=1 predict_proba: {serial_s:6.2f} s")
    print(f"lockstep model_outputs (labels and probabilities): {lockstep_s:6.2f} s; identical to n_jobs=1 on every "
          f"call: {identical}")
    print(f"ratio (sklearn n_jobs=2 predict_proba / lockstep): {parallel_s / lockstep_s:.2f}x")


if __name__ == "__main__":
    main()
