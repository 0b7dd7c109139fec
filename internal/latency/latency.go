// Package latency holds the project's one latency histogram and its one
// quantile of a sorted sample: the per-model statistics (actors), the status
// page's per-second chart (ops), the strategy lab, the demo and the fraud
// example all measure with these.
package latency

import (
	"math"
	"time"
)

// Buckets is the number of histogram buckets: log-spaced from 1µs growing by
// Growth, so that bucket 96 starts near 100 s; the last bucket takes
// everything above, bucket 0 everything up to 1µs. A quantile read from the
// histogram is within one bucket (21%) above the true value.
const Buckets = 97

const (
	bucketMin = float64(time.Microsecond)
	// Growth is the ratio of one bucket's upper bound to the previous
	// one's: (1e8)^(1/96).
	Growth = 1.2115
)

var logGrowth = math.Log(Growth)

// Bucket returns the bucket of a duration of d nanoseconds.
func Bucket(d int64) int {
	if float64(d) <= bucketMin {
		return 0
	}
	return min(int(math.Log(float64(d)/bucketMin)/logGrowth)+1, Buckets-1)
}

// Upper returns the upper bound of bucket b in nanoseconds.
func Upper(b int) int64 { return int64(bucketMin * math.Pow(Growth, float64(b))) }

// Histogram counts durations in log-spaced buckets. Counts are float64 so
// that a histogram can decay (Scale) and still answer quantiles: scaling
// every bucket alike keeps the shape. The zero value is empty and ready.
type Histogram struct {
	n [Buckets]float64
}

// Add counts one duration of d nanoseconds.
func (h *Histogram) Add(d int64) { h.n[Bucket(d)]++ }

// Scale multiplies every count by f (0 < f ≤ 1 to forget old samples).
func (h *Histogram) Scale(f float64) {
	for i := range h.n {
		h.n[i] *= f
	}
}

// Reset empties the histogram.
func (h *Histogram) Reset() { h.n = [Buckets]float64{} }

// Count is the (possibly decayed) number of samples.
func (h *Histogram) Count() float64 {
	var c float64
	for _, n := range h.n {
		c += n
	}
	return c
}

// Quantile returns the upper bound of the bucket holding the q-quantile,
// capped at limit (the largest duration seen), or 0 when empty.
func (h *Histogram) Quantile(q float64, limit int64) int64 {
	total := h.Count()
	if total <= 0 {
		return 0
	}
	want := q * total
	var seen float64
	for b, n := range h.n {
		seen += n
		if n > 0 && seen >= want {
			return min(Upper(b), limit)
		}
	}
	return limit
}

// Quantile returns the q-quantile of sorted (ascending) by nearest rank:
// the smallest value with at least q of the sample at or below it; q = 1 is
// the maximum. It returns 0 for an empty sample.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
