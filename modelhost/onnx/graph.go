package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/manta-ml/manta/modelhost/onnx/internal/onnxpb"
)

// Limits a model file cannot exceed. They are checked before anything of
// that size is allocated, so a malformed or hostile file costs at most a
// constant times its own size.
const (
	// maxElems bounds the element count of any one tensor (a constant, the
	// input row, or an intermediate at the planned batch size).
	maxElems = 1 << 32
	// maxRank bounds a tensor's rank.
	maxRank = 16
	// maxFeatures bounds the input's per-row element count.
	maxFeatures = 1 << 24
	// maxArenaBytes bounds one run's intermediate tensors at the model's
	// largest planned batch: a graph whose broadcasts would blow small
	// constants up into gigabytes is refused at load.
	maxArenaBytes = 1 << 30
	// maxOpset is the newest default-domain opset accepted: the listed
	// operators' semantics are those of opsets 1 to 23 (ONNX 1.18).
	maxOpset = 23
)

// opKind is a supported operator.
type opKind uint8

const (
	opGemm opKind = iota
	opMatMul
	opAdd
	opSub
	opMul
	opDiv
	opRelu
	opSigmoid
	opTanh
	opSoftmax
	opReshape
	opFlatten
	opConcat
	opIdentity
)

// opKinds maps ONNX operator names (default domain) to their kind.
// Constant is supported too: it is folded into a constant at load.
var opKinds = map[string]opKind{
	"Gemm": opGemm, "MatMul": opMatMul,
	"Add": opAdd, "Sub": opSub, "Mul": opMul, "Div": opDiv,
	"Relu": opRelu, "Sigmoid": opSigmoid, "Tanh": opTanh, "Softmax": opSoftmax,
	"Reshape": opReshape, "Flatten": opFlatten, "Concat": opConcat, "Identity": opIdentity,
}

// Operators returns the names of the supported ONNX operators, sorted.
func Operators() []string {
	names := []string{"Constant"}
	for n := range opKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// valueKind says where a value's data comes from.
type valueKind uint8

const (
	vInput    valueKind = iota // the graph's tensor input (one row or a batch)
	vFloat                     // a float constant (initializer or Constant node)
	vInt64                     // an int64 constant (Reshape's shape)
	vComputed                  // a node's output
	vOther                     // a constant of a type no supported use takes
)

// value is one named tensor of the graph.
type value struct {
	name  string
	kind  valueKind
	shape []int   // constants: their shape; others: set by each plan
	i64   []int64 // vInt64 data
	f64   []float64
	why   string // vOther: its element type
}

// node is one operator application. Every supported operator has exactly
// one output.
type node struct {
	op   opKind
	name string // "node NAME (Op)" for messages
	in   []int  // value ids; -1 for an absent optional input
	out  int
	// attributes
	transA, transB bool
	alpha, beta    float64
	axis           int
	allowZero      bool
	legacySoftmax  bool // opset < 13: softmax over the input coerced to 2-D at axis
}

// graph is a parsed, checked ONNX graph: everything but the element type
// of its float tensors.
type graph struct {
	values  []value
	nodes   []node
	input   int   // value id of the tensor input
	outputs []int // value ids of the graph outputs, in order
	names   []string
	// inRow is the input's shape without the batch dimension; nfeat its
	// element count.
	inRow []int
	nfeat int
	// batched: the input's first dimension is symbolic, so rows are
	// stacked on it; otherwise each row is a run of its own (an input of
	// shape [1, ...] or [F]).
	batched bool
	lead1   bool // not batched, and the input's shape is [1, ...]
	double  bool // float64 tensors (else float32)
	opset   int64
}

// parseGraph decodes an ONNX model file and checks it: one tensor input of
// FLOAT or DOUBLE, supported operators only (the error names every
// unsupported one), inputs defined before use, and constants whose data
// matches their shape. It allocates no tensor larger than the file.
func parseGraph(b []byte) (*graph, error) {
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(b, &mp); err != nil {
		return nil, fmt.Errorf("not an ONNX model: %v", err)
	}
	gp := mp.GetGraph()
	if gp == nil {
		return nil, fmt.Errorf("not an ONNX model: no graph")
	}
	g := &graph{input: -1}
	for _, os := range mp.GetOpsetImport() {
		if d := os.GetDomain(); d == "" || d == "ai.onnx" {
			g.opset = os.GetVersion()
		}
	}
	if g.opset == 0 {
		return nil, fmt.Errorf("no opset for the default domain (opset_import)")
	}
	if g.opset < 1 || g.opset > maxOpset {
		return nil, fmt.Errorf("opset %d: supported 1 to %d", g.opset, maxOpset)
	}
	if len(gp.GetSparseInitializer()) > 0 {
		return nil, fmt.Errorf("sparse initializers are not supported")
	}
	ids := make(map[string]int)
	define := func(v value) (int, error) {
		if v.name == "" {
			return 0, fmt.Errorf("a tensor without a name")
		}
		if _, dup := ids[v.name]; dup {
			return 0, fmt.Errorf("tensor %q is defined twice", v.name)
		}
		ids[v.name] = len(g.values)
		g.values = append(g.values, v)
		return len(g.values) - 1, nil
	}

	// The input decides the float type; initializers are read after it.
	inits := make(map[string]bool)
	for _, t := range gp.GetInitializer() {
		inits[t.GetName()] = true
	}
	var inputs []*onnxpb.ValueInfoProto
	for _, vi := range gp.GetInput() {
		if !inits[vi.GetName()] { // IR < 4 lists initializers as inputs too
			inputs = append(inputs, vi)
		}
	}
	if len(inputs) != 1 {
		names := make([]string, len(inputs))
		for i, vi := range inputs {
			names[i] = vi.GetName()
		}
		return nil, fmt.Errorf("the graph has %d inputs %q: want one tensor input", len(inputs), names)
	}
	if err := g.readInput(inputs[0]); err != nil {
		return nil, err
	}
	in, err := define(value{name: inputs[0].GetName(), kind: vInput})
	if err != nil {
		return nil, err
	}
	g.input = in
	for _, t := range gp.GetInitializer() {
		v, err := g.readConst(t)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", t.GetName(), err)
		}
		if _, err := define(v); err != nil {
			return nil, err
		}
	}

	var unsupported []string
	for i, np := range gp.GetNode() {
		label := np.GetName()
		if label == "" {
			label = fmt.Sprint("#", i)
		}
		label = fmt.Sprintf("node %s (%s)", label, np.GetOpType())
		if d := np.GetDomain(); d != "" && d != "ai.onnx" {
			unsupported = append(unsupported, d+"."+np.GetOpType())
			continue
		}
		if np.GetOpType() == "Constant" {
			v, err := g.readConstantNode(np)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", label, err)
			}
			if len(np.GetOutput()) != 1 {
				return nil, fmt.Errorf("%s: want 1 output, got %d", label, len(np.GetOutput()))
			}
			v.name = np.GetOutput()[0]
			if _, err := define(v); err != nil {
				return nil, fmt.Errorf("%s: %w", label, err)
			}
			continue
		}
		op, ok := opKinds[np.GetOpType()]
		if !ok {
			unsupported = append(unsupported, np.GetOpType())
			continue
		}
		if len(unsupported) > 0 {
			continue // only collecting the names now
		}
		n := node{op: op, name: label, alpha: 1, beta: 1}
		for _, name := range np.GetInput() {
			if name == "" {
				n.in = append(n.in, -1)
				continue
			}
			id, ok := ids[name]
			if !ok {
				return nil, fmt.Errorf("%s: input %q is not defined before it (nodes must be in topological order)", label, name)
			}
			n.in = append(n.in, id)
		}
		if err := g.readAttrs(&n, np); err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		if err := g.checkInputs(&n); err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		outs := np.GetOutput()
		if len(outs) != 1 || outs[0] == "" {
			return nil, fmt.Errorf("%s: want 1 output, got %d", label, len(outs))
		}
		if n.out, err = define(value{name: outs[0], kind: vComputed}); err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		g.nodes = append(g.nodes, n)
	}
	if len(unsupported) > 0 {
		return nil, unsupportedError(unsupported)
	}

	for _, vi := range gp.GetOutput() {
		id, ok := ids[vi.GetName()]
		if !ok {
			return nil, fmt.Errorf("output %q is not computed by the graph", vi.GetName())
		}
		if k := g.values[id].kind; k == vInt64 || k == vOther {
			return nil, fmt.Errorf("output %q is not a float tensor", vi.GetName())
		}
		g.outputs = append(g.outputs, id)
		g.names = append(g.names, vi.GetName())
	}
	if len(g.outputs) == 0 {
		return nil, fmt.Errorf("the graph has no output")
	}
	return g, nil
}

// unsupportedError names each unsupported operator once, in order of
// appearance, and the supported ones.
func unsupportedError(ops []string) error {
	seen := make(map[string]bool)
	var uniq []string
	for _, o := range ops {
		if !seen[o] {
			seen[o] = true
			uniq = append(uniq, o)
		}
	}
	word := "operator"
	if len(uniq) > 1 {
		word = "operators"
	}
	return fmt.Errorf("unsupported %s %s (supported: %s)", word, strings.Join(uniq, ", "), strings.Join(Operators(), ", "))
}

// readInput reads the tensor input's type and shape: FLOAT or DOUBLE;
// either [batch, d1, ...] with a symbolic first dimension (rows are
// stacked on it), or a fixed shape ([1, d1, ...] or [d1, ...]) run once per
// row. Every other dimension must be known.
func (g *graph) readInput(vi *onnxpb.ValueInfoProto) error {
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return fmt.Errorf("input %q: not a tensor", vi.GetName())
	}
	switch t := onnxpb.TensorProto_DataType(tt.GetElemType()); t {
	case onnxpb.TensorProto_FLOAT:
	case onnxpb.TensorProto_DOUBLE:
		g.double = true
	default:
		return fmt.Errorf("input %q: element type %s: want FLOAT or DOUBLE", vi.GetName(), t)
	}
	if tt.GetShape() == nil {
		return fmt.Errorf("input %q: no shape", vi.GetName())
	}
	dims := tt.GetShape().GetDim()
	if len(dims) == 0 || len(dims) > maxRank {
		return fmt.Errorf("input %q: rank %d: want 1 to %d", vi.GetName(), len(dims), maxRank)
	}
	known := func(d *onnxpb.TensorShapeProto_Dimension) (int, bool) {
		if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); !ok {
			return 0, false
		}
		v := d.GetDimValue()
		return int(v), v >= 1 && v <= maxFeatures
	}
	rest := dims
	if len(dims) >= 2 {
		if v, ok := known(dims[0]); !ok {
			if _, isValue := dims[0].GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); isValue {
				return fmt.Errorf("input %q: dimension 0 is %d", vi.GetName(), dims[0].GetDimValue())
			}
			g.batched = true
			rest = dims[1:]
		} else if v == 1 {
			g.lead1 = true
			rest = dims[1:]
		} else {
			return fmt.Errorf("input %q: dimension 0 (the batch) is fixed at %d: want a symbolic dimension or 1", vi.GetName(), v)
		}
	}
	n := 1
	for i, d := range rest {
		v, ok := known(d)
		if !ok {
			return fmt.Errorf("input %q: dimension %d is not a known positive size (only the batch dimension may be symbolic)", vi.GetName(), len(dims)-len(rest)+i)
		}
		n *= v
		if n > maxFeatures {
			return fmt.Errorf("input %q: more than %d values per row", vi.GetName(), maxFeatures)
		}
		g.inRow = append(g.inRow, v)
	}
	g.nfeat = n
	return nil
}

// readConst reads an initializer or a Constant node's tensor. Its data must
// be in the file (external data is refused) and match its shape exactly,
// so no allocation is sized by a count the file claims without backing it.
func (g *graph) readConst(t *onnxpb.TensorProto) (value, error) {
	v := value{name: t.GetName()}
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL || len(t.GetExternalData()) > 0 {
		return v, fmt.Errorf("external data is not supported: save the model with its tensors inside")
	}
	if t.GetSegment() != nil {
		return v, fmt.Errorf("segmented tensors are not supported")
	}
	if len(t.GetDims()) > maxRank {
		return v, fmt.Errorf("rank %d above %d", len(t.GetDims()), maxRank)
	}
	n := 1
	for _, d := range t.GetDims() {
		if d < 0 || d > maxElems {
			return v, fmt.Errorf("dimension %d", d)
		}
		v.shape = append(v.shape, int(d))
		n *= int(d)
		if n > maxElems {
			return v, fmt.Errorf("more than %d elements", int64(maxElems))
		}
	}
	raw := t.GetRawData()
	dt := onnxpb.TensorProto_DataType(t.GetDataType())
	switch dt {
	case onnxpb.TensorProto_FLOAT:
		if g.double {
			return v, fmt.Errorf("FLOAT in a graph whose input is DOUBLE: the float tensors of a model must be all FLOAT or all DOUBLE")
		}
		v.kind = vFloat
		switch {
		case len(raw) > 0:
			if len(raw) != 4*n {
				return v, fmt.Errorf("raw data of %d bytes for %d FLOAT values", len(raw), n)
			}
			v.f64 = make([]float64, n)
			for i := range v.f64 {
				v.f64[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
			}
		default:
			fd := t.GetFloatData()
			if len(fd) != n {
				return v, fmt.Errorf("%d values for shape %v", len(fd), v.shape)
			}
			v.f64 = make([]float64, n)
			for i, x := range fd {
				v.f64[i] = float64(x)
			}
		}
	case onnxpb.TensorProto_DOUBLE:
		if !g.double {
			return v, fmt.Errorf("DOUBLE in a graph whose input is FLOAT: the float tensors of a model must be all FLOAT or all DOUBLE")
		}
		v.kind = vFloat
		switch {
		case len(raw) > 0:
			if len(raw) != 8*n {
				return v, fmt.Errorf("raw data of %d bytes for %d DOUBLE values", len(raw), n)
			}
			v.f64 = make([]float64, n)
			for i := range v.f64 {
				v.f64[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		default:
			dd := t.GetDoubleData()
			if len(dd) != n {
				return v, fmt.Errorf("%d values for shape %v", len(dd), v.shape)
			}
			v.f64 = append([]float64(nil), dd...)
		}
	case onnxpb.TensorProto_INT64:
		v.kind = vInt64
		switch {
		case len(raw) > 0:
			if len(raw) != 8*n {
				return v, fmt.Errorf("raw data of %d bytes for %d INT64 values", len(raw), n)
			}
			v.i64 = make([]int64, n)
			for i := range v.i64 {
				v.i64[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		default:
			id := t.GetInt64Data()
			if len(id) != n {
				return v, fmt.Errorf("%d values for shape %v", len(id), v.shape)
			}
			v.i64 = append([]int64(nil), id...)
		}
	default:
		v.kind = vOther
		v.why = dt.String()
		v.shape = nil
	}
	return v, nil
}

// readConstantNode folds a Constant node into a constant value.
func (g *graph) readConstantNode(np *onnxpb.NodeProto) (value, error) {
	for _, a := range np.GetAttribute() {
		switch a.GetName() {
		case "value":
			if a.GetT() == nil {
				return value{}, fmt.Errorf("attribute value: no tensor")
			}
			return g.readConst(a.GetT())
		case "value_float":
			return value{kind: vFloat, shape: []int{}, f64: []float64{float64(a.GetF())}}, nil
		case "value_floats":
			fs := a.GetFloats()
			v := value{kind: vFloat, shape: []int{len(fs)}, f64: make([]float64, len(fs))}
			for i, f := range fs {
				v.f64[i] = float64(f)
			}
			return v, nil
		case "value_int":
			return value{kind: vInt64, shape: []int{}, i64: []int64{a.GetI()}}, nil
		case "value_ints":
			return value{kind: vInt64, shape: []int{len(a.GetInts())}, i64: append([]int64(nil), a.GetInts()...)}, nil
		}
	}
	return value{}, fmt.Errorf("no value, value_float(s) or value_int(s) attribute (sparse and string constants are not supported)")
}

// readAttrs reads the attributes the node's operator uses; others are
// ignored.
func (g *graph) readAttrs(n *node, np *onnxpb.NodeProto) error {
	axisSet := false
	n.axis = 1 // Flatten's default, and Softmax's before opset 13
	if n.op == opSoftmax && g.opset >= 13 {
		n.axis = -1
	}
	n.legacySoftmax = n.op == opSoftmax && g.opset < 13
	for _, a := range np.GetAttribute() {
		switch {
		case n.op == opGemm && a.GetName() == "transA":
			n.transA = a.GetI() != 0
		case n.op == opGemm && a.GetName() == "transB":
			n.transB = a.GetI() != 0
		case n.op == opGemm && a.GetName() == "alpha":
			n.alpha = float64(a.GetF())
		case n.op == opGemm && a.GetName() == "beta":
			n.beta = float64(a.GetF())
		case (n.op == opSoftmax || n.op == opFlatten || n.op == opConcat) && a.GetName() == "axis":
			if a.GetI() < -maxRank || a.GetI() > maxRank {
				return fmt.Errorf("axis %d", a.GetI())
			}
			n.axis = int(a.GetI())
			axisSet = true
		case n.op == opReshape && a.GetName() == "allowzero":
			n.allowZero = a.GetI() != 0
		}
	}
	if n.op == opConcat && !axisSet {
		return fmt.Errorf("attribute axis is required")
	}
	return nil
}

// checkInputs checks the number and the kinds of a node's inputs.
func (g *graph) checkInputs(n *node) error {
	lo, hi := 1, 1
	switch n.op {
	case opGemm:
		lo, hi = 2, 3
	case opMatMul, opAdd, opSub, opMul, opDiv, opReshape:
		lo, hi = 2, 2
	case opConcat:
		lo, hi = 1, 1<<20
	}
	if len(n.in) < lo || len(n.in) > hi {
		if lo == hi {
			return fmt.Errorf("want %d inputs, got %d", lo, len(n.in))
		}
		return fmt.Errorf("want %d to %d inputs, got %d", lo, hi, len(n.in))
	}
	for i, id := range n.in {
		optional := n.op == opGemm && i == 2
		if id < 0 {
			if !optional {
				return fmt.Errorf("input %d is missing", i)
			}
			continue
		}
		v := &g.values[id]
		wantInt := n.op == opReshape && i == 1
		switch {
		case wantInt && v.kind != vInt64:
			return fmt.Errorf("input %d (%q): the shape must be an INT64 constant (an initializer or a Constant node)", i, v.name)
		case !wantInt && v.kind == vInt64:
			return fmt.Errorf("input %d (%q): an INT64 tensor where a float tensor is expected", i, v.name)
		case v.kind == vOther:
			return fmt.Errorf("input %d (%q): element type %s is not supported", i, v.name, v.why)
		}
	}
	return nil
}
