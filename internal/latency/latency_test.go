package latency

import (
	"testing"
	"time"
)

func TestHistogramQuantile(t *testing.T) {
	var h Histogram
	if got := h.Quantile(0.5, 100); got != 0 {
		t.Fatalf("empty: %d", got)
	}
	for i := 1; i <= 100; i++ {
		h.Add(int64(i) * int64(time.Millisecond))
	}
	max := int64(100 * time.Millisecond)
	// within one bucket above the true value
	for _, c := range []struct {
		q    float64
		true time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.95, 95 * time.Millisecond}, {0.99, 99 * time.Millisecond}} {
		got := time.Duration(h.Quantile(c.q, max))
		if got < c.true || float64(got) > float64(c.true)*Growth {
			t.Errorf("q%v = %v, want within a bucket above %v", c.q, got, c.true)
		}
	}
	if got := h.Quantile(1, max); got != max {
		t.Errorf("q1 = %v, want the cap %v", got, max)
	}
	before := h.Quantile(0.95, max)
	h.Scale(1.0 / 1024)
	if got := h.Quantile(0.95, max); got != before {
		t.Errorf("scaling changed q95: %v, was %v", got, before)
	}
	h.Reset()
	if h.Count() != 0 {
		t.Errorf("count after reset %v", h.Count())
	}
}

func TestBucketBounds(t *testing.T) {
	if Bucket(0) != 0 || Bucket(int64(time.Microsecond)) != 0 || Bucket(int64(time.Hour)) != Buckets-1 {
		t.Fatalf("bounds: %d %d %d", Bucket(0), Bucket(int64(time.Microsecond)), Bucket(int64(time.Hour)))
	}
	for d := int64(1001); d < int64(90*time.Second); d = d*3/2 + 1 {
		b := Bucket(d)
		if d > Upper(b) || (b > 0 && d <= Upper(b-1)*99/100) {
			t.Fatalf("%d in bucket %d (%d, %d]", d, b, Upper(b-1), Upper(b))
		}
	}
}

func TestQuantile(t *testing.T) {
	ds := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.1, 1}, {0.5, 5}, {0.95, 10}, {0.99, 10}, {1, 10}} {
		if got := Quantile(ds, c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if Quantile(nil, 0.5) != 0 {
		t.Error("empty sample")
	}
}
