package manta_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/manta-ml/manta/modelhost"
)

// The SDK overhead benchmarks: Predict+Get through the model actor against
// calling the same linear model's Predict directly, in the same run.
//
//	go test -run '^$' -bench 'Linear' -benchtime 2s .

var benchPayload = []byte(`{"features":[1,2,3,4,5,6,7,8,9,10]}`)

func benchWeights() []float64 { return []float64{.1, .2, .3, .4, .5, .6, .7, .8, .9, 1} }

func BenchmarkLinearDirect(b *testing.B) {
	root := b.TempDir()
	mustLinear(b, root, "bench", "1", benchWeights(), 0)
	spec, err := os.ReadFile(filepath.Join(root, "bench", "1", "model.json"))
	if err != nil {
		b.Fatal(err)
	}
	ls, err := modelhost.ParseLinearSpec(spec)
	if err != nil {
		b.Fatal(err)
	}
	m, err := modelhost.NewLinearModel(ls)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	in := []modelhost.Input{{Payload: benchPayload}}
	b.Run("sequential", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := m.Predict(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
	b.Run("concurrent64", func(b *testing.B) {
		b.SetParallelism(64 / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			in := []modelhost.Input{{Payload: benchPayload}}
			for pb.Next() {
				if _, err := m.Predict(ctx, in); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
}

func BenchmarkLinearSDK(b *testing.B) {
	root := b.TempDir()
	mustLinear(b, root, "bench", "1", benchWeights(), 0)
	c := startMember(b, root, nil)
	ctx := context.Background()
	model := c.Model("bench")
	if _, err := model.Predict(ctx, benchPayload).Get(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := model.Predict(ctx, benchPayload).Get(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
	b.Run("concurrent64", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(64 / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := model.Predict(ctx, benchPayload).Get(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
}
