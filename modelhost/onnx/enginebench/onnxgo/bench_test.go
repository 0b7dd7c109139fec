package onnxgo

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	onnxgo "github.com/owulveryck/onnx-go"
	"github.com/owulveryck/onnx-go/backend/x/gorgonnx"
	"gorgonia.org/tensor"
)

// A module of its own: onnx-go v0.5.0 needs gorgonia v0.9.4, which does not
// build against the gorgonia.org/tensor that gonnx v1.1.0 needs.

const (
	modelFile = "../../testdata/mlp.onnx"
	nfeat     = 32
)

var batches = []int{1, 64}

// features is row r of the benchmark's inputs (as in ../bench_test.go).
func features(r int) []float32 {
	x := make([]float32, nfeat)
	for j := range x {
		x[j] = float32((r*7+j*3)%11)/5 - 1
	}
	return x
}

// cpuTime and measure are ../bench_test.go's.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

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

func BenchmarkOnnxGo(b *testing.B) {
	buf, err := os.ReadFile(modelFile)
	if err != nil {
		b.Fatal(err)
	}
	for _, bs := range batches {
		var x []float32
		for r := range bs {
			x = append(x, features(r)...)
		}
		// A gorgonnx graph keeps the shapes of its first run: one model
		// per batch size.
		backend := gorgonnx.NewGraph()
		m := onnxgo.NewModel(backend)
		if err := m.UnmarshalBinary(buf); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint("batch", bs), func(b *testing.B) {
			measure(b, bs, func() error {
				in := tensor.New(tensor.WithShape(bs, nfeat), tensor.WithBacking(append([]float32(nil), x...)))
				if err := m.SetInput(0, in); err != nil {
					return err
				}
				if err := backend.Run(); err != nil {
					return err
				}
				_, err := m.GetOutputTensors()
				return err
			})
		})
	}
}
