package trees_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost/trees"
)

// Hand-written LightGBM text models (the layout Booster.save_model writes).
// decision_type: bit 0 categorical, bit 1 default left, bits 2-3 the
// missing type (0 none: NaN is 0; 1 zero: 0 and NaN take the default side;
// 2 NaN: NaN takes the default side). A child < 0 is leaf ^child.
const lgRegression = `tree
version=v3
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=2
objective=regression
feature_names=a b c
feature_infos=[0:10] [0:10] [-5:5]
tree_sizes=400 300

Tree=0
num_leaves=3
num_cat=0
split_feature=0 1
split_gain=10 5
threshold=5 2.5
decision_type=10 0
left_child=1 -1
right_child=-2 -3
leaf_value=1.5 -0.5 2
leaf_weight=1 1 1
leaf_count=10 10 10
internal_value=0 0
internal_weight=0 0
internal_count=30 20
is_linear=0
shrinkage=1


Tree=1
num_leaves=2
num_cat=0
split_feature=2
split_gain=3
threshold=-1
decision_type=4
left_child=-1
right_child=-2
leaf_value=0.25 -0.25
leaf_weight=1 1
leaf_count=15 15
internal_value=0
internal_weight=0
internal_count=30
is_linear=0
shrinkage=0.1


end of trees

feature_importances:
a=1
`

// regression by hand: tree 0 is x0 <= 5 (NaN: left) ? (x1 <= 2.5 (NaN: 0) ?
// 1.5 : 2) : -0.5; tree 1 is x2 <= -1 ? 0.25 : -0.25, with 0 and NaN right.
func lgRegressionByHand(x []float64) float64 {
	var t0 float64
	if math.IsNaN(x[0]) || x[0] <= 5 {
		x1 := x[1]
		if math.IsNaN(x1) {
			x1 = 0
		}
		t0 = 2
		if x1 <= 2.5 {
			t0 = 1.5
		}
	} else {
		t0 = -0.5
	}
	t1 := -0.25
	if !math.IsNaN(x[2]) && x[2] != 0 && x[2] <= -1 {
		t1 = 0.25
	}
	return t0 + t1
}

// A binary model, LightGBM 4's header, a categorical split: categories 1
// and 3 (bits of cat_threshold 10) go left.
const lgBinary = `tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=1
objective=binary sigmoid:1
tree_sizes=300 300

Tree=0
num_leaves=2
num_cat=1
split_feature=1
split_gain=1
threshold=0
decision_type=1
left_child=-1
right_child=-2
leaf_value=0.8 -0.4
leaf_weight=1 1
leaf_count=1 1
internal_value=0
internal_weight=0
internal_count=2
cat_boundaries=0 1
cat_threshold=10
is_linear=0
shrinkage=1


Tree=1
num_leaves=2
num_cat=0
split_feature=0
split_gain=1
threshold=0.5
decision_type=10
left_child=-1
right_child=-2
leaf_value=-0.3 0.6
leaf_weight=1 1
leaf_count=1 1
internal_value=0
internal_weight=0
internal_count=2
is_linear=0
shrinkage=0.1


end of trees
`

func lgBinaryByHand(x []float64) float64 {
	raw := -0.4
	if c := x[1]; c == 1 || c == 3 {
		raw = 0.8
	}
	if math.IsNaN(x[0]) || x[0] <= 0.5 {
		raw += -0.3
	} else {
		raw += 0.6
	}
	return 1 / (1 + math.Exp(-raw))
}

// Three classes, two iterations: trees 0, 1, 2 are classes 0, 1, 2 of the
// first iteration, trees 3, 4, 5 of the second.
var lgMulticlass = func() string {
	var b strings.Builder
	b.WriteString("tree\nversion=v3\nnum_class=3\nnum_tree_per_iteration=3\nlabel_index=0\nmax_feature_idx=1\nobjective=multiclass num_class:3\ntree_sizes=1 1 1 1 1 1\n\n")
	for i, t := range []struct {
		feat int
		thr  string
		l, r string
	}{
		{0, "0", "1", "-1"}, {0, "0", "-1", "1"}, {1, "10", "0.5", "0"},
		{1, "10", "0.2", "0"}, {1, "10", "0", "0.2"}, {0, "2", "0", "0.7"},
	} {
		b.WriteString("Tree=" + string(rune('0'+i)) + "\nnum_leaves=2\nnum_cat=0\n")
		b.WriteString("split_feature=" + string(rune('0'+t.feat)) + "\nthreshold=" + t.thr + "\ndecision_type=2\n")
		b.WriteString("left_child=-1\nright_child=-2\nleaf_value=" + t.l + " " + t.r + "\nshrinkage=1\n\n\n")
	}
	b.WriteString("end of trees\n")
	return b.String()
}()

func lgMulticlassByHand(x []float64) []float64 {
	z := func(v float64) float64 { // missing type none: NaN is 0
		if math.IsNaN(v) {
			return 0
		}
		return v
	}
	x0, x1 := z(x[0]), z(x[1])
	raw := make([]float64, 3)
	pick := func(cond bool, l, r float64) float64 {
		if cond {
			return l
		}
		return r
	}
	raw[0] = pick(x0 <= 0, 1, -1) + pick(x1 <= 10, 0.2, 0)
	raw[1] = pick(x0 <= 0, -1, 1) + pick(x1 <= 10, 0, 0.2)
	raw[2] = pick(x1 <= 10, 0.5, 0) + pick(x0 <= 2, 0, 0.7)
	var sum float64
	p := make([]float64, 3)
	for k, v := range raw {
		p[k] = math.Exp(v)
		sum += p[k]
	}
	for k := range p {
		p[k] /= sum
	}
	return p
}

// TestLightGBM checks the lightgbm runtime on hand-written models whose
// answers the test computes by hand: a regressor with the three missing
// types, a binary classifier (LightGBM 4 header, a categorical split) and
// a three-class classifier over two iterations.
func TestLightGBM(t *testing.T) {
	nan := math.NaN()
	rows := [][]float64{{1, 1, 3}, {7, nan, -2}, {nan, nan, 0}, {nan, 3, nan}, {5, 2.5, -1}, {5.0000001, 0, -1.5}}
	t.Run("regression", func(t *testing.T) {
		m := parseLG(t, lgRegression, trees.Regressor, 3)
		for _, x := range rows {
			a := decode(t, predict(t, m, row(x))[0])
			if want := lgRegressionByHand(x); math.Abs(*a.Prediction-want) > 1e-12 || a.Probabilities != nil {
				t.Errorf("%v: %+v, want %v", x, a, want)
			}
		}
	})
	t.Run("binary", func(t *testing.T) {
		m := parseLG(t, lgBinary, trees.Binary, 2)
		for _, x := range [][]float64{{0, 1}, {0, 3}, {1, 3}, {1, 2}, {nan, 0}, {0.6, nan}, {0.5, 1}, {1, 33}} {
			a := decode(t, predict(t, m, row(x))[0])
			p := lgBinaryByHand(x)
			class := 0.0
			if p > 0.5 {
				class = 1
			}
			if *a.Prediction != class || len(a.Probabilities) != 2 || math.Abs(a.Probabilities[1]-p) > 1e-12 || math.Abs(a.Probabilities[0]-(1-p)) > 1e-12 {
				t.Errorf("%v: %+v, want class %v, P(1) %v", x, a, class, p)
			}
		}
	})
	t.Run("multiclass", func(t *testing.T) {
		m := parseLG(t, lgMulticlass, trees.Multiclass, 2)
		for _, x := range [][]float64{{-1, 0}, {1, 0}, {3, 20}, {nan, nan}, {0, 10}, {2.5, 11}} {
			a := decode(t, predict(t, m, row(x))[0])
			p := lgMulticlassByHand(x)
			best := 0
			for k := range p {
				if p[k] > p[best] {
					best = k
				}
			}
			if *a.Prediction != float64(best) || len(a.Probabilities) != 3 {
				t.Fatalf("%v: %+v, want class %d of %v", x, a, best, p)
			}
			for k := range p {
				if math.Abs(a.Probabilities[k]-p[k]) > 1e-12 {
					t.Errorf("%v: P(%d) = %v, want %v", x, k, a.Probabilities[k], p[k])
				}
			}
		}
	})
	t.Run("batch", func(t *testing.T) {
		// A batch answers each row as alone; a bad row fails only itself.
		m := parseLG(t, lgRegression, trees.Regressor, 3)
		out := predict(t, m, row(rows[0]), []byte(`{"features":[1,2]}`), row(rows[1]))
		if out[1].Err == nil || !errors.Is(out[1].Err, api.ErrBadInput) {
			t.Fatalf("2 features for 3: %v", out[1].Err)
		}
		for _, i := range []int{0, 2} {
			x := rows[i/2]
			if a := decode(t, out[i]); math.Abs(*a.Prediction-lgRegressionByHand(x)) > 1e-12 {
				t.Errorf("row %d: %+v", i, a)
			}
		}
	})
}

func parseLG(t *testing.T, text string, kind trees.Kind, nfeat int) *trees.Model {
	t.Helper()
	m, err := trees.ParseLightGBM([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind() != kind || m.NumFeatures() != nfeat {
		t.Fatalf("kind %v with %d features, want %v with %d", m.Kind(), m.NumFeatures(), kind, nfeat)
	}
	if m.MemoryBytes() <= 0 {
		t.Fatalf("memory %d", m.MemoryBytes())
	}
	return m
}

// TestLightGBMRefuses checks that files the runtime cannot serve correctly
// are errors naming the reason, before leaves sees them.
func TestLightGBMRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"not lightgbm", "tree\n", "hello\n", `no "tree" line`},
		{"version", "version=v3", "version=v9", "version=v9"},
		{"random forest", "objective=regression\n", "objective=regression\naverage_output\n", "random-forest"},
		{"objective", "objective=regression\n", "objective=custom\n", `objective "custom"`},
		{"leaf out of range", "right_child=-2 -3", "right_child=-2 -9", "leaf 8"},
		{"cycle", "left_child=1 -1", "left_child=1 0", "child 0"},
		{"feature out of range", "split_feature=0 1", "split_feature=0 7", "split_feature 7"},
		{"leaf count", "num_leaves=3", "num_leaves=4", "num_leaves=4"},
		{"truncated", "Tree=1", "", "tree 1"},
		{"linear tree", "is_linear=0\nshrinkage=1\n", "is_linear=1\nshrinkage=1\n", "linear trees"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(lgRegression, tc.from, tc.to, 1)
			if tc.name == "truncated" {
				text = lgRegression[:strings.Index(lgRegression, "Tree=1")]
			}
			_, err := trees.ParseLightGBM([]byte(text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
