package onnx

import (
	"math"
	"math/rand/v2"
	"testing"

	pb "github.com/manta-ml/manta/modelhost/onnx/internal/onnxpb"
)

// The oracle test covers the graphs exporters write; these check the
// kernels' other paths (transposed Gemm operands, C broadcast by column,
// MatMul of two computed tensors with broadcast leading dimensions,
// general broadcasting, Softmax on a middle axis, Concat on axis 0)
// against naive float64 loops written from the ONNX definitions.

func randSlice(r *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = r.Float64()*2 - 1
	}
	return x
}

func closeAll(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
			t.Fatalf("%s: [%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// at reads x (shape s, row-major) at the index idx of a broadcast result.
func at(x []float64, s, idx []int) float64 {
	off, stride := 0, 1
	for d := len(s) - 1; d >= 0; d-- {
		i := idx[len(idx)-len(s)+d]
		if s[d] == 1 {
			i = 0
		}
		off += i * stride
		stride *= s[d]
	}
	return x[off]
}

// each calls f with every index of shape s in row-major order.
func each(s []int, f func(idx []int)) {
	idx := make([]int, len(s))
	n, _ := numel(s)
	for range n {
		f(idx)
		for d := len(s) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < s[d] {
				break
			}
			idx[d] = 0
		}
	}
}

func TestGemmKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		m, n, k        int
		transA, transB bool
		cs             []int
	}{
		{3, 5, 4, false, false, []int{5}},
		{3, 5, 4, true, false, []int{3, 1}},
		{3, 6, 4, false, true, []int{1}},
		{2, 7, 9, true, true, []int{2, 7}},
		{4, 3, 5, false, false, nil},
	} {
		a, b := randSlice(r, tc.m*tc.k), randSlice(r, tc.k*tc.n)
		var c []float64
		if tc.cs != nil {
			nc, _ := numel(tc.cs)
			c = randSlice(r, nc)
		}
		alpha, beta := 0.7, -1.3
		want := make([]float64, tc.m*tc.n)
		for i := range tc.m {
			for j := range tc.n {
				var s float64
				for kk := range tc.k {
					av, bv := a[i*tc.k+kk], b[kk*tc.n+j]
					if tc.transA {
						av = a[kk*tc.m+i]
					}
					if tc.transB {
						bv = b[j*tc.k+kk]
					}
					s += av * bv
				}
				want[i*tc.n+j] = alpha * s
				if c != nil {
					want[i*tc.n+j] += beta * at(c, tc.cs, []int{i, j})
				}
			}
		}
		got := make([]float64, tc.m*tc.n)
		gemm(got, tc.m, tc.n, tc.k, a, b, c, tc.cs, tc.transA, tc.transB, alpha, beta)
		closeAll(t, "gemm", got, want)
		if !tc.transA {
			bt := b
			if !tc.transB {
				bt = make([]float64, len(b))
				for kk := range tc.k {
					for j := range tc.n {
						bt[j*tc.k+kk] = b[kk*tc.n+j]
					}
				}
			}
			got := make([]float64, tc.m*tc.n)
			gemmC(got, tc.m, tc.n, c, tc.cs, beta)
			gemmNT(got, tc.m, tc.n, tc.k, a, bt, alpha, true)
			closeAll(t, "gemmNT", got, want)
		}
	}
}

func TestMatMulKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ as, bs []int }{
		{[]int{2, 1, 3, 4}, []int{5, 4, 2}}, // leading dims broadcast: [2,5,3,2]
		{[]int{4}, []int{3, 4, 2}},          // 1-D a
		{[]int{2, 3, 4}, []int{4}},          // 1-D b
		{[]int{3, 4}, []int{4, 6}},
	} {
		ys, err := matmulShape(tc.as, tc.bs)
		if err != nil {
			t.Fatal(err)
		}
		na, _ := numel(tc.as)
		nb, _ := numel(tc.bs)
		a, b := randSlice(r, na), randSlice(r, nb)
		// naive: promote, broadcast, multiply, drop the promoted dims
		a2, b2 := tc.as, tc.bs
		if len(a2) == 1 {
			a2 = []int{1, a2[0]}
		}
		if len(b2) == 1 {
			b2 = []int{b2[0], 1}
		}
		batch, _ := broadcast(a2[:len(a2)-2], b2[:len(b2)-2])
		m, k, n := a2[len(a2)-2], a2[len(a2)-1], b2[len(b2)-1]
		full := append(append([]int{}, batch...), m, n)
		var want []float64
		each(full, func(idx []int) {
			var s float64
			for kk := range k {
				ia := append(append([]int{}, idx[:len(batch)]...), idx[len(batch)], kk)
				ib := append(append([]int{}, idx[:len(batch)]...), kk, idx[len(batch)+1])
				s += at(a, a2, ia) * at(b, b2, ib)
			}
			want = append(want, s)
		})
		ny, _ := numel(ys)
		got := make([]float64, ny)
		matmul(got, ys, a, tc.as, b, tc.bs)
		closeAll(t, "matmul", got, want)
	}
}

func TestBroadcastKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct{ as, bs []int }{
		{[]int{3, 1, 4}, []int{2, 1}},
		{[]int{1}, []int{2, 3}},
		{[]int{2, 3}, []int{2, 3}},
		{[]int{4, 1}, []int{1, 5}},
		{[]int{}, []int{3}},
	} {
		ys, ok := broadcast(tc.as, tc.bs)
		if !ok {
			t.Fatal(tc)
		}
		na, _ := numel(tc.as)
		nb, _ := numel(tc.bs)
		a, b := randSlice(r, na), randSlice(r, nb)
		for _, op := range []opKind{opAdd, opSub, opMul, opDiv} {
			var want []float64
			each(ys, func(idx []int) {
				x, z := at(a, tc.as, idx), at(b, tc.bs, idx)
				want = append(want, map[opKind]float64{opAdd: x + z, opSub: x - z, opMul: x * z, opDiv: x / z}[op])
			})
			got := make([]float64, len(want))
			broadcastOp(op, got, ys, a, tc.as, b, tc.bs)
			closeAll(t, "broadcast", got, want)
		}
	}
}

func TestSoftmaxConcatKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	s := []int{2, 3, 4}
	x := randSlice(r, 24)
	got := make([]float64, 24)
	softmax(got, x, s, 1, false)
	for i := range 2 {
		for k := range 4 {
			var sum float64
			for j := range 3 {
				sum += math.Exp(x[i*12+j*4+k])
			}
			for j := range 3 {
				if w := math.Exp(x[i*12+j*4+k]) / sum; math.Abs(got[i*12+j*4+k]-w) > 1e-15 {
					t.Fatalf("softmax axis 1 [%d %d %d] = %v, want %v", i, j, k, got[i*12+j*4+k], w)
				}
			}
		}
	}
	y := randSlice(r, 12) // [1,3,4] concatenated on axis 0 with x [2,3,4]
	out := make([]float64, 36)
	concat(out, []int{3, 3, 4}, [][]float64{x, y}, [][]int{s, {1, 3, 4}}, 0)
	closeAll(t, "concat axis 0", out, append(append([]float64{}, x...), y...))
	out = make([]float64, 48)
	concat(out, []int{2, 3, 8}, [][]float64{x, x}, [][]int{s, s}, -1)
	for i := range 6 {
		closeAll(t, "concat axis -1", out[i*8:i*8+8], append(append([]float64{}, x[i*4:i*4+4]...), x[i*4:i*4+4]...))
	}
}

// TestComputedMatMul runs a MatMul of two computed tensors (no packing)
// through a whole graph.
func TestComputedMatMul(t *testing.T) {
	b := newTestModel(pb.TensorProto_DOUBLE, "N", 4).ints("s", -1, 2, 2).
		node("Reshape", []string{"x", "s"}, "r").node("MatMul", []string{"r", "r"}, "m").
		node("Flatten", []string{"m"}, "y").output("y").bytes(t)
	m, err := Parse(b, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	// [[1 2] [3 4]]² = [[7 10] [15 22]]
	out := predictOne(t, m, `{"features":[1,2,3,4]}`, `{"features":[0,1,1,0]}`)
	if string(out[0].Payload) != `{"prediction":[7,10,15,22]}` || string(out[1].Payload) != `{"prediction":[1,0,0,1]}` {
		t.Fatalf("answers %s %s", out[0].Payload, out[1].Payload)
	}
}
