# Writes mlp.onnx, the benchmark model: 32 float32 features, Gemm 32x64,
# Relu, Gemm 64x3, Softmax; batch dimension symbolic. Run with Debian's
# /usr/bin/python3 (python3-onnx, python3-numpy): /usr/bin/python3 mlp.py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(1)
F, H, C = 32, 64, 3
W1 = (rng.standard_normal((F, H)) / np.sqrt(F)).astype(np.float32)
b1 = (rng.standard_normal(H) * 0.1).astype(np.float32)
W2 = (rng.standard_normal((H, C)) / np.sqrt(H)).astype(np.float32)
b2 = (rng.standard_normal(C) * 0.1).astype(np.float32)
nodes = [
    helper.make_node("Gemm", ["x", "W1", "b1"], ["h"]),
    helper.make_node("Relu", ["h"], ["r"]),
    helper.make_node("Gemm", ["r", "W2", "b2"], ["z"]),
    helper.make_node("Softmax", ["z"], ["y"], axis=1),
]
g = helper.make_graph(
    nodes, "mlp",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", F])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", C])],
    [numpy_helper.from_array(a, n) for a, n in ((W1, "W1"), (b1, "b1"), (W2, "W2"), (b2, "b2"))],
)
# opset 13: the one opset gonnx v1.1.0 reads (the engine benchmark runs it).
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, "mlp.onnx")
