#!/usr/bin/python3
"""The trees package's benchmark model, and xgboost's own in-process speed.

    /usr/bin/python3 xgboost_bench.py OUT

Trains one XGBoost regressor (100 trees of depth 6 over 20 features) and
writes OUT/model.json, OUT/rows.json (64 request rows) and OUT/timing.json:
the time of Booster.inplace_predict on one row and on the 64 rows at once,
in nanoseconds (the best of 5 rounds of many calls), with xgboost's default
threads and with one thread. BenchmarkXGBoost compares Manta's native
runtime and the Python worker with these figures in the same run.
"""

import json
import os
import sys
import time

import numpy as np
import xgboost as xgb


def per_call_ns(f, reps):
    best = None
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for _ in range(reps):
            f()
        d = (time.perf_counter_ns() - t0) / reps
        best = d if best is None else min(best, d)
    return best


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20000, 20))
    y = X[:, 0] * X[:, 1] + np.sin(X[:, 2]) + X[:, 3:8].sum(axis=1) + rng.normal(scale=0.1, size=len(X))
    b = xgb.train({"max_depth": 6, "eta": 0.1, "nthread": 2, "seed": 1, "objective": "reg:squarederror"},
                  xgb.DMatrix(X, label=y), num_boost_round=100)
    b.save_model(os.path.join(out, "model.json"))
    rows = rng.normal(size=(64, 20))
    with open(os.path.join(out, "rows.json"), "w") as f:
        json.dump([[float(v) for v in r] for r in rows], f)

    one = rows[:1].copy()
    timing = {}
    for name, nthread in (("default", None), ("1thread", 1)):
        if nthread is not None:
            b.set_param({"nthread": nthread})
        b.inplace_predict(rows)  # warm up
        timing[name] = {
            "single_ns": per_call_ns(lambda: b.inplace_predict(one), 2000),
            "batch64_ns": per_call_ns(lambda: b.inplace_predict(rows), 1000),
        }
    timing["xgboost"] = xgb.__version__
    with open(os.path.join(out, "timing.json"), "w") as f:
        json.dump(timing, f)


if __name__ == "__main__":
    main()
