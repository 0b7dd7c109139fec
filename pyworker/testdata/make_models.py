"""Builds the sklearn models the pyworker tests use (run by the Go tests).

    python3 make_models.py OUTDIR NAME...

Each model goes to OUTDIR/NAME/ with a manifest.json. Models are trained at
test time, not committed, because a joblib pickle is tied to the sklearn
version that wrote it.
"""

import json
import os
import sys

import joblib
import numpy as np


def write(out, name, obj, n_features, options=None, fmt="sklearn-joblib", entry="model.joblib", compress=0):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    if obj is not None:
        joblib.dump(obj, os.path.join(d, entry), compress=compress)
    man = {"id": name, "version": "1", "runtime": "python", "format": fmt,
           "entrypoint": entry, "description": "pyworker test model, %d features" % n_features}
    if options:
        man["options"] = options
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(7)
    for name in sys.argv[2:]:
        if name == "reg":
            from sklearn.linear_model import LinearRegression

            X = rng.normal(size=(200, 5))
            y = X @ np.array([1.0, -2.0, 0.5, 3.0, 0.0]) + 4.0
            write(out, name, LinearRegression().fit(X, y), 5)
        elif name == "clf":
            from sklearn.linear_model import LogisticRegression

            X = rng.normal(size=(300, 4))
            y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
            write(out, name, LogisticRegression(max_iter=500).fit(X, y), 4, {"predict_proba": "true"})
        elif name == "labels":
            from sklearn.tree import DecisionTreeClassifier

            X = rng.normal(size=(100, 3))
            y = np.where(X[:, 0] > 0, "late", "on-time")
            write(out, name, DecisionTreeClassifier(max_depth=3).fit(X, y), 3)
        elif name == "gbr":
            from sklearn.ensemble import GradientBoostingRegressor

            X = rng.normal(size=(2000, 8))
            y = 10 * X[:, 0] + np.sin(X[:, 1]) * 5 + X[:, 2] * X[:, 3] + rng.normal(size=2000)
            write(out, name, GradientBoostingRegressor(n_estimators=100, max_depth=3, random_state=0).fit(X, y), 8)
        elif name == "big":
            from sklearn.ensemble import RandomForestRegressor

            X = rng.normal(size=(10000, 10))
            y = X.sum(axis=1) + rng.normal(size=10000)
            rf = RandomForestRegressor(n_estimators=30, random_state=0, n_jobs=1).fit(X, y)
            write(out, name, rf, 10)
        elif name.startswith("reg"):
            # reg0, reg1, ...: small distinct regressors (10 models test)
            from sklearn.linear_model import Ridge

            k = int(name[3:])
            X = rng.normal(size=(100, 3))
            y = X @ np.array([k, 1.0, -1.0]) + k
            write(out, name, Ridge(alpha=1e-6).fit(X, y), 3)
        else:
            sys.exit("make_models.py: unknown model %r" % name)


if __name__ == "__main__":
    main()
