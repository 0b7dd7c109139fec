package manta_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/modelhost"
)

// BenchmarkSpeculate measures what a collector costs: each iteration makes
// one plain Predict and one speculative request of the same linear model(s),
// interleaved so both see the same machine, and reports their mean times
// and the difference (overhead-µs) beside ns/op (the pair).
//
//	go test -run '^$' -bench Speculate -benchtime 3s .
func BenchmarkSpeculate(b *testing.B) {
	root := b.TempDir()
	mustLinear(b, root, "bench", "1", benchWeights(), 0)
	mustLinear(b, root, "bench2", "1", benchWeights(), 0)
	c := startMember(b, root, nil)
	ctx := context.Background()
	model := c.Model("bench")
	for _, tc := range []struct {
		name     string
		strategy string
		models   []string
	}{
		{"first-success/1-model", "first-success", []string{"bench"}},
		{"deadline-fallback/2-models", "deadline-fallback", []string{"bench", "bench2"}},
	} {
		if _, err := c.Speculate(ctx, tc.strategy, tc.models, benchPayload).Get(ctx); err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var plain, spec time.Duration
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if _, err := model.Predict(ctx, benchPayload).Get(ctx); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := c.Speculate(ctx, tc.strategy, tc.models, benchPayload).Get(ctx); err != nil {
					b.Fatal(err)
				}
				spec += time.Since(t1)
				plain += t1.Sub(t0)
			}
			n := float64(b.N) * 1e3
			b.ReportMetric(float64(plain)/n, "predict-µs")
			b.ReportMetric(float64(spec)/n, "speculate-µs")
			b.ReportMetric(float64(spec-plain)/n, "overhead-µs")
		})
	}
}

// tailModel is a Go model whose p99 is about ten times its p50: 97% of
// calls take ~2 ms (lognormal), 3% straggle for 20-40 ms.
func init() {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(7, 7))
	sample := func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		if rng.Float64() < 0.03 {
			return 20*time.Millisecond + time.Duration(rng.Int64N(int64(20*time.Millisecond)))
		}
		return time.Duration(float64(2*time.Millisecond) * math.Exp(0.2*rng.NormFloat64()))
	}
	modelhost.RegisterFunc("spec-tail", func(context.Context, *modelhost.Manifest, string) (modelhost.Model, error) {
		return modelhost.NewFuncModel(func(ctx context.Context, in []modelhost.Input) ([]modelhost.Output, error) {
			t := time.NewTimer(sample()) // simulated model latency
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			out := make([]modelhost.Output, len(in))
			for i := range in {
				out[i].Payload = []byte(`{"prediction":1}`)
			}
			return out, nil
		}, 1<<20), nil
	})
}

// BenchmarkSpeculateHedgedTail is "The Tail at Scale" through real actors:
// a single Predict against hedged (a backup call after the model's live
// p95, as its model actor measured it) on a model whose p99 is ~10× its
// p50, interleaved. It reports p50/p99/p99.9 of both, the p99 and p99.9
// reductions (single ÷ hedged) and the extra calls. Quantiles need many
// iterations:
//
//	go test -run '^$' -bench SpeculateHedgedTail -benchtime 3000x .
func BenchmarkSpeculateHedgedTail(b *testing.B) {
	defer manta.SetCandidateStatsTTL(500 * time.Millisecond)()
	root := b.TempDir()
	if err := modelgen.Func(root, "tail", "1", "spec-tail", 1<<20, modelhost.Batch{MaxSize: 1}); err != nil {
		b.Fatal(err)
	}
	c := startMember(b, root, func(cfg *manta.Config) { cfg.MaxInflightBatches = 16 })
	ctx := context.Background()
	model := c.Model("tail")
	for i := 0; i < 300; i++ { // live stats for the hedging delay
		if _, err := model.Predict(ctx, benchPayload).Get(ctx); err != nil {
			b.Fatal(err)
		}
	}
	waitFor(b, 10*time.Second, func() bool {
		if _, err := c.Speculate(ctx, "test-probe", []string{"tail"}, benchPayload).Get(ctx); err != nil {
			b.Fatal(err)
		}
		return lastProbe()[0].Latency.Count > 0
	}, "live stats of the tail model")
	before := strategyStats(c, "hedged")
	b.ResetTimer()
	single := make([]time.Duration, 0, b.N)
	hedged := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := model.Predict(ctx, benchPayload).Get(ctx); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := c.Speculate(ctx, "hedged", []string{"tail"}, benchPayload).Get(ctx); err != nil {
			b.Fatal(err)
		}
		single = append(single, t1.Sub(t0))
		hedged = append(hedged, time.Since(t1))
	}
	b.StopTimer()
	after := strategyStats(c, "hedged")
	q := func(ds []time.Duration, p float64) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))]) / 1e6
	}
	b.ReportMetric(q(single, 0.5), "single-p50-ms")
	b.ReportMetric(q(single, 0.99), "single-p99-ms")
	b.ReportMetric(q(single, 0.999), "single-p99.9-ms")
	b.ReportMetric(q(hedged, 0.5), "hedged-p50-ms")
	b.ReportMetric(q(hedged, 0.99), "hedged-p99-ms")
	b.ReportMetric(q(hedged, 0.999), "hedged-p99.9-ms")
	b.ReportMetric(q(single, 0.99)/q(hedged, 0.99), "p99÷")
	b.ReportMetric(q(single, 0.999)/q(hedged, 0.999), "p99.9÷")
	calls := after.Calls - before.Calls
	reqs := after.Requests - before.Requests
	b.ReportMetric(100*float64(calls-reqs)/float64(max(1, reqs)), "%extra")
}
