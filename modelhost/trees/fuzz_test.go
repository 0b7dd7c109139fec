package trees_test

import (
	"math"
	"strings"
	"testing"

	"github.com/manta-ml/manta/modelhost/trees"
)

// fuzzModel checks a model a fuzzer got parsed: its memory is bounded by
// the file's size (no count written in the file sized an allocation), and
// it answers rows of its width, with and without missing values, and
// refuses a row of another width, without panicking.
func fuzzModel(t *testing.T, m *trees.Model, b []byte) {
	if mem := m.MemoryBytes(); mem <= 0 || mem > 64*int64(len(b))+4096 {
		t.Fatalf("memory %d for a %d-byte file", mem, len(b))
	}
	n := m.NumFeatures()
	if n > 4096 {
		return // the rows would be the test's allocation, not the parser's
	}
	x := make([]float64, n)
	y := make([]float64, n)
	for i := range x {
		x[i] = float64(i%7) - 2.5
		y[i] = math.NaN()
	}
	out := predict(t, m, row(x), row(y), row(x[:n/2]))
	for i := range 2 {
		if out[i].Err != nil && !strings.Contains(out[i].Err.Error(), "not a finite number") {
			t.Fatalf("row %d: %v", i, out[i].Err)
		}
	}
	if n > 0 && out[2].Err == nil {
		t.Fatalf("%d values for %d features answered %s", n/2, n, out[2].Payload)
	}
}

// FuzzXGBoost: a malformed XGBoost JSON or UBJSON model is an error, never
// a panic, a hang or an allocation out of proportion to the file.
func FuzzXGBoost(f *testing.F) {
	f.Add([]byte(xgSmall))
	f.Add([]byte(xgMulti))
	f.Add(toUBJ(f, xgSmall))
	f.Add(toUBJ(f, xgMulti))
	f.Add([]byte(strings.Replace(xgSmall, `"gbtree","model"`, `"dart","weight_drop":[0.5],"gbtree":{"name":"gbtree","model"`, 1) + "}"))
	f.Add([]byte(`{"learner":{"learner_model_param":{"num_feature":"1"},"objective":{"name":"reg:squarederror"},"gradient_booster":{"name":"gbtree","model":{"tree_info":[],"trees":[]}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := trees.ParseXGBoost(b)
		if err != nil {
			return
		}
		fuzzModel(t, m, b)
	})
}

// FuzzLightGBM: a malformed LightGBM text model is an error, never a
// panic (in Manta's checks or in leaves), a hang or an allocation out of
// proportion to the file.
func FuzzLightGBM(f *testing.F) {
	f.Add([]byte(lgRegression))
	f.Add([]byte(lgBinary))
	f.Add([]byte(lgMulticlass))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := trees.ParseLightGBM(b)
		if err != nil {
			return
		}
		fuzzModel(t, m, b)
	})
}
