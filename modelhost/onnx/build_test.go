package onnx

import (
	"context"
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/manta-ml/manta/modelhost"
	pb "github.com/manta-ml/manta/modelhost/onnx/internal/onnxpb"
)

// testModel builds small ONNX models in Go for the tests that need no
// oracle (refusals, errors, fuzz seeds). The oracle tests build theirs with
// ONNX's own Python helper API instead.
type testModel struct{ m *pb.ModelProto }

// newTestModel starts a model whose input "x" has the given element type
// and dims (an int64 is a fixed size, a string a symbolic one).
func newTestModel(elem pb.TensorProto_DataType, dims ...any) *testModel {
	var shape pb.TensorShapeProto
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			shape.Dim = append(shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		case string:
			shape.Dim = append(shape.Dim, &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimParam{DimParam: d}})
		}
	}
	in := &pb.ValueInfoProto{Name: proto.String("x"), Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{
		ElemType: proto.Int32(int32(elem)), Shape: &shape}}}}
	return &testModel{m: &pb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*pb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(13)}},
		Graph:       &pb.GraphProto{Name: proto.String("test"), Input: []*pb.ValueInfoProto{in}},
	}}
}

func (b *testModel) node(op string, in []string, out string, attrs ...*pb.AttributeProto) *testModel {
	b.m.Graph.Node = append(b.m.Graph.Node, &pb.NodeProto{OpType: proto.String(op), Input: in, Output: []string{out}, Attribute: attrs})
	return b
}

func (b *testModel) floats(name string, dims []int64, v ...float32) *testModel {
	b.m.Graph.Initializer = append(b.m.Graph.Initializer, &pb.TensorProto{Name: proto.String(name), Dims: dims,
		DataType: proto.Int32(int32(pb.TensorProto_FLOAT)), FloatData: v})
	return b
}

func (b *testModel) doubles(name string, dims []int64, v ...float64) *testModel {
	b.m.Graph.Initializer = append(b.m.Graph.Initializer, &pb.TensorProto{Name: proto.String(name), Dims: dims,
		DataType: proto.Int32(int32(pb.TensorProto_DOUBLE)), DoubleData: v})
	return b
}

func (b *testModel) ints(name string, v ...int64) *testModel {
	b.m.Graph.Initializer = append(b.m.Graph.Initializer, &pb.TensorProto{Name: proto.String(name), Dims: []int64{int64(len(v))},
		DataType: proto.Int32(int32(pb.TensorProto_INT64)), Int64Data: v})
	return b
}

func (b *testModel) output(names ...string) *testModel {
	for _, n := range names {
		b.m.Graph.Output = append(b.m.Graph.Output, &pb.ValueInfoProto{Name: proto.String(n)})
	}
	return b
}

func (b *testModel) opset(v int64) *testModel {
	b.m.OpsetImport[0].Version = proto.Int64(v)
	return b
}

func (b *testModel) bytes(t testing.TB) []byte {
	t.Helper()
	out, err := proto.Marshal(b.m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func attrInt(name string, v int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func attrFloat(name string, v float32) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// linear2 is y = Gemm(x[N,2], W[2,1], b) with W = [0.5, 2], b = 1: the
// linear runtime's demo model, as a graph.
func linear2(elem pb.TensorProto_DataType) *testModel {
	b := newTestModel(elem, "N", 2)
	if elem == pb.TensorProto_DOUBLE {
		b.doubles("W", []int64{2, 1}, 0.5, 2).doubles("b", []int64{1}, 1)
	} else {
		b.floats("W", []int64{2, 1}, 0.5, 2).floats("b", []int64{1}, 1)
	}
	return b.node("Gemm", []string{"x", "W", "b"}, "y").output("y")
}

// answer is a decoded model output.
type answer struct {
	Prediction any `json:"prediction"`
}

func predictOne(t testing.TB, m modelhost.Model, payloads ...string) []modelhost.Output {
	t.Helper()
	in := make([]modelhost.Input, len(payloads))
	for i, p := range payloads {
		in[i].Payload = []byte(p)
	}
	out, err := m.Predict(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d outputs for %d inputs", len(out), len(in))
	}
	return out
}

func decode(t testing.TB, o modelhost.Output) answer {
	t.Helper()
	if o.Err != nil {
		t.Fatalf("output error: %v", o.Err)
	}
	var a answer
	if err := json.Unmarshal(o.Payload, &a); err != nil {
		t.Fatalf("output %s: %v", o.Payload, err)
	}
	return a
}
