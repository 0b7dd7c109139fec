# Builds the ONNX graphs of TestOracle with ONNX's own helper API
# (onnx.helper.make_node/make_graph/make_model, numpy_helper: Debian's
# python3-onnx 1.12) and computes each graph's expected answers with numpy,
# independently of Manta's interpreter.
#
# Usage: /usr/bin/python3 oracle.py OUTDIR
# For each case it writes OUTDIR/NAME.onnx and OUTDIR/NAME.json:
#   {"double": bool, "rows": [[...], ...], "outputs": ["name", ...],
#    "expected": {"name": [per-row values, nested as numpy's tolist()]}}
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1]
rng = np.random.default_rng(20261204)
ROWS = 150


def tensor(name, a):
    return numpy_helper.from_array(a, name)


def save(name, nodes, x_shape, outs, inits, rows, expected, dt, opset=13, fixed=None):
    """outs: [(name, shape)], expected: {name: array with the rows first}."""
    elem = TensorProto.DOUBLE if dt == np.float64 else TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("x", elem, x_shape)]
    outputs = [helper.make_tensor_value_info(n, elem, s) for n, s in outs]
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name + ".onnx"))
    doc = {
        "double": dt == np.float64,
        "rows": rows.astype(np.float64).tolist(),
        "outputs": [n for n, _ in outs],
        "expected": {n: np.asarray(v, dtype=np.float64).tolist() for n, v in expected.items()},
    }
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(doc, f)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


for dt, sfx in ((np.float32, "f32"), (np.float64, "f64")):
    F, H, C = 8, 16, 3
    X = rng.standard_normal((ROWS, F)).astype(dt)

    # MLP: Gemm + Relu + Gemm + Softmax (classes per row: an array).
    W1 = (rng.standard_normal((F, H)) / np.sqrt(F)).astype(dt)
    b1 = (rng.standard_normal(H) * 0.1).astype(dt)
    W2 = (rng.standard_normal((H, C)) / np.sqrt(H)).astype(dt)
    b2 = (rng.standard_normal(C) * 0.1).astype(dt)
    save("mlp_softmax_" + sfx,
         [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"]),
          helper.make_node("Relu", ["h"], ["r"]),
          helper.make_node("Gemm", ["r", "W2", "b2"], ["z"]),
          helper.make_node("Softmax", ["z"], ["probabilities"], axis=1)],
         ["N", F], [("probabilities", ["N", C])],
         [tensor("W1", W1), tensor("b1", b1), tensor("W2", W2), tensor("b2", b2)],
         X, {"probabilities": softmax(np.maximum(X @ W1 + b1, 0) @ W2 + b2, axis=1)}, dt)

    # MLP with a sigmoid head: Gemm(transB=1, PyTorch's Linear layout) +
    # Tanh + Gemm(alpha, beta) + Sigmoid: one value per row (a scalar).
    W1t = (rng.standard_normal((H, F)) / np.sqrt(F)).astype(dt)
    W2 = (rng.standard_normal((H, 1)) / np.sqrt(H)).astype(dt)
    b2 = np.array([0.2], dtype=dt)
    save("mlp_sigmoid_" + sfx,
         [helper.make_node("Gemm", ["x", "W1t", "b1"], ["h"], transB=1),
          helper.make_node("Tanh", ["h"], ["t"]),
          helper.make_node("Gemm", ["t", "W2", "b2"], ["z"], alpha=0.5, beta=2.0),
          helper.make_node("Sigmoid", ["z"], ["p"])],
         ["N", F], [("p", ["N", 1])],
         [tensor("W1t", W1t), tensor("b1", b1), tensor("W2", W2), tensor("b2", b2)],
         X, {"p": sigmoid(0.5 * (np.tanh(X @ W1t.T + b1) @ W2) + 2.0 * b2)[:, 0]}, dt)

    # Logistic regression: MatMul + Add + Sigmoid.
    w = rng.standard_normal((F, 1)).astype(dt)
    b = np.array([-0.3], dtype=dt)
    save("logreg_" + sfx,
         [helper.make_node("MatMul", ["x", "w"], ["m"]),
          helper.make_node("Add", ["m", "b"], ["z"]),
          helper.make_node("Sigmoid", ["z"], ["p"])],
         ["N", F], [("p", ["N", 1])], [tensor("w", w), tensor("b", b)],
         X, {"p": sigmoid(X @ w + b)[:, 0]}, dt)

    # Elementwise arithmetic with broadcasting: [N,F] with [F], [1,F], a
    # scalar, and [N,F] with itself.
    s = (rng.standard_normal(F)).astype(dt)
    d = (rng.uniform(0.5, 2.0, (1, F))).astype(dt)
    k = np.array(3.0, dtype=dt)
    save("arith_" + sfx,
         [helper.make_node("Add", ["x", "s"], ["a"]),
          helper.make_node("Sub", ["a", "k"], ["b"]),
          helper.make_node("Mul", ["b", "x"], ["c"]),
          helper.make_node("Div", ["c", "d"], ["e"]),
          helper.make_node("Sub", ["k", "e"], ["f"]),
          helper.make_node("Div", ["f", "k"], ["y"])],
         ["N", F], [("y", ["N", F])], [tensor("s", s), tensor("d", d), tensor("k", k)],
         X, {"y": (k - ((X + s - k) * X) / d) / k}, dt)

    # Shapes: Reshape (shape from an initializer, with -1; and from a
    # Constant node, with 0), MatMul of a 3-D tensor, Softmax on axis 2,
    # Flatten, Concat, Identity; the answer is an array per row.
    X6 = rng.standard_normal((ROWS, 6)).astype(dt)
    M = rng.standard_normal((3, 4)).astype(dt)
    shape_a = np.array([-1, 2, 3], dtype=np.int64)
    shape_b = np.array([0, 8], dtype=np.int64)
    r3 = X6.reshape(-1, 2, 3)
    mm = r3 @ M                      # [N,2,4]
    sm = softmax(mm, axis=2)         # [N,2,4]
    flat = sm.reshape(ROWS, 8)
    cat = np.concatenate([flat, np.maximum(X6, 0), flat.reshape(ROWS, 8)], axis=1)
    save("shapes_" + sfx,
         [helper.make_node("Reshape", ["x", "shape_a"], ["r3"]),
          helper.make_node("MatMul", ["r3", "M"], ["mm"]),
          helper.make_node("Softmax", ["mm"], ["sm"], axis=2),
          helper.make_node("Flatten", ["sm"], ["flat"], axis=1),
          helper.make_node("Constant", [], ["shape_b"], value=tensor("shape_b_value", shape_b)),
          helper.make_node("Reshape", ["sm", "shape_b"], ["flat2"]),
          helper.make_node("Relu", ["x"], ["rx"]),
          helper.make_node("Identity", ["rx"], ["rx2"]),
          helper.make_node("Concat", ["flat", "rx2", "flat2"], ["y"], axis=1)],
         ["N", 6], [("y", ["N", 22])], [tensor("shape_a", shape_a), tensor("M", M)],
         X6, {"y": cat}, dt)

    # A 3-D answer per row, and two outputs: {"prediction": {name: ...}}.
    save("two_outputs_" + sfx,
         [helper.make_node("Reshape", ["x", "shape_a"], ["r3"]),
          helper.make_node("MatMul", ["r3", "M"], ["mm"]),
          helper.make_node("Softmax", ["mm"], ["sm"], axis=-1),
          helper.make_node("Tanh", ["mm"], ["th"])],
         ["N", 6], [("sm", ["N", 2, 4]), ("th", ["N", 2, 4])],
         [tensor("shape_a", shape_a), tensor("M", M)],
         X6, {"sm": sm, "th": np.tanh(mm)}, dt)

    # Softmax before opset 13: the input is coerced to 2-D at axis, so
    # axis=1 on [N,2,4] normalizes over all 8 values of a row.
    save("softmax_opset11_" + sfx,
         [helper.make_node("Reshape", ["x", "shape_a"], ["r3"]),
          helper.make_node("MatMul", ["r3", "M"], ["mm"]),
          helper.make_node("Softmax", ["mm"], ["y"], axis=1)],
         ["N", 6], [("y", ["N", 2, 4])], [tensor("shape_a", shape_a), tensor("M", M)],
         X6, {"y": softmax(mm.reshape(ROWS, 8), axis=1).reshape(ROWS, 2, 4)}, dt, opset=11)

    # A fixed batch of 1 ([1, F], as exporters write without dynamic axes):
    # served one run per row.
    save("fixed_batch_" + sfx,
         [helper.make_node("MatMul", ["x", "W1"], ["m"]),
          helper.make_node("Relu", ["m"], ["y"])],
         [1, F], [("y", [1, H])], [tensor("W1", W1)],
         X, {"y": np.maximum(X @ W1, 0)}, dt)
