package manta_test

import (
	"context"
	"testing"
	"time"
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
