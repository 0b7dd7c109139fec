#!/usr/bin/python3
"""ETA-as-a-service: train one small model per freight lane.

Simulates multi-day road shipments between European countries and trains a
gradient-boosted regressor per lane that predicts the door-to-door transit
time in hours: an XGBoost model (--model xgboost, the default when
python3-xgboost is installed), served by Manta's native xgboost runtime, or
a sklearn GradientBoostingRegressor (--model sklearn), served by the Python
worker. Each model is written as a directory Manta can push:

    OUT/eta-de-fr/manifest.json   {"id", "runtime": "xgboost", "entrypoint": "model.json", ...}
    OUT/eta-de-fr/model.json      (Booster.save_model)
or
    OUT/eta-de-fr/manifest.json   {"id", "runtime": "python", "format": "sklearn-joblib", ...}
    OUT/eta-de-fr/model.joblib
and
    OUT/lanes.json                every lane with an example request

Run it with Debian's interpreter (numpy, sklearn, joblib and xgboost from apt):

    /usr/bin/python3 examples/eta/train.py --out /tmp/eta-models --lanes 50

A request is {"features": [distance_km, legs, border_crossings,
weather_severity, departure_hour, departure_weekday, team_drivers,
cargo_tonnes]}; the answer is {"prediction": hours}.

The simulation, per shipment: driving time from distance and a lane speed
slowed by weather and load; EU hours-of-service rules (Regulation 561/2006:
a 45-minute break per 4.5 h of driving, at most 9 h of driving a day, then
11 h of daily rest; a two-driver team drives up to 18 h a day with 9 h of
rest); the Sunday truck ban (no driving on Sunday until 22:00); loading and
unloading at every extra leg; waiting at borders; and noise. Small models,
seconds to train: the point is many models of different lanes, not accuracy.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

try:
    import xgboost
except ImportError:
    xgboost = None

FEATURES = [
    "distance_km",
    "legs",
    "border_crossings",
    "weather_severity",
    "departure_hour",
    "departure_weekday",
    "team_drivers",
    "cargo_tonnes",
]

COUNTRIES = ["de", "fr", "pl", "nl", "it", "es", "cz", "at", "be", "dk", "se", "hu", "ro", "pt", "sk"]


def lanes(n, rng):
    """n distinct origin-destination lanes with their own geography."""
    pairs = [(o, d) for o in COUNTRIES for d in COUNTRIES if o != d]
    idx = rng.choice(len(pairs), size=min(n, len(pairs)), replace=False)
    out = []
    for i in sorted(idx):
        o, d = pairs[i]
        out.append({
            "id": "eta-%s-%s" % (o, d),
            "origin": o,
            "destination": d,
            "distance_km": float(rng.uniform(250, 2800)),
            "legs": float(rng.uniform(0.2, 2.0)),  # mean extra legs
            "borders": int(rng.integers(0, 4)),
            "speed_kmh": float(rng.uniform(62, 78)),
            "border_wait_h": float(rng.uniform(0.2, 2.0)),
        })
    return out


def sunday_ban_wait(dep_weekday, dep_hour, hours):
    """Hours spent parked because the trip crosses Sunday 00:00-22:00.

    The truck stops when the ban starts and goes on at 22:00; the extra
    time can push the trip into the next Sunday, hence the loop.
    """
    start = dep_weekday * 24 + dep_hour  # hours since Monday 00:00
    end = start + hours
    wait = 0.0
    week = math.floor(start / 168)
    while True:
        ban_start = week * 168 + 6 * 24
        ban_end = ban_start + 22
        if ban_start >= end:
            return wait
        if ban_end > start:
            overlap = min(end, ban_end) - max(start, ban_start)
            if overlap > 0:
                wait += overlap
                end += overlap
        week += 1


def transit_hours(lane, X, rng):
    """The simulated door-to-door time of each shipment (rows of X)."""
    dist, legs, borders, weather, dep_hour, dep_wd, team, cargo = X.T
    speed = lane["speed_kmh"] * (1 - 0.35 * weather) * (1 - 0.004 * (cargo - 12))
    drive = dist / speed
    hours = np.empty(len(X))
    for i in range(len(X)):
        remaining, t = drive[i], 0.0
        daily, rest = (18.0, 9.0) if team[i] else (9.0, 11.0)
        while remaining > 1e-9:
            day = min(remaining, daily)
            # A single driver breaks 45 min per 4.5 h; a team swaps drivers.
            breaks = 0.0 if team[i] else math.floor((day - 1e-9) / 4.5) * 0.75
            t += day + breaks
            remaining -= day
            if remaining > 1e-9:
                t += rest
        t += sunday_ban_wait(int(dep_wd[i]), dep_hour[i], t)
        hours[i] = t
    hours += legs * rng.uniform(1.0, 2.5, size=len(X))  # loading/unloading
    hours += borders * lane["border_wait_h"] * rng.uniform(0.5, 1.8, size=len(X))
    return hours * rng.lognormal(0, 0.05, size=len(X))  # traffic, luck


def shipments(lane, n, rng):
    X = np.column_stack([
        lane["distance_km"] * rng.uniform(0.85, 1.15, n),
        rng.poisson(lane["legs"], n),
        np.maximum(lane["borders"] + rng.integers(-1, 2, n), 0),
        rng.beta(1.5, 5, n),
        rng.integers(0, 24, n),
        rng.integers(0, 7, n),
        (rng.random(n) < 0.2).astype(float),
        rng.uniform(2, 24, n),
    ]).astype(np.float64)
    return X, transit_hours(lane, X, rng)


class XGBoostLane:
    """An XGBoost regressor for one lane, saved in XGBoost's JSON format."""

    kind = "XGBoost gbtree"

    def __init__(self, trees, seed):
        self.params = {"max_depth": 3, "eta": 0.1, "subsample": 0.9, "seed": seed, "nthread": 1,
                       "objective": "reg:squarederror"}
        self.trees = trees

    def fit(self, X, y):
        self.params["base_score"] = float(np.mean(y))  # start from the lane's mean transit time
        self.booster = xgboost.train(self.params, xgboost.DMatrix(X, label=y), num_boost_round=self.trees)

    def predict(self, X):
        return self.booster.predict(xgboost.DMatrix(X))

    def save(self, d):
        self.booster.save_model(os.path.join(d, "model.json"))
        return {"runtime": "xgboost", "entrypoint": "model.json"}


class SklearnLane:
    """A sklearn GradientBoostingRegressor for one lane, saved with joblib."""

    kind = "GradientBoostingRegressor"

    def __init__(self, trees, seed):
        from sklearn.ensemble import GradientBoostingRegressor
        self.model = GradientBoostingRegressor(n_estimators=trees, max_depth=3, learning_rate=0.1,
                                               subsample=0.9, random_state=seed)

    def fit(self, X, y):
        self.model.fit(X, y)

    def predict(self, X):
        return self.model.predict(X)

    def save(self, d):
        import joblib
        joblib.dump(self.model, os.path.join(d, "model.joblib"))
        return {"runtime": "python", "format": "sklearn-joblib", "entrypoint": "model.joblib"}


def write_model(out, lane_id, lane, model, mae_minutes, n_train):
    d = os.path.join(out, lane_id)
    os.makedirs(d, exist_ok=True)
    manifest = {"id": lane_id}
    manifest.update(model.save(d))
    manifest.update({
        "description": "ETA in hours, %s -> %s road freight; features: %s; %s on %d simulated shipments"
        % (lane["origin"], lane["destination"], ", ".join(FEATURES), model.kind, n_train),
        "quality": {"metric": "mae_minutes", "value": round(mae_minutes, 1)},
        "batch": {"max_size": 64, "max_wait_ms": 2},
    })
    # The manifest is written last: a reader never sees a half-written model.
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="eta-models", help="output directory (default: eta-models)")
    ap.add_argument("--lanes", type=int, default=50, help="number of lanes, one model each (default: 50)")
    ap.add_argument("--samples", type=int, default=400, help="simulated shipments per lane (default: 400)")
    ap.add_argument("--trees", type=int, default=60, help="boosting stages per model (default: 60)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", choices=["auto", "xgboost", "sklearn"], default="auto",
                    help="xgboost (runtime xgboost, native), sklearn (runtime python); "
                         "auto: xgboost when python3-xgboost is installed (default)")
    ap.add_argument("--id-prefix", default="eta", help="model ids are PREFIX-origin-destination (default: eta)")
    args = ap.parse_args()
    if args.model == "auto":
        args.model = "xgboost" if xgboost is not None else "sklearn"
    if args.model == "xgboost" and xgboost is None:
        sys.exit("train.py: --model xgboost needs python3-xgboost (apt install python3-xgboost)")
    Lane = XGBoostLane if args.model == "xgboost" else SklearnLane

    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    index = []
    for lane in lanes(args.lanes, rng):
        X, y = shipments(lane, args.samples, rng)
        split = int(0.8 * len(X))
        model = Lane(args.trees, args.seed)
        model.fit(X[:split], y[:split])
        mae_min = float(np.mean(np.abs(model.predict(X[split:]) - y[split:]))) * 60
        lane_id = args.id_prefix + lane["id"][len("eta"):]
        write_model(args.out, lane_id, lane, model, mae_min, split)
        example = [round(float(v), 3) for v in X[split]]
        index.append({
            "id": lane_id,
            "runtime": args.model,
            "origin": lane["origin"],
            "destination": lane["destination"],
            "distance_km": round(lane["distance_km"]),
            "mae_minutes": round(mae_min, 1),
            "example": {"features": example},
            "example_hours": round(float(y[split]), 2),
            "example_predicted": float(model.predict(X[split:split + 1])[0]),  # the library's own answer
        })
        print("%-10s %5d km  MAE %5.0f min  (mean transit %4.1f h)"
              % (lane_id, lane["distance_km"], mae_min, float(np.mean(y))), file=sys.stderr)
    with open(os.path.join(args.out, "lanes.json"), "w") as f:
        json.dump({"features": FEATURES, "lanes": index}, f, indent=2)
        f.write("\n")
    print("trained %d %s models in %.1fs into %s" % (len(index), args.model, time.time() - t0, args.out), file=sys.stderr)


if __name__ == "__main__":
    main()
