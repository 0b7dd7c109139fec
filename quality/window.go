package quality

import "math"

// window keeps the last cap joined labels' errors of one version: a for
// the absolute error (regressor) or 1 when correct (classifier), b for the
// squared error or the log loss, and their running sums.
type window struct {
	a, b       []float64
	n, next    int
	sumA, sumB float64
	pushes     int
}

func newWindow(n int) *window { return &window{a: make([]float64, n), b: make([]float64, n)} }

func (w *window) push(a, b float64) {
	if w.n == len(w.a) {
		w.sumA -= w.a[w.next]
		w.sumB -= w.b[w.next]
	} else {
		w.n++
	}
	w.a[w.next], w.b[w.next] = a, b
	w.sumA += a
	w.sumB += b
	w.next = (w.next + 1) % len(w.a)
	w.pushes++
	if w.pushes%len(w.a) == 0 {
		// running sums drift by rounding: start them again once a window
		w.sumA, w.sumB = 0, 0
		for i := 0; i < w.n; i++ {
			w.sumA += w.a[i]
			w.sumB += w.b[i]
		}
	}
}

func (w *window) full() bool { return w.n == len(w.a) }

// measures returns the window's measures for kind.
func (w *window) measures(k kind) map[string]float64 {
	if w.n == 0 {
		return nil
	}
	n := float64(w.n)
	switch k {
	case regressor:
		return map[string]float64{"mae": w.sumA / n, "rmse": math.Sqrt(math.Max(w.sumB, 0) / n)}
	case classifier:
		m := map[string]float64{"accuracy": w.sumA / n}
		if !math.IsNaN(w.sumB) {
			m["logloss"] = w.sumB / n
		}
		return m
	}
	return nil
}

// epsilon clips probabilities in the log loss as scikit-learn's log_loss
// does (the float64 machine epsilon), so a confident wrong answer costs
// about 36, not infinity.
const epsilon = 2.220446049250313e-16

// logLoss is −log of the probability given to class c, the probabilities
// normalised to sum to 1 and clipped to [ε, 1−ε].
func logLoss(p []float32, c int) float64 {
	var sum float64
	for _, x := range p {
		sum += float64(x)
	}
	if sum <= 0 {
		return -math.Log(epsilon)
	}
	q := float64(p[c]) / sum
	q = math.Min(math.Max(q, epsilon), 1-epsilon)
	return -math.Log(q)
}
