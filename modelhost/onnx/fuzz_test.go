package onnx

import (
	"context"
	"strings"
	"testing"

	"github.com/manta-ml/manta/modelhost"
	pb "github.com/manta-ml/manta/modelhost/onnx/internal/onnxpb"
)

// FuzzONNX feeds arbitrary bytes to the loader: a malformed model is an
// error, never a panic, and loading allocates no more than a constant
// times the file (tensor sizes and dimensions are checked against the data
// present before anything is allocated; intermediates are bounded at load).
// A model that loads is run on a row of the right width and one of the
// wrong width: answers or per-row errors, never a panic.
func FuzzONNX(f *testing.F) {
	for _, elem := range []pb.TensorProto_DataType{pb.TensorProto_FLOAT, pb.TensorProto_DOUBLE} {
		f.Add(linear2(elem).bytes(f))
	}
	f32 := pb.TensorProto_FLOAT
	f.Add(newTestModel(f32, "N", 6).ints("s", -1, 2, 3).floats("M", []int64{3, 2}, 1, 2, 3, 4, 5, 6).
		node("Reshape", []string{"x", "s"}, "r").node("MatMul", []string{"r", "M"}, "m").
		node("Softmax", []string{"m"}, "sm", attrInt("axis", 2)).node("Flatten", []string{"sm"}, "fl").
		node("Tanh", []string{"x"}, "t").node("Concat", []string{"fl", "t"}, "c", attrInt("axis", 1)).
		node("Identity", []string{"c"}, "y").output("y", "sm").bytes(f))
	f.Add(newTestModel(f32, 1, 2).floats("k", []int64{1}, 2).node("Div", []string{"x", "k"}, "d").
		node("Sub", []string{"d", "k"}, "s").node("Mul", []string{"s", "x"}, "m").node("Sigmoid", []string{"m"}, "y").
		node("Gemm", []string{"y", "x"}, "g", attrInt("transB", 1), attrFloat("alpha", 0.5)).output("g").opset(11).bytes(f))
	// Small seeds only: the fuzzer minimizes each new interesting input,
	// which for a 9 KB model (testdata/mlp.onnx) takes most of a short run.
	f.Add([]byte{})
	f.Add([]byte("\x0a\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b, "", 4)
		if err != nil {
			return
		}
		if m.MemoryBytes() <= 0 {
			t.Fatalf("loaded with memory %d", m.MemoryBytes())
		}
		if m.MemoryBytes() > 64<<20 || m.NumFeatures() > 1<<12 {
			return // valid but big: running it would only measure the machine
		}
		good := `{"features":[` + strings.TrimSuffix(strings.Repeat("0.5,", m.NumFeatures()), ",") + `]}`
		out, err := m.Predict(context.Background(), []modelhost.Input{{Payload: []byte(good)}, {Payload: []byte(`{"features":[1]}`)}, {Payload: []byte(good)}})
		if err != nil {
			t.Fatalf("predict: %v", err)
		}
		if len(out) != 3 {
			t.Fatalf("%d outputs for 3 inputs", len(out))
		}
		if m.NumFeatures() != 1 && out[1].Err == nil {
			t.Fatalf("a row of 1 value for %d features answered %s", m.NumFeatures(), out[1].Payload)
		}
	})
}
