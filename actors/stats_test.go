package actors

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// fakeClock is an injectable clock for the registry.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestRegistry() (*StatsRegistry, *fakeClock) {
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	r := NewStatsRegistry()
	r.now = c.now
	return r, c
}

// TestStatsQuantilesAreRecent: after latency moves from a fast regime to a
// slow one, the p95 the strategies read reflects the slow regime once the
// fast one is a minute old, although the fast requests are still 99% of all
// requests ever seen (a cumulative histogram says fast).
func TestStatsQuantilesAreRecent(t *testing.T) {
	r, clock := newTestRegistry()
	fast, slow := int64(time.Millisecond), int64(50*time.Millisecond)
	batch := func(d int64, n int) {
		ds := make([]int64, n)
		for i := range ds {
			ds[i] = d
		}
		r.RecordBatch("m", "1", ds, 0, 0)
	}
	for range 100 {
		batch(fast, 100) // 10,000 fast requests
	}
	if p95 := r.Snapshot("m").P95; p95 < fast || p95 > 2*fast {
		t.Fatalf("fast regime p95 = %v", time.Duration(p95))
	}
	clock.advance(time.Minute)
	batch(slow, 100) // 1% of all requests
	st := r.Snapshot("m")
	if st.P95 < slow {
		t.Fatalf("a minute into the slow regime p95 = %v, want ≥ %v (count %d)", time.Duration(st.P95), time.Duration(slow), st.Count)
	}
	if st.Count != 10_100 || st.MaxDuration != slow || st.MinDuration != fast {
		t.Fatalf("cumulative counters %+v", st)
	}
	// Back to fast: the slow minute fades the same way.
	clock.advance(2 * time.Minute)
	batch(fast, 100)
	if p95 := r.Snapshot("m").P95; p95 > 2*fast {
		t.Fatalf("back to fast, p95 = %v", time.Duration(p95))
	}
}

// TestStatsCompactIdleModels: a model unseen for statsIdle loses its
// histogram but keeps its counters and last quantiles; seen again, it gets
// a fresh histogram.
func TestStatsCompactIdleModels(t *testing.T) {
	r, clock := newTestRegistry()
	r.RecordBatch("old", "1", []int64{int64(time.Millisecond)}, 0, 0)
	before := r.Snapshot("old")
	clock.advance(statsIdle + time.Second)
	r.RecordBatch("new", "1", []int64{int64(time.Millisecond)}, 0, 0)
	r.mu.Lock()
	compacted := r.models["old"].recent == nil && r.models["new"].recent != nil
	r.mu.Unlock()
	if !compacted {
		t.Fatal("the idle model kept its histogram")
	}
	after := r.Snapshot("old")
	if after.Count != 1 || after.P95 != before.P95 || after.P50 != before.P50 {
		t.Fatalf("compacted stats %+v, were %+v", after, before)
	}
	r.RecordError("old")
	r.RecordBatch("old", "1", []int64{int64(2 * time.Millisecond)}, 0, 0)
	if st := r.Snapshot("old"); st.Count != 2 || st.Errors != 1 || st.P50 < int64(2*time.Millisecond) {
		t.Fatalf("revived stats %+v", st)
	}
}

// TestStatsMemoryPerModel: 10^5 models seen once, then idle while a few
// models keep serving, cost at most 2 KiB each (issue 14's budget).
func TestStatsMemoryPerModel(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 10^5 models")
	}
	perModel := statsBytesPerModel(100_000)
	t.Logf("stats: %.0f bytes per model ever seen (10^5 models, aged)", perModel)
	if perModel > 2048 {
		t.Fatalf("%.0f bytes per model, want ≤ 2048", perModel)
	}
}

// BenchmarkStatsMemoryPerModel reports the same figure as a metric.
func BenchmarkStatsMemoryPerModel(b *testing.B) {
	for range b.N {
		b.ReportMetric(statsBytesPerModel(100_000), "bytes/model")
	}
}

// statsBytesPerModel touches n models, lets them age past statsIdle while a
// handful stay busy (the busy ones' record calls compact the idle ones), and
// returns the heap growth per model ever seen.
func statsBytesPerModel(n int) float64 {
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	r, clock := newTestRegistry()
	ds := []int64{int64(time.Millisecond), int64(3 * time.Millisecond)}
	for i := range n {
		// the id strings count: the registry keeps them as keys
		r.RecordBatch(fmt.Sprintf("model-%06d", i), "1", ds, 0, 1<<20)
	}
	clock.advance(statsIdle + time.Minute)
	for i := 0; i < n/compactPerCall+1; i++ {
		r.RecordBatch(fmt.Sprintf("model-%06d", i%10), "1", ds, 0, 1<<20)
	}
	grown := heap() - base
	runtime.KeepAlive(r)
	return float64(grown) / float64(n)
}
