package manta_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/manta-ml/manta"
)

// BenchmarkActivationMemory measures what an active tiny model costs a
// member beyond the model's own bytes: the live heap (after GC) and the
// goroutines that 20,000 activations of two-weight linear models add,
// each activated by one request and then left idle, less the bytes the
// cache charges for the models themselves. The baseline is the same
// member before any activation, in the same run.
//
//	go test -run '^$' -bench ActivationMemory -benchtime 1x .
func BenchmarkActivationMemory(b *testing.B) {
	const n = 20000
	root := b.TempDir()
	for i := range n {
		mustLinear(b, root, fmt.Sprintf("m%05d", i), "1", []float64{1, 2}, 0)
	}
	c := startMember(b, root, func(cfg *manta.Config) { cfg.BudgetBytes = 4 << 30; cfg.IdleTimeout = time.Hour })
	ctx := context.Background()
	heap := func() (uint64, int) {
		for range 3 {
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc, runtime.NumGoroutine()
	}
	for b.Loop() {
		h0, g0 := heap()
		var wg sync.WaitGroup
		ids := make(chan string)
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range ids {
					if _, err := c.Model(id).Predict(ctx, []byte(`{"features":[1,1]}`)).Get(ctx); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		for i := range n {
			ids <- fmt.Sprintf("m%05d", i)
		}
		close(ids)
		wg.Wait()
		h1, g1 := heap()
		models := c.Cache().Stats().Used
		b.ReportMetric(float64(int64(h1-h0)-models)/n, "heap-B/activation")
		b.ReportMetric(float64(models)/n, "model-B/activation")
		b.ReportMetric(float64(g1-g0)/n, "goroutines/activation")
	}
}
