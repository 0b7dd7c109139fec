package quality

import (
	"math"
	"slices"
)

// profile is one version's drift state: while it collects its reference
// it keeps the reference rows (at most ReferenceRows × MaxFeatures values
// and as many predictions); once the reference is complete it keeps only
// per-feature bin edges and counts, Bins per feature for the reference
// and the same for live requests, and the same for the predictions.
type profile struct {
	bins, rows int
	source     string // "file" or "requests"

	// collecting
	nf        int       // features per row (from the first row)
	collected int       // rows collected
	refX      []float64 // collected × nf, row-major
	refY      []float64 // predictions of the collected rows
	refYn     int

	// complete
	ready           bool
	refRows         int
	edges           [][]float64 // per feature, ascending inner edges
	ref, live       [][]float64 // per feature, counts per bin
	predEdges       []float64
	predRef, predLv []float64
	liveRows        int64
	liveN           float64 // rows in live since the last halving
	hasPred         bool
}

func newProfile(bins, rows int) *profile { return &profile{bins: bins, rows: rows, source: "requests"} }

// observe counts one request's features x (already cut to MaxFeatures) and
// its prediction (when hasY).
func (p *profile) observe(x []float64, y float64, hasY bool) {
	if !p.ready {
		if p.collected == 0 && p.nf == 0 {
			if len(x) == 0 {
				return
			}
			p.nf = len(x)
			p.refX = make([]float64, 0, p.rows*p.nf)
			p.refY = make([]float64, 0, p.rows)
		}
		if len(x) != p.nf {
			return // a row of another shape does not describe the population
		}
		p.refX = append(p.refX, x...)
		if hasY {
			p.refY = append(p.refY, y)
		}
		p.collected++
		if p.collected >= p.rows {
			p.finish()
		}
		return
	}
	if len(x) != len(p.edges) {
		return
	}
	if p.liveN >= float64(p.rows) {
		// halve: the live histograms follow the last few thousand rows
		for _, h := range p.live {
			for i := range h {
				h[i] /= 2
			}
		}
		for i := range p.predLv {
			p.predLv[i] /= 2
		}
		p.liveN /= 2
	}
	for f, v := range x {
		p.live[f][bin(p.edges[f], v)]++
	}
	if hasY && p.hasPred {
		p.predLv[bin(p.predEdges, y)]++
	}
	p.liveN++
	p.liveRows++
}

// setReference makes the profile from rows given (a manifest's reference
// file): each row's leading features, as many as the first row has.
func (p *profile) setReference(rows [][]float64, maxFeatures int) {
	if len(rows) == 0 {
		return
	}
	nf := min(len(rows[0]), maxFeatures)
	p.nf = nf
	p.refX = make([]float64, 0, len(rows)*nf)
	p.collected = 0
	for _, r := range rows {
		if len(r) < nf {
			continue
		}
		p.refX = append(p.refX, r[:nf]...)
		p.collected++
	}
	p.refY = nil
	p.source = "file"
	p.finish()
}

// finish turns the collected rows into bin edges (equal-frequency over the
// reference) and reference counts, and drops the rows.
func (p *profile) finish() {
	n := p.collected
	if n == 0 || p.nf == 0 {
		return
	}
	col := make([]float64, n)
	p.edges = make([][]float64, p.nf)
	p.ref = make([][]float64, p.nf)
	p.live = make([][]float64, p.nf)
	for f := 0; f < p.nf; f++ {
		for r := 0; r < n; r++ {
			col[r] = p.refX[r*p.nf+f]
		}
		p.edges[f], p.ref[f] = histogram(col, p.bins)
		p.live[f] = make([]float64, len(p.ref[f]))
	}
	if len(p.refY) > 0 {
		p.hasPred = true
		p.predEdges, p.predRef = histogram(p.refY, p.bins)
		p.predLv = make([]float64, len(p.predRef))
	}
	p.refRows = n
	p.refX, p.refY = nil, nil
	p.ready = true
}

// histogram returns equal-frequency inner edges over values (at most
// bins-1 of them, equal ones merged: a constant feature gets one bin) and
// the values' counts per bin. values is sorted in place.
func histogram(values []float64, bins int) (edges, counts []float64) {
	slices.Sort(values)
	n := len(values)
	for i := 1; i < bins; i++ {
		e := values[i*n/bins]
		if len(edges) > 0 && e <= edges[len(edges)-1] || e <= values[0] {
			continue
		}
		edges = append(edges, e)
	}
	counts = make([]float64, len(edges)+1)
	for _, v := range values {
		counts[bin(edges, v)]++
	}
	return edges, counts
}

// bin is the index of v's bin: the number of edges ≤ v. NaN goes to the
// first bin.
func bin(edges []float64, v float64) int {
	lo, hi := 0, len(edges)
	for lo < hi {
		m := (lo + hi) / 2
		if edges[m] <= v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// psiFloor keeps an empty bin from making the index infinite: the usual
// practice is a small proportion in place of zero.
const psiFloor = 1e-4

// PSI is the population stability index of actual against expected
// (counts over the same bins): Σ (a−e)·ln(a/e) over the bins' proportions.
// Under 0.1 is commonly read as no shift, over 0.25 as a large one. It is
// 0 when either side is empty.
func PSI(expected, actual []float64) float64 {
	var se, sa float64
	for i := range expected {
		se += expected[i]
		sa += actual[i]
	}
	if se == 0 || sa == 0 {
		return 0
	}
	var psi float64
	for i := range expected {
		e := math.Max(expected[i]/se, psiFloor)
		a := math.Max(actual[i]/sa, psiFloor)
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}

// drift returns the feature PSIs, the prediction's and the score (the
// largest feature PSI); ok is false before the reference is complete
// (with no live row yet they are 0).
func (p *profile) drift() (features []float64, pred float64, score float64, ok bool) {
	if !p.ready {
		return nil, 0, 0, false
	}
	features = make([]float64, len(p.ref))
	for f := range p.ref {
		features[f] = PSI(p.ref[f], p.live[f])
		score = math.Max(score, features[f])
	}
	if p.hasPred {
		pred = PSI(p.predRef, p.predLv)
	}
	return features, pred, score, true
}
