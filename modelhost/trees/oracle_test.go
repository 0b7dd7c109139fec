package trees_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/manta-ml/manta/modelhost/trees"
)

// TestXGBoostOracle checks the xgboost runtime against xgboost itself:
// models trained here by Debian's python3-xgboost (regressors with three
// objectives and a dart booster, a binary and two multiclass classifiers,
// base_score set, missing values in training and test rows) answer 1,200
// rows each as xgboost's own predict does, within float32 precision, and
// every classifier's class is xgboost's; the same models saved as UBJSON
// answer exactly as the JSON ones.
func TestXGBoostOracle(t *testing.T) {
	dir := xgboostOracle(t)
	for _, tc := range []struct {
		name string
		kind trees.Kind
	}{
		{"reg-squarederror", trees.Regressor},
		{"reg-gamma", trees.Regressor},
		{"reg-logistic", trees.Regressor},
		{"reg-dart", trees.Regressor},
		{"binary-logistic", trees.Binary},
		{"multi-softprob", trees.Multiclass},
		{"multi-softmax", trees.Multiclass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := filepath.Join(dir, tc.name)
			b, err := os.ReadFile(filepath.Join(d, "model.json"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := trees.ParseXGBoost(b)
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind() != tc.kind || m.NumFeatures() != 8 {
				t.Fatalf("kind %v with %d features, want %v with 8", m.Kind(), m.NumFeatures(), tc.kind)
			}
			var rows [][]*float64
			var want struct {
				Prediction    []float64   `json:"prediction"`
				Probabilities [][]float64 `json:"probabilities"`
			}
			readJSON(t, filepath.Join(d, "rows.json"), &rows)
			readJSON(t, filepath.Join(d, "want.json"), &want)
			if len(rows) < 1000 || len(want.Prediction) != len(rows) {
				t.Fatalf("%d rows, %d answers", len(rows), len(want.Prediction))
			}
			payloads := make([][]byte, len(rows))
			missing := 0
			for i, r := range rows {
				x := make([]float64, len(r))
				for k, v := range r {
					x[k] = math.NaN()
					if v != nil {
						x[k] = *v
					} else {
						missing++
					}
				}
				payloads[i] = row(x)
			}
			if missing < len(rows) {
				t.Fatalf("only %d missing values in %d rows", missing, len(rows))
			}
			// Batches of 64 (the rows of a batch are evaluated together)
			// and the first rows one by one must both be xgboost's.
			var got []answer
			for lo := 0; lo < len(payloads); lo += 64 {
				for _, o := range predict(t, m, payloads[lo:min(lo+64, len(payloads))]...) {
					got = append(got, decode(t, o))
				}
			}
			for i := 0; i < 100; i++ {
				one := decode(t, predict(t, m, payloads[i])[0])
				if *one.Prediction != *got[i].Prediction {
					t.Fatalf("row %d alone %v, in a batch %v", i, *one.Prediction, *got[i].Prediction)
				}
			}
			worst := 0.0
			for i, a := range got {
				p := *a.Prediction
				if tc.kind == trees.Regressor {
					if !near(p, want.Prediction[i]) {
						t.Fatalf("row %d %s: %v, xgboost %v", i, payloads[i], p, want.Prediction[i])
					}
					worst = max(worst, math.Abs(p-want.Prediction[i]))
					continue
				}
				wp := want.Probabilities[i]
				if len(a.Probabilities) != len(wp) {
					t.Fatalf("row %d: %d probabilities, xgboost %d", i, len(a.Probabilities), len(wp))
				}
				for k := range wp {
					if !near(a.Probabilities[k], wp[k]) {
						t.Fatalf("row %d %s: P(%d) = %v, xgboost %v", i, payloads[i], k, a.Probabilities[k], wp[k])
					}
					worst = max(worst, math.Abs(a.Probabilities[k]-wp[k]))
				}
				if p != want.Prediction[i] && !tied(wp) {
					t.Fatalf("row %d: class %v, xgboost %v (probabilities %v)", i, p, want.Prediction[i], wp)
				}
			}
			// The same model saved as UBJSON answers every row the same.
			ub, err := os.ReadFile(filepath.Join(d, "model.ubj"))
			if err != nil {
				t.Fatal(err)
			}
			mu, err := trees.ParseXGBoost(ub)
			if err != nil {
				t.Fatalf("model.ubj: %v", err)
			}
			if mu.MemoryBytes() != m.MemoryBytes() {
				t.Fatalf("model.ubj holds %d bytes, model.json %d", mu.MemoryBytes(), m.MemoryBytes())
			}
			for lo := 0; lo < len(payloads); lo += 64 {
				batch := payloads[lo:min(lo+64, len(payloads))]
				a, b := predict(t, m, batch...), predict(t, mu, batch...)
				for i := range a {
					if string(a[i].Payload) != string(b[i].Payload) {
						t.Fatalf("row %d: model.json answers %s, model.ubj %s", lo+i, a[i].Payload, b[i].Payload)
					}
				}
			}
			t.Logf("%d rows (%d missing values), largest difference from xgboost %.3g", len(got), missing, worst)
		})
	}
}

// tied reports whether the two largest probabilities are too close for
// float32 to tell which class wins.
func tied(p []float64) bool {
	a, b := math.Inf(-1), math.Inf(-1)
	for _, v := range p {
		if v > a {
			a, b = v, a
		} else if v > b {
			b = v
		}
	}
	if len(p) == 2 {
		return math.Abs(p[1]-0.5) < 1e-6
	}
	return a-b < 1e-6
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
