// Package onnx is Manta's runtime "onnx": ONNX graphs with one tensor
// input, interpreted in Go, in process, without ONNX Runtime or Python.
//
// Programs import it for its side effect, as database/sql users import a
// driver (the manta command does, in cmd/manta/drivers.go; the SDK package
// does not):
//
//	import _ "github.com/manta-ml/manta/modelhost/onnx"
//
// # Manifest
//
//	{"id": "churn-mlp", "runtime": "onnx", "entrypoint": "model.onnx",
//	 "batch": {"max_size": 64, "max_wait_ms": 2}}
//
// "format" may be left out or be "onnx". The option "output" names the one
// graph output to answer with when the graph has several (default: all of
// them). `manta models push` loads the file once: a file that does not
// parse, or that this runtime could not serve (an unsupported operator,
// shapes that do not fit), is refused as bad_input naming the file and the
// parser's message, and memory_bytes is filled in from the loaded model.
//
// # Contract
//
// The graph has exactly one input that is not an initializer: a FLOAT or
// DOUBLE tensor of shape [batch, d1, ...] whose first dimension is
// symbolic, or of a fixed shape [1, d1, ...] or [d1, ...]. A request is one
// row:
//
//	{"features": [x1, ..., xn]}      n = d1·d2·…, row-major; null = missing (NaN)
//
// Rows of a batch are stacked on the batch dimension and evaluated in one
// graph run (a graph with a fixed batch of 1, or whose batch dimension does
// not reach every output, is run once per row). The answer comes from the
// graph's output:
//
//	{"prediction": 0.73}                       one value per row
//	{"prediction": [0.1, 0.7, 0.2]}            several: an array, nested as the
//	                                           output's dimensions after the batch
//	{"prediction": {"probs": [...], "logits": [...]}}
//	                                           several graph outputs, by name
//
// The Open Inference Protocol (/v2) maps a number per row to the tensor
// prediction [b], an array to a tensor of its full shape ([b, k], or
// [b, d1, d2, ...] for nested arrays), and several outputs to one tensor
// each, named as the graph names them (which the request's "outputs" may
// ask for by name).
//
// Values of a FLOAT graph are printed with float32's shortest
// representation. A wrong feature count is bad_input naming expected and
// given ("features: got 3 values, want 8"); so is an answer that is not
// finite (NaN reaches the output when a missing value flows into
// arithmetic: none of the supported operators imputes).
//
// # Operators
//
// Default domain (ai.onnx), opsets 1 to 23: Gemm, MatMul, Add, Sub, Mul,
// Div (numpy broadcasting), Relu, Sigmoid, Tanh, Softmax (before opset 13
// on the input coerced to 2-D at axis, as those opsets define it), Reshape
// (shape from an INT64 initializer or Constant; 0 and -1 as ONNX defines
// them, allowzero), Flatten, Concat, Identity, and Constant (folded at
// load). Float tensors are all FLOAT or all DOUBLE, as the input. An
// unsupported operator, in any domain, fails the load with load_failed
// naming every unsupported operator of the graph, never the first request.
// External tensor data, sparse initializers and other element types are
// refused at load too.
//
// # Engine: Manta's own interpreter, chosen by measurement
//
// The graph is decoded with Go types generated from ONNX's onnx.proto
// (internal/onnxpb), checked at load (operators, attributes, constants,
// and every value's shape, inferred per batch size before any buffer is
// allocated), and run by a small interpreter: one arena per run for all
// intermediates, Reshape/Flatten/Identity as views, and Gemm/MatMul with a
// constant B on B packed as [N, K] for register-blocked dot products.
//
// Measured on one MLP (testdata/mlp.onnx: 32 float32 features, Gemm 32×64,
// Relu, Gemm 64×3, Softmax), on this project's shared 2-core machine, in
// one session (BenchmarkMLP here; the other engines by the modules in
// enginebench/, on the same file; medians of 3):
//
//	engine                              batch 1 latency   batch 64 rows/s
//	Manta, Model.Predict (JSON in/out)       1.5 µs          660,000
//	Manta, the graph run alone               0.85 µs       1,350,000
//	the same MLP hand-written in Go          1.4 µs          660,000
//	gonnx v1.1.0 (tensor in, no JSON)       24   µs          390,000
//	onnx-go v0.5.0, gorgonnx backend        41   µs          440,000
//
// So the interpreter answers one request 16× faster than gonnx and 27×
// faster than onnx-go, and a batch of 64 at 1.5–1.7× their rate while also
// parsing JSON (3.5× for the graph run alone). gonnx's profile at batch 1
// shows under a tenth of its CPU in arithmetic (gonum's sgemm); the rest
// is allocation, garbage collection and tensor bookkeeping per node.
//
// The contract decides too: gonnx reads only opset 13 (a model exported
// at another opset is refused), has no Identity, and finds an unsupported
// operator only when the graph runs, not at load; onnx-go keeps the shapes
// of its first run (one graph cannot serve both batch 1 and batch 64) and
// needs gorgonia v0.9.4, which does not build beside gonnx's gorgonia
// tensor. ONNX Runtime (npm onnxruntime-node's shared library through cgo)
// was not measured: it would bring cgo and a native library into every
// build and CI run, which the issue allows only if clearly better, and at
// 1.5 µs an answer there is little left for it to win on graphs this
// small. It remains the engine to add for large convolutional or
// transformer graphs, which this runtime does not serve.
//
// # Memory
//
// MemoryBytes (and the memory_bytes push writes) is the constants' bytes
// plus one run's intermediate tensors, converted input and output copies at
// the manifest's batch.max_size (default 64), from shapes inferred at
// load. Shapes are inferred and checked per batch size before any buffer
// is allocated; a file cannot make the loader allocate more than a
// constant times its size, nor a run more than 1 GiB of intermediates.
package onnx
