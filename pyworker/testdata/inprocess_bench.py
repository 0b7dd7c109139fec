"""The in-process baseline of BenchmarkPredict (bench_test.go): the same model,
called from a pure-Python loop in one process, no IPC.

    python3 inprocess_bench.py MODEL_DIR N_FEATURES

loads the model, prints "ready", then answers commands on stdin, one a line,
with the seconds the loop took:

    single N   N requests of one row:   model.predict(np.asarray([row]))
    batch N    N batches of 64 rows:    model.predict(np.asarray(rows))
    raw N      N batches of 64 rows on a prebuilt array (the model alone)

Rows are Python lists, as a server's decoded JSON would be, so the conversion
to numpy counts, as it does in the worker. The benchmark interleaves these
runs with its own, so both see the same machine.
"""

import json
import os
import sys
import time

import joblib
import numpy as np


def main():
    model_dir, nfeat = sys.argv[1], int(sys.argv[2])
    with open(os.path.join(model_dir, "manifest.json")) as f:
        man = json.load(f)
    model = joblib.load(os.path.join(model_dir, man["entrypoint"]))
    rng = np.random.default_rng(1)
    rows = np.round(rng.normal(size=(64, nfeat)) * 100, 3).tolist()
    X = np.asarray(rows, dtype=np.float64)
    predict = model.predict
    asarray, f64 = np.asarray, np.float64

    def single(n):
        for i in range(n):
            predict(asarray([rows[i & 63]], dtype=f64))

    def batch(n):
        for _ in range(n):
            predict(asarray(rows, dtype=f64))

    def raw(n):
        for _ in range(n):
            predict(X)

    loops = {"single": single, "batch": batch, "raw": raw}
    for f in loops.values():  # warm up
        f(20)
    print("ready", flush=True)
    for line in sys.stdin:
        cmd, n = line.split()
        t0 = time.perf_counter()
        loops[cmd](int(n))
        print(time.perf_counter() - t0, flush=True)


if __name__ == "__main__":
    main()
