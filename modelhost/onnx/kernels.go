package onnx

import "math"

// float is the element type of a model's tensors.
type float interface{ ~float32 | ~float64 }

// The kernels below are plain loops over row-major data, written so the
// compiler drops bounds checks in the inner loops (slices re-sliced to
// their exact length first). For the small dense graphs this runtime is
// for (tabular MLPs, linear and logistic models) a run is a few thousand
// multiply-adds per row: the interpreter's overhead per node, not the
// arithmetic, is what an engine built on a general tensor library loses on
// (see doc.go for the measurement).

// strides of a shape padded on the left to rank r, 0 on broadcast
// dimensions (size 1 where the output is larger).
func bstrides(s, out []int) []int {
	r := len(out)
	st := make([]int, r)
	acc := 1
	for i := r - 1; i >= 0; i-- {
		j := i - (r - len(s))
		if j < 0 {
			continue
		}
		if s[j] != 1 || out[i] == 1 {
			st[i] = acc
		}
		acc *= s[j]
	}
	return st
}

// broadcastOp computes y = a op b with numpy broadcasting to y's shape ys.
func broadcastOp[T float](op opKind, y []T, ys []int, a []T, as []int, b []T, bs []int) {
	if len(y) == 0 {
		return
	}
	switch {
	case len(a) == len(y) && len(b) == len(y):
		binKernel(op, y, a, b, 1, 1)
		return
	case len(a) == len(y) && len(b) == 1:
		binKernel(op, y, a, b, 1, 0)
		return
	case len(a) == 1 && len(b) == len(y):
		binKernel(op, y, a, b, 0, 1)
		return
	}
	r := len(ys)
	sa, sb := bstrides(as, ys), bstrides(bs, ys)
	inner := ys[r-1]
	ia, ib := sa[r-1], sb[r-1]
	idx := make([]int, r)
	offA, offB := 0, 0
	for off := 0; off < len(y); off += inner {
		binKernel(op, y[off:off+inner], a[offA:], b[offB:], ia, ib)
		// advance the odometer over the dimensions before the last
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			offA += sa[d]
			offB += sb[d]
			if idx[d] < ys[d] {
				break
			}
			offA -= sa[d] * idx[d]
			offB -= sb[d] * idx[d]
			idx[d] = 0
		}
	}
}

// binKernel computes y[i] = a[i*sa] op b[i*sb].
func binKernel[T float](op opKind, y, a, b []T, sa, sb int) {
	if sa == 1 && sb == 1 {
		a, b = a[:len(y)], b[:len(y)]
		switch op {
		case opAdd:
			for i := range y {
				y[i] = a[i] + b[i]
			}
		case opSub:
			for i := range y {
				y[i] = a[i] - b[i]
			}
		case opMul:
			for i := range y {
				y[i] = a[i] * b[i]
			}
		case opDiv:
			for i := range y {
				y[i] = a[i] / b[i]
			}
		}
		return
	}
	for i := range y {
		x, z := a[i*sa], b[i*sb]
		switch op {
		case opAdd:
			y[i] = x + z
		case opSub:
			y[i] = x - z
		case opMul:
			y[i] = x * z
		case opDiv:
			y[i] = x / z
		}
	}
}

// unary applies Relu, Sigmoid or Tanh. NaN stays NaN (as numpy's maximum).
func unary[T float](op opKind, y, x []T) {
	x = x[:len(y)]
	switch op {
	case opRelu:
		for i, v := range x {
			if v < 0 {
				v = 0
			}
			y[i] = v
		}
	case opSigmoid:
		for i, v := range x {
			y[i] = T(sigmoid(float64(v)))
		}
	case opTanh:
		for i, v := range x {
			y[i] = T(math.Tanh(float64(v)))
		}
	}
}

// sigmoid is 1/(1+e^-x), computed on the side that does not overflow.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// gemm computes y[m,n] = alpha·A'·B' + beta·C (C broadcast to [m,n]).
func gemm[T float](y []T, m, n, k int, a, b, c []T, cs []int, transA, transB bool, alpha, beta T) {
	gemmC(y, m, n, c, cs, beta)
	gemmAcc(y, m, n, k, a, b, transA, transB, alpha)
}

// gemmC sets y[m,n] to beta·C, C broadcast to [m,n] (zero without C).
func gemmC[T float](y []T, m, n int, c []T, cs []int, beta T) {
	y = y[:m*n]
	if c != nil && beta != 0 {
		st := bstrides(cs, []int{m, n})
		for i := range m {
			row := y[i*n : (i+1)*n]
			ci := i * st[0]
			for j := range row {
				row[j] = beta * c[ci+j*st[1]]
			}
		}
	} else {
		clear(y)
	}
}

// gemmAcc adds alpha·A'·B' to y[m,n].
func gemmAcc[T float](y []T, m, n, k int, a, b []T, transA, transB bool, alpha T) {
	for i := range m {
		row := y[i*n : (i+1)*n]
		switch {
		case !transB:
			for kk := range k {
				var av T
				if transA {
					av = a[kk*m+i]
				} else {
					av = a[i*k+kk]
				}
				axpy(row, b[kk*n:(kk+1)*n], alpha*av)
			}
		case !transA:
			ar := a[i*k : (i+1)*k]
			for j := range row {
				row[j] += alpha * dot(ar, b[j*k:(j+1)*k])
			}
		default:
			for j := range row {
				var s T
				bj := b[j*k : (j+1)*k]
				for kk, bv := range bj {
					s += a[kk*m+i] * bv
				}
				row[j] += alpha * s
			}
		}
	}
}

// gemmNT computes y[i,j] (+)= alpha·Σk a[i,k]·bt[j,k] for rows×n outputs:
// A row-major [rows, k], B transposed to [n, k]. Four outputs at a time
// share each load of a (a 1×4 register block): on the benchmark MLP this
// is 2 to 3 times faster than an axpy loop over B's rows.
func gemmNT[T float](y []T, rows, n, k int, a, bt []T, alpha T, acc bool) {
	bt = bt[:n*k]
	for i := range rows {
		ar := a[i*k : (i+1)*k]
		yr := y[i*n : (i+1)*n]
		j := 0
		for ; j+4 <= n; j += 4 {
			b0 := bt[j*k : (j+1)*k][:len(ar)]
			b1 := bt[(j+1)*k : (j+2)*k][:len(ar)]
			b2 := bt[(j+2)*k : (j+3)*k][:len(ar)]
			b3 := bt[(j+3)*k : (j+4)*k][:len(ar)]
			var s0, s1, s2, s3 T
			for kk, av := range ar {
				s0 += av * b0[kk]
				s1 += av * b1[kk]
				s2 += av * b2[kk]
				s3 += av * b3[kk]
			}
			o := yr[j : j+4 : j+4]
			if acc {
				o[0] += alpha * s0
				o[1] += alpha * s1
				o[2] += alpha * s2
				o[3] += alpha * s3
			} else {
				o[0], o[1], o[2], o[3] = alpha*s0, alpha*s1, alpha*s2, alpha*s3
			}
		}
		for ; j < n; j++ {
			s := alpha * dot(ar, bt[j*k:(j+1)*k])
			if acc {
				yr[j] += s
			} else {
				yr[j] = s
			}
		}
	}
}

// axpy adds s·x to y, four lanes at a time.
func axpy[T float](y, x []T, s T) {
	x = x[:len(y)]
	i := 0
	for ; i+4 <= len(y); i += 4 {
		yy, xx := y[i:i+4:i+4], x[i:i+4:i+4]
		yy[0] += s * xx[0]
		yy[1] += s * xx[1]
		yy[2] += s * xx[2]
		yy[3] += s * xx[3]
	}
	for ; i < len(y); i++ {
		y[i] += s * x[i]
	}
}

// dot is Σ a[i]·b[i], in four partial sums.
func dot[T float](a, b []T) T {
	b = b[:len(a)]
	var s0, s1, s2, s3 T
	i := 0
	for ; i+4 <= len(a); i += 4 {
		aa, bb := a[i:i+4:i+4], b[i:i+4:i+4]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// matmul is numpy's matmul of a (shape as) and b (shape bs) into y (shape
// ys, from matmulShape).
func matmul[T float](y []T, ys []int, a []T, as []int, b []T, bs []int) {
	a2, b2 := as, bs
	if len(as) == 1 {
		a2 = []int{1, as[0]}
	}
	if len(bs) == 1 {
		b2 = []int{bs[0], 1}
	}
	m, k, n := a2[len(a2)-2], a2[len(a2)-1], b2[len(b2)-1]
	batch, _ := broadcast(a2[:len(a2)-2], b2[:len(b2)-2])
	nb, _ := numel(batch)
	sa := bstrides(a2[:len(a2)-2], batch)
	sb := bstrides(b2[:len(b2)-2], batch)
	clear(y)
	idx := make([]int, len(batch))
	offA, offB := 0, 0
	for t := range nb {
		am := a[offA*m*k : (offA+1)*m*k]
		bm := b[offB*k*n : (offB+1)*k*n]
		ym := y[t*m*n : (t+1)*m*n]
		for i := range m {
			row := ym[i*n : (i+1)*n]
			for kk := range k {
				axpy(row, bm[kk*n:(kk+1)*n], am[i*k+kk])
			}
		}
		for d := len(batch) - 1; d >= 0; d-- {
			idx[d]++
			offA += sa[d]
			offB += sb[d]
			if idx[d] < batch[d] {
				break
			}
			offA -= sa[d] * idx[d]
			offB -= sb[d] * idx[d]
			idx[d] = 0
		}
	}
}

// softmax along axis of shape s; legacy (opset < 13) takes the input as
// 2-D [prod(s[:axis]), prod(s[axis:])] and normalizes each row.
func softmax[T float](y, x []T, s []int, axis int, legacy bool) {
	if axis < 0 {
		axis += len(s)
	}
	outer, _ := numel(s[:axis])
	length, inner := s[axis], 1
	if legacy {
		length, _ = numel(s[axis:])
	} else {
		inner, _ = numel(s[axis+1:])
	}
	for o := range outer {
		for in := range inner {
			base := o*length*inner + in
			mx := math.Inf(-1)
			for j := range length {
				if v := float64(x[base+j*inner]); v > mx || math.IsNaN(v) {
					mx = v
				}
			}
			var sum float64
			for j := range length {
				e := math.Exp(float64(x[base+j*inner]) - mx)
				y[base+j*inner] = T(e)
				sum += e
			}
			for j := range length {
				y[base+j*inner] = T(float64(y[base+j*inner]) / sum)
			}
		}
	}
}

// concat joins inputs along axis.
func concat[T float](y []T, ys []int, ins [][]T, shapes [][]int, axis int) {
	if axis < 0 {
		axis += len(ys)
	}
	outer, _ := numel(ys[:axis])
	inner, _ := numel(ys[axis+1:])
	pos := 0
	for o := range outer {
		for i, x := range ins {
			chunk := shapes[i][axis] * inner
			pos += copy(y[pos:], x[o*chunk:(o+1)*chunk])
		}
	}
}
