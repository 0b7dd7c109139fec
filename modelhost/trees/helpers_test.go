package trees_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
)

// answer is one decoded answer of a tree model.
type answer struct {
	Prediction    *float64  `json:"prediction"`
	Probabilities []float64 `json:"probabilities"`
}

func decode(t testing.TB, out modelhost.Output) answer {
	t.Helper()
	if out.Err != nil {
		t.Fatalf("row failed: %v", out.Err)
	}
	var a answer
	if err := json.Unmarshal(out.Payload, &a); err != nil || a.Prediction == nil {
		t.Fatalf("answer %s: %v", out.Payload, err)
	}
	return a
}

// row is the payload {"features":[...]} of one row; NaN is written null.
func row(x []float64) []byte {
	b := []byte(`{"features":[`)
	for i, v := range x {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		}
	}
	return append(b, "]}"...)
}

func inputs(payloads ...[]byte) []modelhost.Input {
	in := make([]modelhost.Input, len(payloads))
	for i, p := range payloads {
		in[i] = modelhost.Input{Payload: p}
	}
	return in
}

func predict(t testing.TB, m modelhost.Model, payloads ...[]byte) []modelhost.Output {
	t.Helper()
	out, err := m.Predict(context.Background(), inputs(payloads...))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(payloads) {
		t.Fatalf("%d answers for %d rows", len(out), len(payloads))
	}
	return out
}

// near reports whether got is want within float32 precision: XGBoost
// computes in float32, and a sum of many trees or an exp may round its
// last bits differently from Go's (float64 exp rounded to float32).
func near(got, want float64) bool {
	return math.Abs(got-want) <= 4e-6*math.Max(1, math.Abs(want))
}

var (
	oracleOnce sync.Once
	oracleDir  string
	oracleErr  string
)

// xgboostOracle trains the oracle test's models with Debian's
// python3-xgboost (testdata/xgboost_oracle.py), once per test binary, and
// returns their directory. Without xgboost the test is skipped, or fails
// under CI.
func xgboostOracle(t testing.TB) string {
	t.Helper()
	py := testenv.PythonWith(t, "numpy", "xgboost")
	oracleOnce.Do(func() {
		dir, err := os.MkdirTemp("", "manta-xgboost-oracle-")
		if err != nil {
			oracleErr = err.Error()
			return
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		var stderr bytes.Buffer
		cmd := exec.Command(py, filepath.Join("testdata", "xgboost_oracle.py"), dir)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			oracleErr = err.Error() + ": " + stderr.String()
			return
		}
		oracleDir = dir
	})
	if oracleErr != "" {
		t.Fatalf("train the oracle models: %s", oracleErr)
	}
	return oracleDir
}

// cleanups run after every test of the package (TestMain): they remove
// what helpers shared across tests made.
var cleanups []func()

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	os.Exit(code)
}
