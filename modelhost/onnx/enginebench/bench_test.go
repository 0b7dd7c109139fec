// Package enginebench measures the candidate ONNX engines on one model,
// the MLP of ../testdata/mlp.onnx (32 float32 features, Gemm 32×64, Relu,
// Gemm 64×3, Softmax): latency at batch 1 and rows/s at batch 64. It is a
// module of its own so that the engines Manta did not choose stay out of
// Manta's go.mod. Run it with
//
//	cd modelhost/onnx/enginebench && go test -run '^$' -bench . -count 3
//	cd onnxgo && go test -run '^$' -bench . -count 3
//
// Manta's figures include parsing each row's JSON and writing each answer
// (the whole Model.Predict); the other engines get their input tensor
// ready-made and their outputs are not read, so the comparison is
// conservative for Manta. On a shared machine read cpu-ns/op and
// cpu-rows/s (CPU time of the process, which other load does not change)
// rather than the wall-clock columns.
package enginebench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/advancedclimatesystems/gonnx"
	"gorgonia.org/tensor"

	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/modelhost/onnx"
)

const (
	modelFile = "../testdata/mlp.onnx"
	nfeat     = 32
)

var batches = []int{1, 64}

// features is row r of the benchmark's inputs.
func features(r int) []float32 {
	x := make([]float32, nfeat)
	for j := range x {
		x[j] = float32((r*7+j*3)%11)/5 - 1
	}
	return x
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs body b.N times and reports rows/s by the wall clock, and by
// CPU time (cpu-rows/s: rows per second of one core) with the CPU time per
// operation (cpu-ns/op): other load on a shared machine changes the wall
// clock, not these.
func measure(b *testing.B, batch int, body func() error) {
	c0 := cpuTime()
	for b.Loop() {
		if err := body(); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - c0
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(b.N*batch)/cpu.Seconds(), "cpu-rows/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func BenchmarkManta(b *testing.B) {
	buf, err := os.ReadFile(modelFile)
	if err != nil {
		b.Fatal(err)
	}
	m, err := onnx.Parse(buf, "", 64)
	if err != nil {
		b.Fatal(err)
	}
	for _, bs := range batches {
		in := make([]modelhost.Input, bs)
		for r := range in {
			p := []byte(`{"features":[`)
			for j, x := range features(r) {
				if j > 0 {
					p = append(p, ',')
				}
				p = strconv.AppendFloat(p, float64(x), 'g', -1, 32)
			}
			in[r].Payload = append(p, "]}"...)
		}
		b.Run(fmt.Sprint("batch", bs), func(b *testing.B) {
			measure(b, bs, func() error {
				out, err := m.Predict(context.Background(), in)
				if err == nil {
					err = out[0].Err
				}
				return err
			})
		})
	}
}

func BenchmarkGonnx(b *testing.B) {
	buf, err := os.ReadFile(modelFile)
	if err != nil {
		b.Fatal(err)
	}
	m, err := gonnx.NewModelFromBytes(buf)
	if err != nil {
		b.Fatal(err)
	}
	for _, bs := range batches {
		var x []float32
		for r := range bs {
			x = append(x, features(r)...)
		}
		b.Run(fmt.Sprint("batch", bs), func(b *testing.B) {
			measure(b, bs, func() error {
				in := tensor.New(tensor.WithShape(bs, nfeat), tensor.WithBacking(append([]float32(nil), x...)))
				_, err := m.Run(gonnx.Tensors{"x": in})
				return err
			})
		})
	}
}
