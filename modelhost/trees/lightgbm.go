package trees

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/dmitryikh/leaves"
)

// LightGBM text models (Booster.save_model) are evaluated by
// github.com/dmitryikh/leaves. Manta adds three things around it:
//
//   - a checking pass over the same text, read with the same tokenizer, before
//     leaves sees it: leaves indexes its arrays with numbers from the file
//     (child and leaf indices, split features, categorical boundaries)
//     without bounds checks, sizes allocations by num_leaves, and turns a
//     child index that revisits a node into a cycle its evaluator never
//     leaves. The pass refuses all of these, so a malformed file is an
//     error, never a panic, a hang or an allocation beyond the file's size;
//   - the output transform: leaves is asked for raw scores and Manta applies
//     the objective (leaves knows only regression*, binary sigmoid:1,
//     multiclass, poisson, gamma and tweedie; Manta adds sigmoid:k,
//     multiclassova, cross_entropy, huber, fair, quantile, mape);
//   - LightGBM 4's "version=v4" header, which leaves refuses though the tree
//     format is v3's, is handed to leaves as v3.

// lgParams is one block of the text (the header, or one tree): its
// key=value lines.
type lgParams map[string]string

// readParams is leaves' util.ReadParamsUntilBlank, the same tokenizer, so the
// checking pass reads exactly what leaves will: key=value lines up to a
// blank line (one leading blank line is read as the key "").
func readParams(r *bufio.Reader) (lgParams, error) {
	p := make(lgParams)
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSpace(line)
	for {
		tok := strings.Split(line, "=")
		switch len(tok) {
		case 1:
			p[tok[0]] = ""
		case 2:
			p[tok[0]] = tok[1]
		default:
			return nil, fmt.Errorf("line %.40q: more than one '='", line)
		}
		line, err = r.ReadString('\n')
		if err != nil && err != io.EOF {
			return nil, err
		}
		line = strings.TrimSpace(line)
		if line == "" {
			return p, nil
		}
	}
}

func (p lgParams) int(key string, lo, hi int) (int, error) {
	s, ok := p[key]
	if !ok {
		return 0, fmt.Errorf("no %s", key)
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%s=%.40s: want an integer in [%d, %d]", key, s, lo, hi)
	}
	return v, nil
}

// fields splits a list as leaves does (one space between values).
func (p lgParams) fields(key string, want int) ([]string, error) {
	s, ok := p[key]
	if !ok {
		return nil, fmt.Errorf("no %s", key)
	}
	f := strings.Split(s, " ")
	if want >= 0 && len(f) != want {
		return nil, fmt.Errorf("%s has %d values, want %d", key, len(f), want)
	}
	return f, nil
}

func (p lgParams) ints(key string, want, bits int, signed bool) ([]int64, error) {
	f, err := p.fields(key, want)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(f))
	for i, s := range f {
		var v int64
		if signed {
			v, err = strconv.ParseInt(s, 10, bits)
		} else {
			var u uint64
			u, err = strconv.ParseUint(s, 10, bits)
			v = int64(u)
		}
		if err != nil {
			return nil, fmt.Errorf("%s[%d] %.40q: not an integer", key, i, s)
		}
		out[i] = v
	}
	return out, nil
}

func (p lgParams) floats(key string, want int) ([]float64, error) {
	f, err := p.fields(key, want)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(f))
	for i, s := range f {
		if out[i], err = strconv.ParseFloat(s, 64); err != nil {
			return nil, fmt.Errorf("%s[%d] %.40q: not a number", key, i, s)
		}
	}
	return out, nil
}

// lgModel is a loaded LightGBM model.
type lgModel struct {
	ens       *leaves.Ensemble
	ngroup    int
	nfeat     int
	transform func(raw, out []float64)
	memory    int64
	scratch   sync.Pool // *[]float64, raw scores of one row
}

// lgNodeBytes and lgTreeBytes are leaves' lgNode (float64 threshold, three
// uint32, one flag byte: 24 bytes) and lgTree (four slices and a uint32).
const (
	lgNodeBytes = 24
	lgTreeBytes = 4*24 + 8
)

// parseLightGBM checks a LightGBM text model and loads it with leaves.
func parseLightGBM(b []byte) (*lgModel, Kind, error) {
	r := bufio.NewReader(bytes.NewReader(b))
	h, err := readParams(r)
	if err != nil {
		return nil, 0, fmt.Errorf("header: %w", eofMessage(err))
	}
	if _, ok := h["tree"]; !ok {
		return nil, 0, errors.New(`no "tree" line: not a LightGBM text model (Booster.save_model)`)
	}
	switch h["version"] {
	case "v2", "v3", "v4":
	default:
		return nil, 0, fmt.Errorf("version=%.20s: want v2, v3 or v4", h["version"])
	}
	ncls, err := h.int("num_class", 1, math.MaxInt32)
	if err != nil {
		return nil, 0, err
	}
	if tpi, err := h.int("num_tree_per_iteration", 1, math.MaxInt32); err != nil {
		return nil, 0, err
	} else if tpi != ncls {
		return nil, 0, fmt.Errorf("num_tree_per_iteration=%d differs from num_class=%d", tpi, ncls)
	}
	maxFeat, err := h.int("max_feature_idx", 0, maxFeatures-1)
	if err != nil {
		return nil, 0, err
	}
	sizes, err := h.fields("tree_sizes", -1)
	if err != nil {
		return nil, 0, err
	}
	ntrees := len(sizes)
	if ntrees%ncls != 0 || ntrees < ncls {
		return nil, 0, fmt.Errorf("%d trees for %d classes", ntrees, ncls)
	}
	if _, rf := h["average_output"]; rf {
		// Random forests (boosting=rf) average their trees; whether LightGBM
		// applies the objective's transform after averaging differs between
		// readers (leaves does not; LightGBM's own predict does), and no
		// test here can settle it, so they are refused rather than served
		// with answers nobody checked.
		return nil, 0, errors.New("average_output: random-forest models (boosting=rf) are not supported")
	}
	kind, transform, err := lgObjective(h["objective"], ncls)
	if err != nil {
		return nil, 0, err
	}
	memory := int64(ntrees) * lgTreeBytes
	for i := 0; i < ntrees; i++ {
		n, err := checkLGTree(r, maxFeat+1)
		if err != nil {
			return nil, 0, fmt.Errorf("tree %d: %w", i, err)
		}
		memory += n
	}

	if h["version"] == "v4" {
		b = bytes.Replace(b, []byte("version=v4"), []byte("version=v3"), 1)
	}
	ens, err := leavesLoad(b)
	if err != nil {
		return nil, 0, err
	}
	if ens.NRawOutputGroups() != ncls {
		return nil, 0, fmt.Errorf("leaves read %d classes, the header says %d", ens.NRawOutputGroups(), ncls)
	}
	return &lgModel{ens: ens, ngroup: ncls, nfeat: maxFeat + 1, transform: transform, memory: memory}, kind, nil
}

// leavesLoad runs leaves' reader, a panic in it being an error (the
// checking pass should leave none; this is the last line of defence).
func leavesLoad(b []byte) (ens *leaves.Ensemble, err error) {
	defer func() {
		if r := recover(); r != nil {
			ens, err = nil, fmt.Errorf("leaves: panic: %v", r)
		}
	}()
	ens, err = leaves.LGEnsembleFromReader(bufio.NewReader(bytes.NewReader(b)), false)
	if err != nil {
		return nil, fmt.Errorf("leaves: %w", err)
	}
	return ens, nil
}

func eofMessage(err error) error {
	if err == io.EOF {
		return errors.New("unexpected end of file")
	}
	return err
}

// checkLGTree reads one tree block as leaves' lgTreeFromReader will and
// checks every index it will use. It returns the tree's loaded size.
func checkLGTree(r *bufio.Reader, nfeat int) (int64, error) {
	p, err := readParams(r)
	if err != nil {
		return 0, eofMessage(err)
	}
	if p["is_linear"] != "" && p["is_linear"] != "0" {
		return 0, errors.New("linear trees (is_linear=1) are not supported")
	}
	ncat, err := p.int("num_cat", 0, math.MaxInt32)
	if err != nil {
		return 0, err
	}
	// The leaf values are the tree's largest array: num_leaves must match
	// their count, which bounds every allocation by the file's size.
	leafs, err := p.fields("leaf_value", -1)
	if err != nil {
		return 0, err
	}
	nleaves, err := p.int("num_leaves", 1, len(leafs))
	if err != nil {
		return 0, fmt.Errorf("%w (leaf_value has %d values)", err, len(leafs))
	}
	if _, err := p.floats("leaf_value", nleaves); err != nil {
		return 0, err
	}
	size := int64(nleaves)*8 + int64(nleaves-1)*lgNodeBytes
	if nleaves == 1 {
		return size, nil
	}
	nn := nleaves - 1
	left, err := p.ints("left_child", nn, 32, true)
	if err != nil {
		return 0, err
	}
	right, err := p.ints("right_child", nn, 32, true)
	if err != nil {
		return 0, err
	}
	dtype, err := p.ints("decision_type", nn, 32, false)
	if err != nil {
		return 0, err
	}
	feat, err := p.ints("split_feature", nn, 32, false)
	if err != nil {
		return 0, err
	}
	thr, err := p.floats("threshold", nn)
	if err != nil {
		return 0, err
	}
	var catBounds, catThr []int64
	if ncat > 0 {
		if catThr, err = p.ints("cat_threshold", -1, 32, false); err != nil {
			return 0, err
		}
		if catBounds, err = p.ints("cat_boundaries", -1, 32, false); err != nil {
			return 0, err
		}
		for i, v := range catBounds {
			if v > int64(len(catThr)) || (i > 0 && v < catBounds[i-1]) {
				return 0, fmt.Errorf("cat_boundaries[%d] = %d: want non-decreasing values up to %d", i, v, len(catThr))
			}
		}
		size += int64(len(catThr)+len(catBounds)) * 4
	}
	// Walk from the root: every internal node is reached once (leaves'
	// conversion relies on it), children and leaves are in range.
	seen := make([]bool, nn)
	seen[0] = true
	stack := []int64{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if feat[i] >= int64(nfeat) {
			return 0, fmt.Errorf("node %d: split_feature %d: the model has %d features (max_feature_idx)", i, feat[i], nfeat)
		}
		if mt := (dtype[i] >> 2) & 3; mt > 2 {
			return 0, fmt.Errorf("node %d: decision_type %d: unknown missing type %d", i, dtype[i], mt)
		}
		if dtype[i]&1 != 0 { // categorical: threshold is an index into cat_boundaries
			t := thr[i]
			if ncat == 0 || t != math.Trunc(t) || t < 0 || t+1 >= float64(len(catBounds)) {
				return 0, fmt.Errorf("node %d: categorical threshold %v: want an index below %d", i, t, len(catBounds)-1)
			}
		}
		for _, c := range []int64{left[i], right[i]} {
			if c < 0 {
				if ^c >= int64(nleaves) {
					return 0, fmt.Errorf("node %d: leaf %d: the tree has %d leaves", i, ^c, nleaves)
				}
				continue
			}
			if c == 0 || c >= int64(nn) || seen[c] {
				return 0, fmt.Errorf("node %d: child %d: want an unvisited node in [1, %d)", i, c, nn)
			}
			seen[c] = true
			stack = append(stack, c)
		}
	}
	for i, s := range seen {
		if !s {
			return 0, fmt.Errorf("node %d is not reachable from the root", i)
		}
	}
	return size, nil
}

// lgObjective maps the header's objective line to a kind and a transform
// of raw scores.
func lgObjective(line string, ncls int) (Kind, func(raw, out []float64), error) {
	identity := func(raw, out []float64) { copy(out, raw) }
	name, params, _ := strings.Cut(line, " ")
	param := func(key string) (float64, bool) {
		for _, f := range strings.Fields(params) {
			if k, v, ok := strings.Cut(f, ":"); ok && k == key {
				x, err := strconv.ParseFloat(v, 64)
				return x, err == nil
			}
		}
		return 0, false
	}
	needOne := func(k Kind, f func(raw, out []float64)) (Kind, func(raw, out []float64), error) {
		if ncls != 1 {
			return 0, nil, fmt.Errorf("objective %s with num_class=%d: want 1", name, ncls)
		}
		return k, f, nil
	}
	switch name {
	case "":
		return 0, nil, errors.New("no objective")
	case "regression", "regression_l1", "regression_l2", "l1", "l2", "mean_squared_error", "mse",
		"mean_absolute_error", "mae", "huber", "fair", "quantile", "mape", "lambdarank", "rank_xendcg":
		return needOne(Regressor, identity)
	case "poisson", "gamma", "tweedie":
		return needOne(Regressor, func(raw, out []float64) { out[0] = math.Exp(raw[0]) })
	case "binary", "cross_entropy", "xentropy":
		k := 1.0
		if name == "binary" {
			var ok bool
			if k, ok = param("sigmoid"); !ok || !(k > 0) {
				return 0, nil, fmt.Errorf("objective %q: want sigmoid:k with k > 0", line)
			}
		}
		kind := Binary
		if name != "binary" {
			kind = Regressor
		}
		return needOne(kind, func(raw, out []float64) { out[0] = 1 / (1 + math.Exp(-k*raw[0])) })
	case "multiclass", "softmax":
		if n, ok := param("num_class"); !ok || int(n) != ncls || ncls < 2 {
			return 0, nil, fmt.Errorf("objective %q with num_class=%d: want num_class:%d, at least 2", line, ncls, ncls)
		}
		return Multiclass, softmax64, nil
	case "multiclassova", "multiclass_ova", "ova", "ovr":
		k, ok := param("sigmoid")
		if n, nok := param("num_class"); !nok || int(n) != ncls || ncls < 2 || !ok || !(k > 0) {
			return 0, nil, fmt.Errorf("objective %q with num_class=%d: want num_class:%d and sigmoid:k", line, ncls, ncls)
		}
		return Multiclass, func(raw, out []float64) {
			for i, v := range raw {
				out[i] = 1 / (1 + math.Exp(-k*v))
			}
		}, nil
	}
	return 0, nil, fmt.Errorf("objective %q is not supported", name)
}

func softmax64(raw, out []float64) {
	mx := raw[0]
	for _, v := range raw[1:] {
		mx = math.Max(mx, v)
	}
	var sum float64
	for i, v := range raw {
		out[i] = math.Exp(v - mx)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
}

// eval answers n rows, one at a time through leaves (which has no
// tree-major batch path), then the objective's transform.
func (m *lgModel) eval(rows []float64, n int, out []float64) {
	rawp, _ := m.scratch.Get().(*[]float64)
	if rawp == nil {
		s := make([]float64, m.ngroup)
		rawp = &s
	}
	defer m.scratch.Put(rawp)
	raw := *rawp
	width := m.ngroup
	for r := 0; r < n; r++ {
		if err := m.ens.Predict(rows[r*m.nfeat:(r+1)*m.nfeat], 0, raw); err != nil {
			// Unreachable: rows have nfeat values and raw ngroup slots.
			for k := range raw {
				raw[k] = math.NaN()
			}
		}
		m.transform(raw, out[r*width:(r+1)*width])
	}
}
