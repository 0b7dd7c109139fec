package onnx

import (
	"fmt"
	"slices"
)

// plan is the shape of every value of a graph at one batch size, and where
// each computed value lives in the run's arena (one buffer per run for all
// intermediates). Shapes are inferred, and checked, once per batch size:
// the graph's operators, attributes and constants decide them entirely.
type plan struct {
	n      int
	shapes [][]int
	off    []int // arena offset of a computed value's data; -1: none (input, constant, or a view of its input)
	arena  int   // elements
}

// inputShape is the input tensor's shape for n rows.
func (g *graph) inputShape(n int) []int {
	switch {
	case g.batched:
		return append([]int{n}, g.inRow...)
	case g.lead1:
		return append([]int{1}, g.inRow...)
	default:
		return slices.Clone(g.inRow)
	}
}

// plan infers every value's shape for a run of n rows (n is 1 when the
// graph is not batched). An error names the node whose inputs do not fit.
func (g *graph) plan(n int) (*plan, error) {
	p := &plan{n: n, shapes: make([][]int, len(g.values)), off: make([]int, len(g.values))}
	for i := range g.values {
		p.off[i] = -1
		if k := g.values[i].kind; k == vFloat || k == vInt64 {
			p.shapes[i] = g.values[i].shape
		}
	}
	p.shapes[g.input] = g.inputShape(n)
	for i := range g.nodes {
		nd := &g.nodes[i]
		s, view, err := g.nodeShape(p, nd)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", nd.name, err)
		}
		size, ok := numel(s)
		if !ok {
			return nil, fmt.Errorf("%s: output shape %v: more than %d elements", nd.name, s, int64(maxElems))
		}
		p.shapes[nd.out] = s
		if !view {
			p.off[nd.out] = p.arena
			p.arena += size
			if p.arena > maxElems {
				return nil, fmt.Errorf("%s: intermediate tensors above %d elements", nd.name, int64(maxElems))
			}
		}
	}
	return p, nil
}

// planBytes is the memory a cached plan holds.
func planBytes(p *plan) int64 {
	n := int64(64)
	for _, s := range p.shapes {
		n += 24 + 8 + 8*int64(len(s))
	}
	return n
}

// numel is the element count of a shape, false past maxElems.
func numel(s []int) (int, bool) {
	n := 1
	for _, d := range s {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > maxElems/d {
			return 0, false
		}
		n *= d
	}
	return n, n <= maxElems
}

// nodeShape is a node's output shape; view says the output shares its
// first input's data (Reshape, Flatten, Identity).
func (g *graph) nodeShape(p *plan, nd *node) (out []int, view bool, err error) {
	in := func(i int) []int {
		if i >= len(nd.in) || nd.in[i] < 0 {
			return nil
		}
		return p.shapes[nd.in[i]]
	}
	a := in(0)
	switch nd.op {
	case opRelu, opSigmoid, opTanh:
		return a, false, nil
	case opIdentity:
		return a, true, nil
	case opAdd, opSub, opMul, opDiv:
		s, ok := broadcast(a, in(1))
		if !ok {
			return nil, false, fmt.Errorf("shapes %v and %v do not broadcast", a, in(1))
		}
		return s, false, nil
	case opGemm:
		return gemmShape(a, in(1), in(2), nd.transA, nd.transB)
	case opMatMul:
		s, err := matmulShape(a, in(1))
		return s, false, err
	case opSoftmax:
		if len(a) == 0 {
			return nil, false, fmt.Errorf("input is a scalar")
		}
		if _, err := normAxis(nd.axis, len(a), false); err != nil {
			return nil, false, err
		}
		return a, false, nil
	case opFlatten:
		ax, err := normAxis(nd.axis, len(a), true)
		if err != nil {
			return nil, false, err
		}
		outer, _ := numel(a[:ax])
		inner, _ := numel(a[ax:])
		return []int{outer, inner}, true, nil
	case opReshape:
		s, err := reshapeShape(a, g.values[nd.in[1]], nd.allowZero)
		return s, true, err
	case opConcat:
		return concatShape(p, nd)
	}
	return nil, false, fmt.Errorf("no shape rule") // unreachable: parseGraph admits only the kinds above
}

// normAxis maps a negative axis to its positive form; with end, rank itself
// is allowed (Flatten).
func normAxis(axis, rank int, end bool) (int, error) {
	hi := rank - 1
	if end {
		hi = rank
	}
	if axis < 0 {
		axis += rank
	}
	if axis < 0 || axis > hi {
		return 0, fmt.Errorf("axis out of range for rank %d", rank)
	}
	return axis, nil
}

// broadcast is numpy's multidirectional broadcast of two shapes.
func broadcast(a, b []int) ([]int, bool) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := range r {
		da, db := 1, 1
		if j := i - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, false
		}
	}
	return out, true
}

func gemmShape(a, b, c []int, transA, transB bool) ([]int, bool, error) {
	if len(a) != 2 || len(b) != 2 {
		return nil, false, fmt.Errorf("inputs of rank %d and %d: want 2 and 2", len(a), len(b))
	}
	m, k := a[0], a[1]
	if transA {
		m, k = k, m
	}
	k2, n := b[0], b[1]
	if transB {
		k2, n = n, k2
	}
	if k != k2 {
		return nil, false, fmt.Errorf("A is %v and B is %v (transA=%v, transB=%v): inner dimensions %d and %d differ", a, b, transA, transB, k, k2)
	}
	if c != nil {
		if len(c) > 2 {
			return nil, false, fmt.Errorf("C of rank %d", len(c))
		}
		if s, ok := broadcast([]int{m, n}, c); !ok || s[0] != m || s[1] != n {
			return nil, false, fmt.Errorf("C %v does not broadcast to [%d %d]", c, m, n)
		}
	}
	return []int{m, n}, false, nil
}

// matmulShape is numpy's matmul: 1-D operands are promoted (and the
// promoted dimension dropped from the result), leading dimensions
// broadcast.
func matmulShape(a, b []int) ([]int, error) {
	if len(a) == 0 || len(b) == 0 {
		return nil, fmt.Errorf("a scalar operand")
	}
	a2, b2 := a, b
	if len(a) == 1 {
		a2 = []int{1, a[0]}
	}
	if len(b) == 1 {
		b2 = []int{b[0], 1}
	}
	if a2[len(a2)-1] != b2[len(b2)-2] {
		return nil, fmt.Errorf("shapes %v and %v: inner dimensions %d and %d differ", a, b, a2[len(a2)-1], b2[len(b2)-2])
	}
	batch, ok := broadcast(a2[:len(a2)-2], b2[:len(b2)-2])
	if !ok {
		return nil, fmt.Errorf("shapes %v and %v: leading dimensions do not broadcast", a, b)
	}
	out := batch
	if len(a) > 1 {
		out = append(out, a2[len(a2)-2])
	}
	if len(b) > 1 {
		out = append(out, b2[len(b2)-1])
	}
	return out, nil
}

// reshapeShape applies Reshape's shape tensor: 0 copies the input's
// dimension (unless allowzero), -1 is inferred.
func reshapeShape(a []int, shape value, allowZero bool) ([]int, error) {
	if len(shape.shape) != 1 {
		return nil, fmt.Errorf("shape %q has rank %d: want 1", shape.name, len(shape.shape))
	}
	if len(shape.i64) > maxRank {
		return nil, fmt.Errorf("shape %q: rank %d above %d", shape.name, len(shape.i64), maxRank)
	}
	size, _ := numel(a)
	out := make([]int, len(shape.i64))
	infer := -1
	known := 1
	for i, s := range shape.i64 {
		switch {
		case s == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape %v: more than one -1", shape.i64)
			}
			infer = i
			continue
		case s == 0 && !allowZero:
			if i >= len(a) {
				return nil, fmt.Errorf("shape %v: 0 at %d copies a dimension the input %v does not have", shape.i64, i, a)
			}
			out[i] = a[i]
		case s < 0 || s > maxElems:
			return nil, fmt.Errorf("shape %v: dimension %d", shape.i64, s)
		default:
			out[i] = int(s)
		}
		if out[i] != 0 && known > maxElems/out[i] {
			return nil, fmt.Errorf("shape %v: too many elements", shape.i64)
		}
		known *= out[i]
	}
	if infer >= 0 {
		if known == 0 || size%known != 0 {
			return nil, fmt.Errorf("input %v (%d elements) cannot take shape %v", a, size, shape.i64)
		}
		out[infer] = size / known
		known = size
	}
	if known != size {
		return nil, fmt.Errorf("input %v (%d elements) cannot take shape %v", a, size, shape.i64)
	}
	return out, nil
}

func concatShape(p *plan, nd *node) ([]int, bool, error) {
	first := p.shapes[nd.in[0]]
	ax, err := normAxis(nd.axis, len(first), false)
	if err != nil {
		return nil, false, err
	}
	out := slices.Clone(first)
	out[ax] = 0
	for i, id := range nd.in {
		s := p.shapes[id]
		if len(s) != len(first) {
			return nil, false, fmt.Errorf("input %d has rank %d, input 0 rank %d", i, len(s), len(first))
		}
		for d := range s {
			if d != ax && s[d] != first[d] {
				return nil, false, fmt.Errorf("input %d is %v, input 0 %v: they differ beyond axis %d", i, s, first, ax)
			}
		}
		out[ax] += s[ax]
		if out[ax] > maxElems {
			return nil, false, fmt.Errorf("too many elements")
		}
	}
	return out, false, nil
}
