package onnx

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

// engine runs a graph on n rows of features (row-major, NaN = missing) and
// appends each graph output's values to outs[o] as float64: n·perRow[o]
// values. It may be called from several goroutines at once.
type engine interface {
	run(rows []float64, n int, outs [][]float64) ([][]float64, error)
	constBytes() int64
	elemSize() int
}

// maxCachedPlan bounds the batch sizes whose plans are kept (a model sees
// at most its batch.max_size distinct sizes through the model actor).
const maxCachedPlan = 1024

// program is a graph with its float constants in the element type T.
type program[T float] struct {
	g      *graph
	consts [][]T // per value: the data of float constants, else nil
	// packed holds, per node, the constant B of a Gemm (without transA) or
	// a MatMul with a 2-D constant B, transposed to [N, K] so that every
	// output is a dot product of two contiguous rows (gemmNT); nil for the
	// other nodes. A B used by nothing else is kept only in this form.
	packed [][]T
	plans  [maxCachedPlan + 1]atomic.Pointer[plan]
	// scratch holds runs' arenas and per-value views, reused.
	scratch sync.Pool
}

type runScratch[T float] struct {
	arena []T
	views [][]T
	input []T
}

func newProgram[T float](g *graph) *program[T] {
	p := &program[T]{g: g, consts: make([][]T, len(g.values))}
	for i := range g.values {
		v := &g.values[i]
		if v.kind != vFloat {
			continue
		}
		c := make([]T, len(v.f64))
		for j, x := range v.f64 {
			c[j] = T(x)
		}
		p.consts[i] = c
		v.f64 = nil // the program holds the only copy
	}
	p.pack()
	p.scratch.New = func() any { return &runScratch[T]{views: make([][]T, len(g.values))} }
	return p
}

// pack fills packed: see there.
func (p *program[T]) pack() {
	g := p.g
	uses := make([]int, len(g.values))
	for _, nd := range g.nodes {
		for _, id := range nd.in {
			if id >= 0 {
				uses[id]++
			}
		}
	}
	for _, id := range g.outputs {
		uses[id]++
	}
	p.packed = make([][]T, len(g.nodes))
	for i := range g.nodes {
		nd := &g.nodes[i]
		if !(nd.op == opGemm && !nd.transA || nd.op == opMatMul) {
			continue
		}
		id := nd.in[1]
		b := p.consts[id]
		if b == nil || len(g.values[id].shape) != 2 {
			continue
		}
		if nd.op == opGemm && nd.transB {
			p.packed[i] = b // already [N, K]
			continue
		}
		k, n := g.values[id].shape[0], g.values[id].shape[1]
		bt := make([]T, len(b))
		for r := range k {
			for c := range n {
				bt[c*k+r] = b[r*n+c]
			}
		}
		p.packed[i] = bt
		if uses[id] == 1 {
			p.consts[id] = nil
		}
	}
}

func (p *program[T]) elemSize() int { var x T; return int(unsafe.Sizeof(x)) }

// constBytes is the memory of the constants: the float tensors in T and
// the int64 ones.
func (p *program[T]) constBytes() int64 {
	var n int64
	for _, c := range p.consts {
		n += int64(len(c)) * int64(p.elemSize())
	}
	for i, c := range p.packed {
		if c != nil && !(p.g.nodes[i].op == opGemm && p.g.nodes[i].transB) {
			n += int64(len(c)) * int64(p.elemSize())
		}
	}
	for i := range p.g.values {
		n += 8 * int64(len(p.g.values[i].i64))
	}
	return n
}

// planFor returns the plan of n rows, cached for n ≤ maxCachedPlan.
func (p *program[T]) planFor(n int) (*plan, error) {
	if n <= maxCachedPlan {
		if pl := p.plans[n].Load(); pl != nil {
			return pl, nil
		}
	}
	pl, err := p.g.plan(n)
	if err != nil {
		return nil, err
	}
	if n <= maxCachedPlan {
		p.plans[n].Store(pl)
	}
	return pl, nil
}

func (p *program[T]) run(rows []float64, n int, outs [][]float64) ([][]float64, error) {
	pl, err := p.planFor(n)
	if err != nil {
		return outs, err
	}
	s := p.scratch.Get().(*runScratch[T])
	defer p.scratch.Put(s)
	if cap(s.arena) < pl.arena {
		s.arena = make([]T, pl.arena)
	}
	arena := s.arena[:pl.arena]
	views := s.views
	g := p.g
	// The input: float64 rows are used as they are; float32 graphs get a
	// converted copy.
	if in, ok := any(rows).([]T); ok {
		views[g.input] = in[:n*g.nfeat]
	} else {
		s.input = s.input[:0]
		for _, x := range rows[:n*g.nfeat] {
			s.input = append(s.input, T(x))
		}
		views[g.input] = s.input
	}
	for i, c := range p.consts {
		if c != nil {
			views[i] = c
		}
	}
	for i := range g.nodes {
		nd := &g.nodes[i]
		if off := pl.off[nd.out]; off >= 0 {
			size, _ := numel(pl.shapes[nd.out])
			views[nd.out] = arena[off : off+size]
		}
		p.exec(nd, p.packed[i], pl, views)
	}
	for o, id := range g.outputs {
		for _, x := range views[id] {
			outs[o] = append(outs[o], float64(x))
		}
	}
	clear(views) // keep no references to a caller's rows in the pool
	return outs, nil
}

// exec runs one node; its output's view is set (arena) or is set here
// (views of its input).
func (p *program[T]) exec(nd *node, packed []T, pl *plan, views [][]T) {
	y := views[nd.out]
	ys := pl.shapes[nd.out]
	in := func(i int) ([]T, []int) {
		if i >= len(nd.in) || nd.in[i] < 0 {
			return nil, nil
		}
		return views[nd.in[i]], pl.shapes[nd.in[i]]
	}
	a, as := in(0)
	switch nd.op {
	case opIdentity, opReshape, opFlatten:
		views[nd.out] = a
	case opRelu, opSigmoid, opTanh:
		unary(nd.op, y, a)
	case opAdd, opSub, opMul, opDiv:
		b, bs := in(1)
		broadcastOp(nd.op, y, ys, a, as, b, bs)
	case opGemm:
		b, _ := in(1)
		c, cs := in(2)
		k := as[1]
		if nd.transA {
			k = as[0]
		}
		if packed != nil {
			gemmC(y, ys[0], ys[1], c, cs, T(nd.beta))
			gemmNT(y, ys[0], ys[1], k, a, packed, T(nd.alpha), true)
			break
		}
		gemm(y, ys[0], ys[1], k, a, b, c, cs, nd.transA, nd.transB, T(nd.alpha), T(nd.beta))
	case opMatMul:
		b, bs := in(1)
		if packed != nil {
			k := as[len(as)-1]
			gemmNT(y, len(a)/k, bs[1], k, a, packed, 1, false)
			break
		}
		matmul(y, ys, a, as, b, bs)
	case opSoftmax:
		softmax(y, a, as, nd.axis, nd.legacySoftmax)
	case opConcat:
		ins := make([][]T, len(nd.in))
		shapes := make([][]int, len(nd.in))
		for i, id := range nd.in {
			ins[i], shapes[i] = views[id], pl.shapes[id]
		}
		concat(y, ys, ins, shapes, nd.axis)
	default:
		panic(fmt.Sprintf("onnx: no kernel for op %d", nd.op)) // parseGraph admits only the kinds above
	}
}
