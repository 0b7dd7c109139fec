#!/usr/bin/python3
"""Trains the XGBoost models of the trees package's oracle test and writes
what xgboost itself predicts for them.

    /usr/bin/python3 xgboost_oracle.py OUT

For every case, OUT/<case>/ gets model.json and model.ubj (Booster.save_model
in XGBoost's JSON and UBJSON formats), rows.json
(the test rows; null = missing) and want.json ({"prediction": [...]} and,
for classifiers, {"probabilities": [[...], ...]}), each from xgboost's own
predict on a DMatrix of the same rows. Training rows and test rows both have
missing values (NaN), so the trees learn default directions that the test
rows exercise. Debian's python3-xgboost (1.7) is what this was written for.
"""

import json
import os
import sys

import numpy as np
import xgboost as xgb

ROWS_TRAIN = 3000
ROWS_TEST = 1200


def features(rng, n, nfeat, missing):
    X = rng.normal(size=(n, nfeat))
    X[:, 1] = rng.integers(0, 5, n)  # a few repeated values: ties at split points
    X[rng.random(size=X.shape) < missing] = np.nan
    X[:5] = np.nan  # rows with nothing known at all
    return X


def signal(X):
    Z = np.nan_to_num(X, nan=-1.5)  # missing means something: the trees must learn where it goes
    return 2 * Z[:, 0] - Z[:, 2] * Z[:, 3] + np.sin(3 * Z[:, 4]) + 0.5 * Z[:, 1]


def rows_json(X):
    return [[None if np.isnan(v) else float(v) for v in r] for r in X]


def write(out, name, booster, X, pred, probs=None):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    booster.save_model(os.path.join(d, "model.json"))
    booster.save_model(os.path.join(d, "model.ubj"))  # the same model as UBJSON
    with open(os.path.join(d, "rows.json"), "w") as f:
        json.dump(rows_json(X), f)
    want = {"prediction": [float(v) for v in pred]}
    if probs is not None:
        want["probabilities"] = [[float(v) for v in r] for r in probs]
    with open(os.path.join(d, "want.json"), "w") as f:
        json.dump(want, f)


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(7)
    nfeat = 8
    Xtr = features(rng, ROWS_TRAIN, nfeat, 0.15)
    Xte = features(rng, ROWS_TEST, nfeat, 0.15)
    s_tr, s_te = signal(Xtr), signal(Xte)
    common = {"max_depth": 5, "eta": 0.2, "nthread": 1, "seed": 1}
    dte = xgb.DMatrix(Xte, missing=np.nan)

    def train(params, y, rounds=40):
        p = dict(common)
        p.update(params)
        return xgb.train(p, xgb.DMatrix(Xtr, label=y, missing=np.nan), num_boost_round=rounds)

    # Regressors: squared error with a base_score far from the default, and
    # objectives whose base_score goes through a link (log, logit).
    y = s_tr + rng.normal(scale=0.1, size=ROWS_TRAIN)
    b = train({"objective": "reg:squarederror", "base_score": 3.25}, y)
    write(out, "reg-squarederror", b, Xte, b.predict(dte))

    b = train({"objective": "reg:gamma", "base_score": 2.0}, np.exp(0.3 * s_tr) + 0.01)
    write(out, "reg-gamma", b, Xte, b.predict(dte))

    b = train({"objective": "reg:logistic", "base_score": 0.4}, 1 / (1 + np.exp(-s_tr)))
    write(out, "reg-logistic", b, Xte, b.predict(dte))

    b = train({"objective": "reg:squarederror", "booster": "dart", "rate_drop": 0.1, "base_score": 1.0}, y, rounds=20)
    write(out, "reg-dart", b, Xte, b.predict(dte))

    # Binary classifier: xgboost answers P(class 1).
    yb = (s_tr + rng.normal(scale=0.5, size=ROWS_TRAIN) > 0).astype(float)
    b = train({"objective": "binary:logistic", "base_score": 0.3}, yb)
    p = b.predict(dte)
    write(out, "binary-logistic", b, Xte, (p > 0.5).astype(int), np.column_stack([1 - p, p]))

    # Multiclass: softprob answers every class's probability; softmax
    # answers the class, and its probabilities are the softmax of the margins.
    q = np.quantile(s_tr, [0.25, 0.5, 0.75])
    yk = np.searchsorted(q, s_tr + rng.normal(scale=0.3, size=ROWS_TRAIN)).astype(float)
    b = train({"objective": "multi:softprob", "num_class": 4}, yk, rounds=25)
    P = b.predict(dte)
    write(out, "multi-softprob", b, Xte, P.argmax(axis=1), P)

    yk3 = np.minimum(yk, 2)
    b = train({"objective": "multi:softmax", "num_class": 3}, yk3, rounds=25)
    cls = b.predict(dte)
    m = b.predict(dte, output_margin=True).astype(np.float32)
    e = np.exp(m - m.max(axis=1, keepdims=True))
    write(out, "multi-softmax", b, Xte, cls.astype(int), e / e.sum(axis=1, keepdims=True))


if __name__ == "__main__":
    main()
