package onnx

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/manta-ml/manta/internal/testenv"
	pb "github.com/manta-ml/manta/modelhost/onnx/internal/onnxpb"
)

// oracleCase is one graph written by testdata/oracle.py: the rows to send
// and numpy's answers.
type oracleCase struct {
	Double   bool             `json:"double"`
	Rows     [][]float64      `json:"rows"`
	Outputs  []string         `json:"outputs"`
	Expected map[string][]any `json:"expected"`
	name     string
	model    []byte
	ops      map[string]bool
}

var (
	oracleOnce  sync.Once
	oracleDir   string
	oracleErr   error
	oracleCases []*oracleCase
)

// oracle runs testdata/oracle.py once per test binary with Debian's Python
// (python3-onnx, python3-numpy) and reads what it wrote. Without them the
// test is skipped, or fails under CI.
func oracle(t *testing.T) []*oracleCase {
	t.Helper()
	py := testenv.PythonWith(t, "onnx", "numpy")
	oracleOnce.Do(func() {
		oracleDir, oracleErr = os.MkdirTemp("", "manta-onnx-oracle-")
		if oracleErr != nil {
			return
		}
		out, err := exec.Command(py, filepath.Join("testdata", "oracle.py"), oracleDir).CombinedOutput()
		if err != nil {
			oracleErr = fmt.Errorf("%s testdata/oracle.py: %v\n%s", py, err, out)
			return
		}
		names, err := filepath.Glob(filepath.Join(oracleDir, "*.json"))
		if err != nil || len(names) == 0 {
			oracleErr = fmt.Errorf("oracle.py wrote no case: %v", err)
			return
		}
		sort.Strings(names)
		for _, n := range names {
			c := &oracleCase{name: strings.TrimSuffix(filepath.Base(n), ".json"), ops: make(map[string]bool)}
			b, err := os.ReadFile(n)
			if err == nil {
				err = json.Unmarshal(b, c)
			}
			if err == nil {
				c.model, err = os.ReadFile(strings.TrimSuffix(n, ".json") + ".onnx")
			}
			var mp pb.ModelProto
			if err == nil {
				err = proto.Unmarshal(c.model, &mp)
			}
			if err != nil {
				oracleErr = fmt.Errorf("%s: %v", n, err)
				return
			}
			for _, nd := range mp.GetGraph().GetNode() {
				c.ops[nd.GetOpType()] = true
			}
			oracleCases = append(oracleCases, c)
		}
	})
	if oracleErr != nil {
		t.Fatal(oracleErr)
	}
	return oracleCases
}

func TestMain(m *testing.M) {
	code := m.Run()
	if oracleDir != "" {
		os.RemoveAll(oracleDir)
	}
	os.Exit(code)
}

// row is a request payload for one row of features.
func row(x []float64) string {
	b, _ := json.Marshal(map[string][]float64{"features": x})
	return string(b)
}

// TestOracle: graphs built by ONNX's Python helper API (MLPs with softmax
// and sigmoid heads, logistic regression, arithmetic with broadcasting,
// Reshape/Flatten/Concat/Identity/MatMul/Softmax on 3-D tensors, two
// outputs, opset 11's Softmax, a fixed batch of 1; float32 and float64)
// answer every row as numpy does, within float tolerance: all rows in one
// batch, and rows one at a time.
func TestOracle(t *testing.T) {
	cases := oracle(t)
	covered := make(map[string]bool)
	for _, c := range cases {
		for op := range c.ops {
			covered[op] = true
		}
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse(c.model, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if want := len(c.Rows[0]); m.NumFeatures() != want {
				t.Fatalf("NumFeatures %d, want %d", m.NumFeatures(), want)
			}
			payloads := make([]string, len(c.Rows))
			for i, r := range c.Rows {
				payloads[i] = row(r)
			}
			all := predictOne(t, m, payloads...)
			for i := range c.Rows {
				c.check(t, i, decode(t, all[i]).Prediction)
			}
			for i := 0; i < len(c.Rows); i += 37 {
				c.check(t, i, decode(t, predictOne(t, m, payloads[i])[0]).Prediction)
			}
		})
	}
	for _, op := range Operators() {
		if !covered[op] {
			t.Errorf("no oracle graph uses %s", op)
		}
	}
}

// check compares row i's prediction with numpy's: one output answers its
// value, several a map by name.
func (c *oracleCase) check(t *testing.T, i int, got any) {
	t.Helper()
	if len(c.Outputs) == 1 {
		c.near(t, fmt.Sprintf("row %d", i), got, c.Expected[c.Outputs[0]][i])
		return
	}
	byName, ok := got.(map[string]any)
	if !ok || len(byName) != len(c.Outputs) {
		t.Fatalf("row %d: %v, want a map of %q", i, got, c.Outputs)
	}
	for _, n := range c.Outputs {
		c.near(t, fmt.Sprintf("row %d output %s", i, n), byName[n], c.Expected[n][i])
	}
}

// near compares nested arrays of numbers: float32 graphs within 1e-5
// relative (plus 1e-6 absolute), float64 graphs within 1e-12.
func (c *oracleCase) near(t *testing.T, where string, got, want any) {
	t.Helper()
	switch w := want.(type) {
	case float64:
		g, ok := got.(float64)
		rel, abs := 1e-5, 1e-6
		if c.Double {
			rel, abs = 1e-12, 1e-14
		}
		if !ok || math.Abs(g-w) > abs+rel*math.Abs(w) {
			t.Fatalf("%s: got %v, want %v", where, got, w)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			t.Fatalf("%s: got %v, want %v", where, got, w)
		}
		for k := range w {
			c.near(t, fmt.Sprintf("%s[%d]", where, k), g[k], w[k])
		}
	default:
		t.Fatalf("%s: expected value %T", where, want)
	}
}
