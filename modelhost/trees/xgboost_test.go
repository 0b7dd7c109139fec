package trees_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/modelhost/trees"
)

// xgSmall is a hand-written XGBoost JSON model: one tree, x0 < 0.5 (missing:
// left) ? -0.4 : 0.3, binary:logistic with base_score 0.5 (margin 0).
const xgSmall = `{"learner":{"learner_model_param":{"base_score":"5E-1","num_class":"0","num_feature":"2"},
 "objective":{"name":"binary:logistic"},
 "gradient_booster":{"name":"gbtree","model":{"tree_info":[0],"trees":[
  {"left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[0,0,0],
   "split_conditions":[0.5,-0.4,0.3],"default_left":[1,0,0],"split_type":[0,0,0]}]}}}}`

// xgMulti is three classes, one tree each, num_feature 1.
const xgMulti = `{"learner":{"learner_model_param":{"base_score":"5E-1","num_class":"3","num_feature":"1"},
 "objective":{"name":"multi:softprob"},
 "gradient_booster":{"name":"gbtree","model":{"tree_info":[0,1,2],"trees":[
  {"left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[0,0,0],"split_conditions":[0,1,-1],"default_left":[0,0,0]},
  {"left_children":[-1],"right_children":[-1],"split_indices":[0],"split_conditions":[0.25],"default_left":[0]},
  {"left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_indices":[0,0,0],"split_conditions":[2,0,2],"default_left":[1,0,0]}]}}}}`

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func TestXGBoostByHand(t *testing.T) {
	m, err := trees.ParseXGBoost([]byte(xgSmall))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		payload string
		margin  float64
	}{
		{`{"features":[0.4, 9]}`, -0.4},
		{`{"features":[0.5, 9]}`, 0.3}, // x < cond goes left: 0.5 goes right
		{`{"features":[null, 9]}`, -0.4},
		{` { "features" : [ 2 , null ] } `, 0.3},
		{`{"id":"a","features":[0,0]}`, -0.4}, // not the fast path's shape
		{`{"features":[1e-3,0],"x":{}}`, -0.4},
	} {
		a := decode(t, predict(t, m, []byte(tc.payload))[0])
		p := float64(float32(sigmoid(float64(float32(0) + float32(tc.margin)))))
		class := 0.0
		if p > 0.5 {
			class = 1
		}
		if *a.Prediction != class || len(a.Probabilities) != 2 || math.Abs(a.Probabilities[1]-p) > 1e-7 || math.Abs(a.Probabilities[0]-(1-p)) > 1e-7 {
			t.Errorf("%s: %+v, want class %v P(1) %v", tc.payload, a, class, p)
		}
	}

	mm, err := trees.ParseXGBoost([]byte(xgMulti))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []float64{-1, 0, 1, 3, math.NaN()} {
		xv := x
		if math.IsNaN(x) {
			xv = 0 // only for choosing below; missing goes right, right, left
		}
		m0 := 1.0
		if math.IsNaN(x) || !(xv < 0) {
			m0 = -1
		}
		m2 := 0.0
		if !math.IsNaN(x) && !(xv < 2) {
			m2 = 2
		}
		margins := []float64{0.5 + m0, 0.5 + 0.25, 0.5 + m2}
		var sum float64
		for _, v := range margins {
			sum += math.Exp(v)
		}
		a := decode(t, predict(t, mm, row([]float64{x}))[0])
		best := 0
		for k, v := range margins {
			if v > margins[best] {
				best = k
			}
			if p := math.Exp(v) / sum; math.Abs(a.Probabilities[k]-p) > 1e-6 {
				t.Errorf("x=%v: P(%d) = %v, want %v", x, k, a.Probabilities[k], p)
			}
		}
		if *a.Prediction != float64(best) {
			t.Errorf("x=%v: class %v, want %d", x, *a.Prediction, best)
		}
	}
}

// TestBadRows checks that a row the model cannot answer fails alone with
// bad_input, the message naming what was expected and what was given.
func TestBadRows(t *testing.T) {
	m, err := trees.ParseXGBoost([]byte(xgSmall))
	if err != nil {
		t.Fatal(err)
	}
	good := []byte(`{"features":[1,2]}`)
	for _, tc := range []struct {
		in   modelhost.Input
		want string
	}{
		{modelhost.Input{Payload: []byte(`{"features":[1,2,3]}`)}, "got 3 values, want 2"},
		{modelhost.Input{Payload: []byte(`{"features":[1]}`)}, "got 1 values, want 2"},
		{modelhost.Input{Payload: []byte(`{"features":[]}`)}, "got 0 values, want 2"},
		{modelhost.Input{Payload: []byte(`{"features":[[1,2]]}`)}, "want one row"},
		{modelhost.Input{Payload: []byte(`{"features":["1",2]}`)}, "want one row"},
		{modelhost.Input{Payload: []byte(`{"feature":[1,2]}`)}, `missing "features"`},
		{modelhost.Input{Payload: []byte(`{"features":[1,2]`)}, "decode"},
		{modelhost.Input{Payload: good, ContentType: "text/csv"}, "content type"},
	} {
		out, err := m.Predict(t.Context(), []modelhost.Input{{Payload: good}, tc.in, {Payload: good}})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(out[1].Err, api.ErrBadInput) || !strings.Contains(out[1].Err.Error(), tc.want) {
			t.Errorf("%s: %v, want bad_input with %q", tc.in.Payload, out[1].Err, tc.want)
		}
		for _, i := range []int{0, 2} {
			if out[i].Err != nil || string(out[i].Payload) != string(predict(t, m, good)[0].Payload) {
				t.Errorf("%s: neighbour %d answered %s %v", tc.in.Payload, i, out[i].Payload, out[i].Err)
			}
		}
	}
	out := predict(t, m, []byte(`{"features":[1,2]}`), []byte(`{"features":[1,2]}`))
	if string(out[0].Payload) != `{"prediction":1,"probabilities":[0.4255575,0.5744425]}` || out[0].ContentType != modelhost.ContentTypeJSON {
		t.Errorf("answer %s (%s)", out[0].Payload, out[0].ContentType)
	}
}

// TestXGBoostRefuses checks that models the runtime cannot serve
// correctly are errors naming the reason.
func TestXGBoostRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"objective", "binary:logistic", "rank:foo", `objective "rank:foo" is not supported`},
		{"gblinear", `"name":"gbtree"`, `"name":"gblinear"`, "gblinear"},
		{"base_score", `"5E-1"`, `"1.5"`, "base_score 1.5"},
		{"feature out of range", `"split_indices":[0,0,0]`, `"split_indices":[2,0,0]`, "split index 2"},
		{"cycle", `"left_children":[1,-1,-1],"right_children":[2,-1,-1]`, `"left_children":[1,2,-1],"right_children":[2,2,-1]`, "reached twice"},
		{"child to root", `"left_children":[1,-1,-1]`, `"left_children":[0,-1,-1]`, "child 0"},
		{"lengths", `"split_conditions":[0.5,-0.4,0.3]`, `"split_conditions":[0.5]`, "split_conditions has 1 entries"},
		{"categorical", `"split_type":[0,0,0]`, `"split_type":[1,0,0]`, "categorical"},
		{"tree_info", `"tree_info":[0]`, `"tree_info":[1]`, "tree_info[0] = 1"},
		{"num_feature", `"num_feature":"2"`, `"num_feature":"x"`, "num_feature"},
		{"multi-target", `"num_feature":"2"`, `"num_feature":"2","num_target":"3"`, "multi-target"},
		{"not json", `{"learner"`, `binf{"learner"`, "neither JSON nor UBJSON"},
		{"bad ubjson", `{"learner"`, `{L{"learner"`, "ubjson"},
		{"not xgboost", `{"learner":{`, `{"lerner":{`, `no "learner"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(xgSmall, tc.from, tc.to, 1)
			if text == xgSmall {
				t.Fatalf("%q is not in the model", tc.from)
			}
			_, err := trees.ParseXGBoost([]byte(text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestConcurrentPredict: a model is immutable, so batches on many
// goroutines at once (the actor runs several) answer as one at a time.
func TestConcurrentPredict(t *testing.T) {
	for name, m := range map[string]*trees.Model{"xgboost": mustParse(t, trees.ParseXGBoost, xgMulti), "lightgbm": mustParse(t, trees.ParseLightGBM, lgMulticlass)} {
		var payloads [][]byte
		for i := range 40 {
			x := []float64{float64(i%9) - 4, float64(i % 13)}
			payloads = append(payloads, row(x[:m.NumFeatures()]))
		}
		want := predict(t, m, payloads...)
		done := make(chan error, 8)
		for g := range 8 {
			go func() {
				for k := range 50 {
					lo := (g + k) % len(payloads)
					hi := min(lo+1+k%7, len(payloads))
					out, err := m.Predict(t.Context(), inputs(payloads[lo:hi]...))
					if err != nil {
						done <- err
						return
					}
					for i := range out {
						if string(out[i].Payload) != string(want[lo+i].Payload) {
							done <- fmt.Errorf("%s: row %d answered %s, alone %s", name, lo+i, out[i].Payload, want[lo+i].Payload)
							return
						}
					}
				}
				done <- nil
			}()
		}
		for range 8 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
}

func mustParse(t *testing.T, parse func([]byte) (*trees.Model, error), text string) *trees.Model {
	t.Helper()
	m, err := parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
