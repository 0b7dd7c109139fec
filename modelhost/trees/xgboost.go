package trees

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unsafe"
)

// XGBoost's JSON model format (Booster.save_model("model.json"), schema
// doc/model.schema in the XGBoost sources) is read here, by Manta, and the
// trees are evaluated in Go: github.com/dmitryikh/leaves reads only
// XGBoost's old binary format, which XGBoost >= 1.0 no longer writes by
// default and whose layout changed across versions.
//
// Only what prediction needs is decoded. Every array's length comes from
// the file itself (encoding/json grows a slice as it reads elements), so a
// file can make the loader allocate at most a constant times its size; no
// count written in the file sizes an allocation.

// maxFeatures bounds num_feature (rows are allocated from requests, not
// from this number; the bound only keeps indices in int32 and messages sane).
const maxFeatures = 1 << 24

type xgFile struct {
	Learner *struct {
		LearnerModelParam struct {
			BaseScore string `json:"base_score"`
			NumClass  string `json:"num_class"`
			NumFeat   string `json:"num_feature"`
			NumTarget string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
		GradientBooster json.RawMessage `json:"gradient_booster"`
	} `json:"learner"`
}

type xgBooster struct {
	Name       string     `json:"name"`
	Model      *xgGBTree  `json:"model"`       // gbtree
	GBTree     *xgBooster `json:"gbtree"`      // dart: the gbtree inside
	WeightDrop []float32  `json:"weight_drop"` // dart
}

type xgGBTree struct {
	Trees    []xgTree `json:"trees"`
	TreeInfo []int    `json:"tree_info"`
}

type xgTree struct {
	Left        []int32   `json:"left_children"`
	Right       []int32   `json:"right_children"`
	SplitIndex  []int64   `json:"split_indices"`
	SplitCond   []float32 `json:"split_conditions"`
	DefaultLeft boolArray `json:"default_left"`
	SplitType   []int     `json:"split_type"`
	TreeParam   struct {
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
}

// boolArray reads default_left, written as 0/1 numbers by XGBoost 1.x and
// as booleans by some writers.
type boolArray []bool

func (b *boolArray) UnmarshalJSON(p []byte) error {
	var ints []uint8
	if err := json.Unmarshal(p, &ints); err == nil {
		out := make([]bool, len(ints))
		for i, v := range ints {
			if v > 1 {
				return fmt.Errorf("default_left[%d] = %d: want 0 or 1", i, v)
			}
			out[i] = v == 1
		}
		*b = out
		return nil
	}
	var bools []bool
	if err := json.Unmarshal(p, &bools); err != nil {
		return errors.New("default_left: want an array of 0/1 or booleans")
	}
	*b = bools
	return nil
}

// xgNode is one node of a loaded forest: 16 bytes. Leaves have left < 0
// and hold their value in cond.
type xgNode struct {
	left  int32   // absolute index of the left child in forest.nodes; -1: leaf
	right int32   // absolute index of the right child
	feat  uint32  // feature index | defaultLeft
	cond  float32 // split condition (go left when x < cond), or the leaf value
}

const defaultLeft = 1 << 31

// forest is a loaded XGBoost gbtree (or dart) model, evaluated with
// XGBoost's float32 semantics: features are converted to float32, a split
// sends x < cond left, a missing value (NaN) goes to the node's default
// side, and each output group's margin is summed in float32, tree by tree
// in file order, starting from the base margin: the order XGBoost's CPU
// predictor adds them, so answers match its predict to the bit before the
// output transform.
type forest struct {
	nodes     []xgNode
	roots     []int32   // each tree's root in nodes
	group     []int32   // each tree's output group
	weight    []float32 // dart's weight_drop per tree; nil for gbtree
	ngroup    int
	nfeat     int
	base      float32 // base margin: base_score through the objective's link
	objective string
	transform func(margin []float32, out []float64)
	scratch   sync.Pool // *xgScratch
}

type xgScratch struct {
	x      []float32
	margin []float32
}

// xgObjectives maps each supported objective to its kind, the link that
// turns base_score into a margin, and the transform of margins into answers.
var xgObjectives = map[string]struct {
	kind Kind
	link string // "identity", "logit", "log"
	out  string // "identity", "sigmoid", "exp", "hinge", "softmax"
}{
	"reg:squarederror":     {Regressor, "identity", "identity"},
	"reg:squaredlogerror":  {Regressor, "identity", "identity"},
	"reg:pseudohubererror": {Regressor, "identity", "identity"},
	"reg:absoluteerror":    {Regressor, "identity", "identity"},
	"reg:quantileerror":    {Regressor, "identity", "identity"},
	"reg:linear":           {Regressor, "identity", "identity"}, // the old name of squarederror
	"reg:logistic":         {Regressor, "logit", "sigmoid"},
	"binary:logitraw":      {Regressor, "logit", "identity"},
	"binary:hinge":         {Regressor, "identity", "hinge"},
	"count:poisson":        {Regressor, "log", "exp"},
	"reg:gamma":            {Regressor, "log", "exp"},
	"reg:tweedie":          {Regressor, "log", "exp"},
	"survival:cox":         {Regressor, "log", "exp"},
	"rank:pairwise":        {Regressor, "identity", "identity"},
	"rank:ndcg":            {Regressor, "identity", "identity"},
	"rank:map":             {Regressor, "identity", "identity"},
	"binary:logistic":      {Binary, "logit", "sigmoid"},
	"multi:softprob":       {Multiclass, "identity", "softmax"},
	"multi:softmax":        {Multiclass, "identity", "softmax"},
}

// XGBoostObjectives returns the objectives the xgboost runtime serves, sorted.
func XGBoostObjectives() []string {
	names := make([]string, 0, len(xgObjectives))
	for n := range xgObjectives {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// parseXGBoost reads an XGBoost JSON model.
func parseXGBoost(b []byte) (*forest, Kind, error) {
	if looksUBJSON(b) {
		j, err := ubjsonToJSON(b)
		if err != nil {
			return nil, 0, err
		}
		b = j
	}
	if i := bytes.IndexFunc(b, func(r rune) bool { return !unicode.IsSpace(r) }); i < 0 || b[i] != '{' {
		return nil, 0, errors.New(`neither JSON nor UBJSON: the xgboost runtime reads Booster.save_model("model.json") or ("model.ubj"), not XGBoost's old binary format (re-save the model as JSON)`)
	}
	var f xgFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, 0, fmt.Errorf("decode: %w", err)
	}
	if f.Learner == nil {
		return nil, 0, errors.New(`no "learner": not an XGBoost JSON model (Booster.save_model("model.json"))`)
	}
	l := f.Learner
	obj, ok := xgObjectives[l.Objective.Name]
	if !ok {
		return nil, 0, fmt.Errorf("objective %q is not supported (supported: %s)", l.Objective.Name, strings.Join(XGBoostObjectives(), ", "))
	}
	p := l.LearnerModelParam
	nfeat, err := paramInt("num_feature", p.NumFeat, 1, maxFeatures)
	if err != nil {
		return nil, 0, err
	}
	nclass, err := paramInt("num_class", p.NumClass, 0, math.MaxInt32)
	if err != nil {
		return nil, 0, err
	}
	if p.NumTarget != "" {
		if nt, err := paramInt("num_target", p.NumTarget, 0, math.MaxInt32); err != nil {
			return nil, 0, err
		} else if nt > 1 {
			return nil, 0, fmt.Errorf("num_target %d: multi-target models are not supported", nt)
		}
	}
	base, err := baseScore(p.BaseScore)
	if err != nil {
		return nil, 0, err
	}

	var gb xgBooster
	if len(l.GradientBooster) == 0 {
		return nil, 0, errors.New(`no "gradient_booster"`)
	}
	if err := json.Unmarshal(l.GradientBooster, &gb); err != nil {
		return nil, 0, fmt.Errorf("gradient_booster: %w", err)
	}
	var weights []float32
	switch gb.Name {
	case "gbtree":
	case "dart":
		if gb.GBTree == nil {
			return nil, 0, errors.New(`dart booster without "gbtree"`)
		}
		weights = gb.WeightDrop
		gb = *gb.GBTree
	case "gblinear":
		return nil, 0, errors.New(`booster "gblinear" is not supported (serve linear models with runtime "linear")`)
	default:
		return nil, 0, fmt.Errorf("booster %q is not supported (want gbtree or dart)", gb.Name)
	}
	if gb.Model == nil {
		return nil, 0, errors.New(`gradient_booster: no "model"`)
	}
	trees := gb.Model.Trees
	if len(gb.Model.TreeInfo) != len(trees) {
		return nil, 0, fmt.Errorf("tree_info has %d entries for %d trees", len(gb.Model.TreeInfo), len(trees))
	}
	if weights != nil && len(weights) != len(trees) {
		return nil, 0, fmt.Errorf("dart weight_drop has %d entries for %d trees", len(weights), len(trees))
	}
	ngroup := 1
	switch {
	case obj.kind == Multiclass:
		if nclass < 2 {
			return nil, 0, fmt.Errorf("objective %s with num_class %d: want at least 2", l.Objective.Name, nclass)
		}
		if nclass > len(trees) {
			return nil, 0, fmt.Errorf("num_class %d is above the number of trees (%d)", nclass, len(trees))
		}
		ngroup = nclass
	case nclass > 1:
		return nil, 0, fmt.Errorf("objective %s with num_class %d: want 0 or 1", l.Objective.Name, nclass)
	}

	switch obj.link {
	case "logit":
		if !(base > 0 && base < 1) {
			return nil, 0, fmt.Errorf("base_score %v: objective %s needs it in (0, 1)", base, l.Objective.Name)
		}
		base = float32(-math.Log(float64(1/base - 1)))
	case "log":
		if !(base > 0) {
			return nil, 0, fmt.Errorf("base_score %v: objective %s needs it above 0", base, l.Objective.Name)
		}
		base = float32(math.Log(float64(base)))
	}

	total := 0
	for i := range trees {
		total += len(trees[i].Left)
	}
	if total > math.MaxInt32 {
		return nil, 0, fmt.Errorf("%d nodes: too many", total)
	}
	fo := &forest{
		nodes:     make([]xgNode, 0, total),
		roots:     make([]int32, len(trees)),
		group:     make([]int32, len(trees)),
		weight:    weights,
		ngroup:    ngroup,
		nfeat:     nfeat,
		base:      base,
		objective: l.Objective.Name,
	}
	for i := range trees {
		g := gb.Model.TreeInfo[i]
		if g < 0 || g >= ngroup {
			return nil, 0, fmt.Errorf("tree_info[%d] = %d: want a group in [0, %d)", i, g, ngroup)
		}
		fo.group[i] = int32(g)
		fo.roots[i] = int32(len(fo.nodes))
		if fo.nodes, err = appendTree(fo.nodes, &trees[i], nfeat); err != nil {
			return nil, 0, fmt.Errorf("trees[%d]: %w", i, err)
		}
	}
	switch obj.out {
	case "identity":
		fo.transform = func(m []float32, out []float64) { out[0] = float64(m[0]) }
	case "sigmoid":
		fo.transform = func(m []float32, out []float64) { out[0] = float64(sigmoid32(m[0])) }
	case "exp":
		fo.transform = func(m []float32, out []float64) { out[0] = float64(float32(math.Exp(float64(m[0])))) }
	case "hinge":
		fo.transform = func(m []float32, out []float64) {
			out[0] = 0
			if m[0] > 0 {
				out[0] = 1
			}
		}
	case "softmax":
		fo.transform = softmax32
	}
	return fo, obj.kind, nil
}

// paramInt reads one of learner_model_param's integers (written as strings).
func paramInt(name, s string, lo, hi int) (int, error) {
	if s == "" {
		if lo <= 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("learner_model_param.%s is missing", name)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < int64(lo) || v > int64(hi) {
		return 0, fmt.Errorf("learner_model_param.%s %q: want an integer in [%d, %d]", name, s, lo, hi)
	}
	return int(v), nil
}

// baseScore reads base_score: "5E-1", or "[5E-1]" as XGBoost 2 writes it.
func baseScore(s string) (float32, error) {
	if s == "" {
		return 0.5, nil // XGBoost's default
	}
	t := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 32)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("learner_model_param.base_score %q: want a finite number", s)
	}
	return float32(v), nil
}

// appendTree checks one tree and appends its nodes, child indices made
// absolute. The check walks from the root and refuses a node reached twice
// (a cycle or a shared child), a child index out of range and a feature
// index at or above nfeat, so evaluation always ends at a leaf within
// depth len(tree) and never indexes outside a row.
func appendTree(nodes []xgNode, t *xgTree, nfeat int) ([]xgNode, error) {
	n := len(t.Left)
	if n == 0 {
		return nil, errors.New("no nodes")
	}
	for _, a := range []struct {
		name string
		len  int
	}{{"right_children", len(t.Right)}, {"split_indices", len(t.SplitIndex)}, {"split_conditions", len(t.SplitCond)}, {"default_left", len(t.DefaultLeft)}} {
		if a.len != n {
			return nil, fmt.Errorf("%s has %d entries, left_children %d", a.name, a.len, n)
		}
	}
	for i, st := range t.SplitType {
		if st != 0 {
			return nil, fmt.Errorf("node %d: categorical splits are not supported", i)
		}
	}
	if s := t.TreeParam.SizeLeafVector; s != "" && s != "0" && s != "1" {
		return nil, fmt.Errorf("size_leaf_vector %s: vector leaves are not supported", s)
	}
	off := int32(len(nodes))
	seen := make([]bool, n)
	stack := []int32{0}
	seen[0] = true
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		l, r := t.Left[i], t.Right[i]
		if l == -1 {
			if r != -1 {
				return nil, fmt.Errorf("node %d: left child -1 (a leaf) but right child %d", i, r)
			}
			continue
		}
		if t.SplitIndex[i] < 0 || t.SplitIndex[i] >= int64(nfeat) {
			return nil, fmt.Errorf("node %d: split index %d: want a feature in [0, %d)", i, t.SplitIndex[i], nfeat)
		}
		for _, c := range []int32{l, r} {
			if c <= 0 || int(c) >= n {
				return nil, fmt.Errorf("node %d: child %d: want a node in [1, %d)", i, c, n)
			}
			if seen[c] {
				return nil, fmt.Errorf("node %d: child %d is reached twice", i, c)
			}
			seen[c] = true
			stack = append(stack, c)
		}
	}
	for i := 0; i < n; i++ {
		nd := xgNode{left: -1, right: -1, cond: t.SplitCond[i]}
		if t.Left[i] != -1 && seen[i] {
			nd.left, nd.right = off+t.Left[i], off+t.Right[i]
			nd.feat = uint32(t.SplitIndex[i])
			if t.DefaultLeft[i] {
				nd.feat |= defaultLeft
			}
		}
		nodes = append(nodes, nd)
	}
	return nodes, nil
}

// eval answers n rows: margins tree by tree over the rows, then the
// objective's transform.
func (f *forest) eval(rows []float64, n int, out []float64) {
	s, _ := f.scratch.Get().(*xgScratch)
	if s == nil {
		s = new(xgScratch)
	}
	defer f.scratch.Put(s)
	x := grow32(s.x, len(rows))
	for i, v := range rows {
		x[i] = float32(v) // XGBoost's DMatrix holds float32
	}
	margin := grow32(s.margin, n*f.ngroup)
	for i := range margin {
		margin[i] = f.base
	}
	nfeat, ng := f.nfeat, f.ngroup
	for t, root := range f.roots {
		g := int(f.group[t])
		if f.weight != nil {
			w := f.weight[t]
			for r := 0; r < n; r++ {
				margin[r*ng+g] += w * f.leaf(root, x[r*nfeat:(r+1)*nfeat])
			}
			continue
		}
		for r := 0; r < n; r++ {
			margin[r*ng+g] += f.leaf(root, x[r*nfeat:(r+1)*nfeat])
		}
	}
	width := 1
	if ng > 1 {
		width = ng
	}
	for r := 0; r < n; r++ {
		f.transform(margin[r*ng:(r+1)*ng], out[r*width:(r+1)*width])
	}
	s.x, s.margin = x, margin
}

// leaf walks one tree for one row. NaN fails both comparisons, so a
// missing value takes the node's default side.
func (f *forest) leaf(root int32, x []float32) float32 {
	nodes := f.nodes
	i := root
	for {
		nd := &nodes[i]
		if nd.left < 0 {
			return nd.cond
		}
		v := x[nd.feat&^defaultLeft]
		switch {
		case v < nd.cond:
			i = nd.left
		case v >= nd.cond:
			i = nd.right
		case nd.feat&defaultLeft != 0:
			i = nd.left
		default:
			i = nd.right
		}
	}
}

func grow32(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// sigmoid32 is XGBoost's common::Sigmoid: 1 / (1 + exp(-x)) in float32.
func sigmoid32(x float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(x))))
}

// softmax32 is XGBoost's softmax over one row's margins (max subtracted).
func softmax32(m []float32, out []float64) {
	mx := m[0]
	for _, v := range m[1:] {
		if v > mx {
			mx = v
		}
	}
	var sum float32
	for k, v := range m {
		e := float32(math.Exp(float64(v - mx)))
		out[k] = float64(e)
		sum += e
	}
	for k := range out {
		out[k] = float64(float32(out[k]) / sum)
	}
}

// memoryBytes is the forest's loaded size: nodes × 16 bytes plus the
// per-tree arrays.
func (f *forest) memoryBytes() int64 {
	return int64(len(f.nodes))*int64(unsafe.Sizeof(xgNode{})) +
		int64(len(f.roots)+len(f.group)+len(f.weight))*4 +
		int64(unsafe.Sizeof(*f))
}
