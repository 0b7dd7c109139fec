package onnx

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
	pb "github.com/manta-ml/manta/modelhost/onnx/internal/onnxpb"
)

// loadDir writes model bytes as model.onnx into a directory and loads it
// through the registered runtime, as a member does.
func loadDir(t *testing.T, b []byte, opts map[string]string) (modelhost.Model, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	rt, ok := modelhost.LookupRuntime(RuntimeName)
	if !ok {
		t.Fatal("runtime onnx is not registered")
	}
	return rt.Load(context.Background(), &modelhost.Manifest{ID: "m", Version: "1", Runtime: RuntimeName, Entrypoint: "model.onnx", Options: opts}, dir)
}

func TestLinearGraph(t *testing.T) {
	for _, elem := range []pb.TensorProto_DataType{pb.TensorProto_FLOAT, pb.TensorProto_DOUBLE} {
		t.Run(elem.String(), func(t *testing.T) {
			m, err := loadDir(t, linear2(elem).bytes(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			out := predictOne(t, m, `{"features":[3,4]}`, `{"features":[1]}`, ` { "features" : [ 1 , 0 ] } `, `{"other":1,"features":[0,0]}`)
			if got := string(out[0].Payload); got != `{"prediction":10.5}` {
				t.Errorf("row 0: %s", got)
			}
			if err := out[1].Err; !errors.Is(err, api.ErrBadInput) || !strings.Contains(err.Error(), "got 1 values, want 2") {
				t.Errorf("1 feature for 2: %v", err)
			}
			if got := string(out[2].Payload); got != `{"prediction":1.5}` {
				t.Errorf("row 2: %s", got)
			}
			if got := string(out[3].Payload); got != `{"prediction":1}` {
				t.Errorf("row 3 (slow path): %s", got)
			}
		})
	}
}

// TestBadRows: each bad row fails alone, naming what is wrong; the others
// of the batch are answered.
func TestBadRows(t *testing.T) {
	m, err := loadDir(t, linear2(pb.TensorProto_FLOAT).bytes(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ payload, says string }{
		{`{"features":[1,2,3]}`, "features: got 3 values, want 2"},
		{`{"features":[]}`, "features: got 0 values, want 2"},
		{`{"features":[1,null]}`, "not finite"},
		{`{"features":[[1,2]]}`, "want one row"},
		{`{"features":"a"}`, "want one row"},
		{`{}`, `missing "features"`},
		{`{"features":[1,2]`, "decode"},
	} {
		out := predictOne(t, m, `{"features":[1,1]}`, tc.payload)
		if out[0].Err != nil || string(out[0].Payload) != `{"prediction":3.5}` {
			t.Errorf("%s: the good row: %s %v", tc.payload, out[0].Payload, out[0].Err)
		}
		if err := out[1].Err; !errors.Is(err, api.ErrBadInput) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want bad_input saying %q", tc.payload, err, tc.says)
		}
	}
	out, err := m.Predict(context.Background(), []modelhost.Input{{Payload: []byte(`{"features":[1,1]}`), ContentType: "text/csv"}})
	if err != nil || !errors.Is(out[0].Err, api.ErrBadInput) {
		t.Errorf("text/csv: %v %v", err, out[0].Err)
	}
}

// TestUnsupportedOperator: an operator the runtime lacks fails the load
// (not the first request) with load_failed naming it, and push with
// bad_input naming it.
func TestUnsupportedOperator(t *testing.T) {
	b := newTestModel(pb.TensorProto_FLOAT, "N", 2).
		node("Abs", []string{"x"}, "a").
		node("LeakyRelu", []string{"a"}, "l").
		node("Abs", []string{"l"}, "y").output("y").bytes(t)
	_, err := loadDir(t, b, nil)
	if !errors.Is(err, api.ErrLoadFailed) || !strings.Contains(err.Error(), "unsupported operators Abs, LeakyRelu") || !strings.Contains(err.Error(), "model.onnx") {
		t.Fatalf("load: %v; want load_failed naming Abs and LeakyRelu", err)
	}
	ml := newTestModel(pb.TensorProto_FLOAT, "N", 2)
	ml.m.Graph.Node = append(ml.m.Graph.Node, &pb.NodeProto{OpType: proto.String("Normalizer"), Domain: proto.String("ai.onnx.ml"), Input: []string{"x"}, Output: []string{"y"}})
	if _, err := loadDir(t, ml.output("y").bytes(t), nil); !errors.Is(err, api.ErrLoadFailed) || !strings.Contains(err.Error(), "unsupported operator ai.onnx.ml.Normalizer") {
		t.Fatalf("load: %v; want load_failed naming ai.onnx.ml.Normalizer", err)
	}
}

// TestRefuses: files the runtime cannot serve fail at load, saying why.
func TestRefuses(t *testing.T) {
	f32 := pb.TensorProto_FLOAT
	extern := linear2(f32)
	extern.m.Graph.Initializer[0].DataLocation = pb.TensorProto_EXTERNAL.Enum()
	noOpset := linear2(f32)
	noOpset.m.OpsetImport = nil
	for _, tc := range []struct {
		name  string
		model []byte
		says  string
	}{
		{"garbage", []byte("this is not a model"), "not an ONNX model"},
		{"empty", nil, "no graph"},
		{"no opset", noOpset.bytes(t), "no opset"},
		{"opset 99", linear2(f32).opset(99).bytes(t), "opset 99"},
		{"int input", linear2(pb.TensorProto_INT64).bytes(t), "element type INT64"},
		{"fixed batch 4", newTestModel(f32, 4, 2).node("Relu", []string{"x"}, "y").output("y").bytes(t), "fixed at 4"},
		{"symbolic feature dim", newTestModel(f32, "N", "F").node("Relu", []string{"x"}, "y").output("y").bytes(t), "dimension 1"},
		{"mixed floats", newTestModel(f32, "N", 2).doubles("k", nil, 2).node("Mul", []string{"x", "k"}, "y").output("y").bytes(t), "all FLOAT or all DOUBLE"},
		{"data count", newTestModel(f32, "N", 2).floats("k", []int64{3}, 1, 2).node("Mul", []string{"x", "k"}, "y").output("y").bytes(t), "2 values for shape [3]"},
		{"huge dims", newTestModel(f32, "N", 2).floats("k", []int64{1 << 40, 1 << 40}).node("Mul", []string{"x", "k"}, "y").output("y").bytes(t), "dimension"},
		{"external data", extern.bytes(t), "external data"},
		{"undefined input", newTestModel(f32, "N", 2).node("Relu", []string{"z"}, "y").output("y").bytes(t), `input "z" is not defined`},
		{"no output", newTestModel(f32, "N", 2).node("Relu", []string{"x"}, "y").bytes(t), "no output"},
		{"unknown output", newTestModel(f32, "N", 2).node("Relu", []string{"x"}, "y").output("q").bytes(t), `output "q"`},
		{"shapes", newTestModel(f32, "N", 2).floats("k", []int64{3}, 1, 2, 3).node("Add", []string{"x", "k"}, "y").output("y").bytes(t), "do not broadcast"},
		{"gemm shapes", newTestModel(f32, "N", 2).floats("W", []int64{3, 1}, 1, 2, 3).node("Gemm", []string{"x", "W"}, "y").output("y").bytes(t), "inner dimensions 2 and 3"},
		{"reshape float shape", newTestModel(f32, "N", 2).floats("s", []int64{1}, 2).node("Reshape", []string{"x", "s"}, "y").output("y").bytes(t), "INT64 constant"},
		{"reshape count", newTestModel(f32, "N", 2).ints("s", -1, 3).node("Reshape", []string{"x", "s"}, "y").output("y").bytes(t), "cannot take shape"},
		{"concat axis", newTestModel(f32, "N", 2).node("Concat", []string{"x", "x"}, "y").output("y").bytes(t), "axis is required"},
		{"softmax axis", newTestModel(f32, "N", 2).node("Softmax", []string{"x"}, "y", attrInt("axis", 2)).output("y").bytes(t), "axis out of range"},
		{"blow-up", newTestModel(f32, "N", 1).floats("a", []int64{40000, 1}, make([]float32, 40000)...).floats("b", []int64{1, 40000}, make([]float32, 40000)...).
			node("Add", []string{"a", "b"}, "c").node("Add", []string{"x", "c"}, "y").output("y").bytes(t), "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadDir(t, tc.model, nil)
			if !errors.Is(err, api.ErrLoadFailed) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("%v; want load_failed saying %q", err, tc.says)
			}
		})
	}
	if _, err := loadDir(t, linear2(f32).bytes(t), map[string]string{OptionOutput: "nope"}); !errors.Is(err, api.ErrLoadFailed) || !strings.Contains(err.Error(), `no output "nope"`) {
		t.Fatalf("option output nope: %v", err)
	}
}

// TestBatchFolded: a graph whose Reshape fixes the batch at 1 cannot stack
// rows; it is served one run per row, still answering each row.
func TestBatchFolded(t *testing.T) {
	b := newTestModel(pb.TensorProto_FLOAT, "N", 2).ints("s", 1, 2).
		node("Reshape", []string{"x", "s"}, "r").node("Relu", []string{"r"}, "y").output("y").bytes(t)
	m, err := Parse(b, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Batched() {
		t.Fatal("a graph reshaping to [1, 2] is batched")
	}
	out := predictOne(t, m, `{"features":[1,-2]}`, `{"features":[-3,4]}`)
	if string(out[0].Payload) != `{"prediction":[1,0]}` || string(out[1].Payload) != `{"prediction":[0,4]}` {
		t.Fatalf("answers %s %s", out[0].Payload, out[1].Payload)
	}
}

// TestMemory: the model's memory is its constants plus the bound on
// intermediates at the manifest's batch.max_size.
func TestMemory(t *testing.T) {
	W := make([]float32, 1000*100)
	b := newTestModel(pb.TensorProto_FLOAT, "N", 1000).floats("W", []int64{1000, 100}, W...).
		node("MatMul", []string{"x", "W"}, "h").node("Relu", []string{"h"}, "y").output("y").bytes(t)
	m64, err := Parse(b, "", 64)
	if err != nil {
		t.Fatal(err)
	}
	m128, err := Parse(b, "", 128)
	if err != nil {
		t.Fatal(err)
	}
	consts := int64(4 * len(W))
	// Per row: h and y (100 floats each), the row as float32 and float64
	// (1000 × 12 bytes), the output's float64 copy (100 × 8) and one more
	// cached plan.
	pl, err := m64.g.plan(1)
	if err != nil {
		t.Fatal(err)
	}
	perRow := int64(2*100*4+1000*12+100*8) + planBytes(pl)
	if got := m128.MemoryBytes() - m64.MemoryBytes(); got != 64*perRow {
		t.Errorf("64 more rows cost %d bytes, want %d", got, 64*perRow)
	}
	if got := m64.MemoryBytes(); got < consts+64*perRow || got > consts+64*perRow+16<<10 {
		t.Errorf("memory %d, want about %d", got, consts+64*perRow)
	}
}

func TestCheckManifest(t *testing.T) {
	var rt Runtime
	if err := rt.CheckManifest(&modelhost.Manifest{Format: "onnx"}); err != nil {
		t.Error(err)
	}
	if err := rt.CheckManifest(&modelhost.Manifest{Format: "xgboost-json"}); !errors.Is(err, api.ErrBadInput) {
		t.Errorf("format xgboost-json: %v", err)
	}
}

// TestConcurrentPredict runs batches of different sizes on many goroutines
// (go test -race checks the pooled buffers and the plan cache).
func TestConcurrentPredict(t *testing.T) {
	m, err := Parse(linear2(pb.TensorProto_FLOAT).bytes(t), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			for i := range 50 {
				n := 1 + (g+i)%5
				in := make([]modelhost.Input, n)
				for r := range in {
					in[r].Payload = []byte(`{"features":[3,4]}`)
				}
				out, perr := m.Predict(context.Background(), in)
				if perr != nil {
					err = perr
					break
				}
				for _, o := range out {
					if string(o.Payload) != `{"prediction":10.5}` {
						err = errors.New(string(o.Payload))
					}
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
