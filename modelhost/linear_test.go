package modelhost

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/manta-ml/manta/api"
)

func mustLinear(t testing.TB, spec LinearSpec) Model {
	t.Helper()
	m, err := NewLinearModel(spec)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func predictOne(t testing.TB, m Model, payload string) (string, error) {
	t.Helper()
	out, err := m.Predict(context.Background(), []Input{{Payload: []byte(payload)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("got %d outputs", len(out))
	}
	return string(out[0].Payload), out[0].Err
}

func TestLinearPredict(t *testing.T) {
	id := mustLinear(t, LinearSpec{Weights: []float64{0.5, -2, 3}, Bias: 1, Link: LinkIdentity})
	logit := mustLinear(t, LinearSpec{Weights: []float64{1, 1}, Bias: -1, Link: LinkLogistic})
	empty := mustLinear(t, LinearSpec{Weights: []float64{}, Bias: 2.5})
	sigmoid := func(y float64) float64 { return 1 / (1 + math.Exp(-y)) }
	cases := []struct {
		name    string
		m       Model
		payload string
		want    map[string]any // decoded JSON output; nil: want a bad_input error
		errHas  string
	}{
		{"identity", id, `{"features":[2,1,1]}`, map[string]any{"prediction": 1 + 1 - 2 + 3.0}, ""},
		{"identity spaces", id, " {\n \"features\" : [ 2 , 1 ,1 ] }\t", map[string]any{"prediction": 3.0}, ""},
		{"exponents and negatives", id, `{"features":[-2e0,0.5E1,1e-1]}`, map[string]any{"prediction": 1 - 1 - 10 + 0.30000000000000004}, ""},
		{"other keys (slow path)", id, `{"id":"r1","features":[2,1,1],"meta":{"a":[1,{"b":null}]}}`, map[string]any{"prediction": 3.0}, ""},
		{"key order (slow path)", id, `{"x":1,"features":[0,0,0]}`, map[string]any{"prediction": 1.0}, ""},
		{"logistic", logit, `{"features":[1,0]}`, map[string]any{"prediction": sigmoid(0)}, ""},
		{"logistic 2", logit, `{"features":[3,-1.5]}`, map[string]any{"prediction": sigmoid(0.5)}, ""},
		{"logistic saturates", logit, `{"features":[1e300,1e300]}`, map[string]any{"prediction": 1.0}, ""},
		{"batch", id, `{"features":[[2,1,1],[0,0,0],[1,1,1]]}`, map[string]any{"predictions": []any{3.0, 1.0, 2.5}}, ""},
		{"batch one row", logit, `{"features":[[1,0]]}`, map[string]any{"predictions": []any{0.5}}, ""},
		{"no features model", empty, `{"features":[]}`, map[string]any{"prediction": 2.5}, ""},
		{"too few", id, `{"features":[1,2]}`, nil, "got 2 values, want 3"},
		{"too many", id, `{"features":[1,2,3,4]}`, nil, "got 4 values, want 3"},
		{"batch row wrong", id, `{"features":[[1,2,3],[1,2]]}`, nil, "features[1]: got 2 values, want 3"},
		{"not json", id, `features=1,2,3`, nil, "decode"},
		{"truncated", id, `{"features":[1,2,3]`, nil, "decode"},
		{"trailing garbage", id, `{"features":[1,2,3]} x`, nil, "decode"},
		{"missing", id, `{"feature":[1,2,3]}`, nil, `missing "features"`},
		{"null", id, `{"features":null}`, nil, "want an array"},
		{"null element", id, `{"features":[1,null,3]}`, nil, "want an array"},
		{"string element", id, `{"features":[1,"2",3]}`, nil, "want an array"},
		{"mixed rows", id, `{"features":[[1,2,3],4]}`, nil, "want an array"},
		{"NaN literal", id, `{"features":[NaN,1,1]}`, nil, "decode"},
		{"hex", id, `{"features":[0x1,1,1]}`, nil, "decode"},
		{"leading zero", id, `{"features":[01,1,1]}`, nil, "decode"},
		{"overflow", id, `{"features":[1e400,1,1]}`, nil, "want an array"},
		{"infinite result", id, `{"features":[1e308,-1e308,1e308]}`, nil, "not finite"},
		{"empty", id, ``, nil, "decode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := predictOne(t, tc.m, tc.payload)
			if tc.want == nil {
				if !errors.Is(err, api.ErrBadInput) {
					t.Fatalf("Predict(%s) = %q, %v; want bad_input", tc.payload, got, err)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("error %q does not contain %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("Predict(%s): %v", tc.payload, err)
			}
			var dec map[string]any
			if err := json.Unmarshal([]byte(got), &dec); err != nil {
				t.Fatalf("output %q is not JSON: %v", got, err)
			}
			if !jsonEqual(dec, tc.want) {
				t.Errorf("Predict(%s) = %s, want %v", tc.payload, got, tc.want)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return string(ab) == string(bb)
}

func TestLinearBatchRowsIndependent(t *testing.T) {
	m := mustLinear(t, LinearSpec{Weights: []float64{1, 2}, Bias: 0})
	out, err := m.Predict(context.Background(), []Input{
		{Payload: []byte(`{"features":[1,1]}`)},
		{Payload: []byte(`{"features":[1]}`)},
		{Payload: []byte(`{"features":[1,1]}`), ContentType: "application/json; charset=utf-8"},
		{Payload: []byte(`{"features":[1,1]}`), ContentType: "text/csv"},
		{Payload: []byte(`{"features":[[1,1],[2,2]]}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"prediction":3}`, "", `{"prediction":3}`, "", `{"predictions":[3,6]}`}
	_ = append(out[0].Payload, "clobber"...) // must not reach the next row's payload
	for i, w := range want {
		if w == "" {
			if !errors.Is(out[i].Err, api.ErrBadInput) {
				t.Errorf("row %d: err %v, want bad_input", i, out[i].Err)
			}
			continue
		}
		if out[i].Err != nil || string(out[i].Payload) != w || out[i].ContentType != ContentTypeJSON {
			t.Errorf("row %d: %q %q %v, want %s", i, out[i].Payload, out[i].ContentType, out[i].Err, w)
		}
	}
}

func TestLinearLoadFromStore(t *testing.T) {
	store := newDirStore(t)
	spec := `{"weights":[1.5, 2, -1],"bias":0.25,"link":"identity","trained_on":"2026-11-01"}`
	m := putVersion(t, store, &Manifest{ID: uniqueID("lin"), Version: "1", Runtime: LinearRuntimeName,
		Entrypoint: "model.json"}, map[string][]byte{"model.json": []byte(spec)})
	dir, err := store.Fetch(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := LookupRuntime(LinearRuntimeName)
	model, err := rt.Load(context.Background(), m, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := predictOne(t, model, `{"features":[1,1,1]}`); err != nil || got != `{"prediction":2.75}` {
		t.Errorf("Predict = %s, %v", got, err)
	}
	if mem := model.MemoryBytes(); mem < 24 || mem > 24+128 {
		t.Errorf("MemoryBytes = %d, want 8*3 plus a small overhead", mem)
	}
	bad := []struct{ name, file, errHas string }{
		{"bad link", `{"weights":[1],"bias":0,"link":"probit"}`, `unknown link "probit"`},
		{"no weights", `{"bias":0}`, "weights missing"},
		{"weights not numbers", `{"weights":[1,"a"]}`, "weights: want an array of numbers"},
		{"not json", `weights: [1]`, "decode"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			m := putVersion(t, store, &Manifest{ID: uniqueID("linbad"), Version: "1", Runtime: LinearRuntimeName,
				Entrypoint: "model.json"}, map[string][]byte{"model.json": []byte(tc.file)})
			dir, err := store.Fetch(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = rt.Load(context.Background(), m, dir)
			if !errors.Is(err, api.ErrLoadFailed) || !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), "model.json") {
				t.Errorf("Load: %v, want load_failed naming model.json and %q", err, tc.errHas)
			}
		})
	}
}

// FuzzLinearPredict checks that the fast path and the encoding/json path of
// the linear model answer every payload the same way.
func FuzzLinearPredict(f *testing.F) {
	for _, s := range []string{`{"features":[1,2,3]}`, `{"features":[[1,2,3],[4,5,6]]}`, `{"features":[1,2]}`,
		` { "features" : [ 1 , 2 , 3 ] } `, `{"features":[[1,2,3],[1]]}`, `{"features":[]}`, `{"features":[[]]}`,
		`{"features":[1,2,3]}}`, `{"features":[1e308,1e308,1e308]}`} {
		f.Add([]byte(s))
	}
	m, err := newLinear(LinearSpec{Weights: []float64{0.5, -1, 2}, Bias: 0.1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ferr := m.predict(b)
		slow, serr := m.predictSlow(b)
		if (ferr == nil) != (serr == nil) || string(fast) != string(slow) {
			t.Fatalf("%q: fast %q %v, slow %q %v", b, fast, ferr, slow, serr)
		}
		if ferr != nil && !errors.Is(ferr, api.ErrBadInput) {
			t.Fatalf("%q: error %v does not wrap bad_input", b, ferr)
		}
		if ferr == nil && !json.Valid(fast) {
			t.Fatalf("%q: output %q is not JSON", b, fast)
		}
	})
}

func BenchmarkLinearPredict(b *testing.B) {
	w := make([]float64, 10)
	for i := range w {
		w[i] = float64(i) * 0.1
	}
	m := mustLinear(b, LinearSpec{Weights: w, Bias: 0.5, Link: LinkLogistic})
	batch := []Input{{Payload: []byte(`{"features":[0.12,1.5,-3.25,4,5.5,6.125,0.7,8,9.75,-10]}`)}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		out, err := m.Predict(ctx, batch)
		if err != nil || out[0].Err != nil {
			b.Fatal(err, out[0].Err)
		}
	}
}

// BenchmarkLinearPredictEncodingJSON is the same request decoded with
// encoding/json, for comparison with the hand-rolled scanner.
func BenchmarkLinearPredictEncodingJSON(b *testing.B) {
	w := make([]float64, 10)
	for i := range w {
		w[i] = float64(i) * 0.1
	}
	payload := []byte(`{"features":[0.12,1.5,-3.25,4,5.5,6.125,0.7,8,9.75,-10]}`)
	b.ReportAllocs()
	for b.Loop() {
		var req struct {
			Features []float64 `json:"features"`
		}
		if err := json.Unmarshal(payload, &req); err != nil {
			b.Fatal(err)
		}
		y := 0.5
		for i, x := range req.Features {
			y += w[i] * x
		}
		if _, err := json.Marshal(map[string]float64{"prediction": 1 / (1 + math.Exp(-y))}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLinearPredictBatch64(b *testing.B) {
	w := make([]float64, 10)
	for i := range w {
		w[i] = float64(i) * 0.1
	}
	m := mustLinear(b, LinearSpec{Weights: w, Bias: 0.5})
	batch := make([]Input, 64)
	for i := range batch {
		batch[i] = Input{Payload: []byte(`{"features":[0.12,1.5,-3.25,4,5.5,6.125,0.7,8,9.75,-10]}`)}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Predict(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSafePredict(t *testing.T) {
	panicky := NewFuncModel(func(context.Context, []Input) ([]Output, error) { panic("kaboom") }, 1)
	if _, err := SafePredict(context.Background(), panicky, []Input{{}}); !errors.Is(err, api.ErrInternal) || !strings.Contains(err.Error(), "kaboom") {
		t.Errorf("SafePredict of a panicking model: %v", err)
	}
	short := NewFuncModel(func(context.Context, []Input) ([]Output, error) { return nil, nil }, 1)
	if _, err := SafePredict(context.Background(), short, []Input{{}, {}}); !errors.Is(err, api.ErrInternal) {
		t.Errorf("SafePredict with missing outputs: %v", err)
	}
}
