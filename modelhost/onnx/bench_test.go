package onnx

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/manta-ml/manta/modelhost"
	pb "github.com/manta-ml/manta/modelhost/onnx/internal/onnxpb"
)

// BenchmarkMLP measures the runtime on testdata/mlp.onnx (32 float32
// features, Gemm 32×64, Relu, Gemm 64×3, Softmax) at batch 1 and 64:
//
//   - predict: Model.Predict, JSON rows in and answers out, as a member
//     calls it;
//   - engine: the graph run alone (rows already floats);
//   - handwritten: the same MLP as plain Go loops over the same weights,
//     the floor an interpreter is measured against.
//
// The engines Manta did not choose are measured on the same file by the
// module in enginebench/ (doc.go has the figures). cpu-ns/op and
// cpu-rows/s count the process's CPU time, which other load on a shared
// machine does not change; ns/op and rows/s are the wall clock.
func BenchmarkMLP(b *testing.B) {
	buf, err := os.ReadFile(filepath.Join("testdata", "mlp.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := Parse(buf, "", 64)
	if err != nil {
		b.Fatal(err)
	}
	hw := newHandMLP(b, buf)
	for _, bs := range []int{1, 64} {
		rows := make([]float64, 0, bs*32)
		in := make([]modelhost.Input, bs)
		for r := range bs {
			p := []byte(`{"features":[`)
			for j := range 32 {
				x := float64(float32((r*7+j*3)%11)/5 - 1)
				rows = append(rows, x)
				if j > 0 {
					p = append(p, ',')
				}
				p = strconv.AppendFloat(p, x, 'g', -1, 32)
			}
			in[r].Payload = append(p, "]}"...)
		}
		b.Run(fmt.Sprintf("predict/batch%d", bs), func(b *testing.B) {
			measure(b, bs, func() {
				out, err := m.Predict(context.Background(), in)
				if err != nil || out[0].Err != nil {
					b.Fatal(err, out[0].Err)
				}
			})
		})
		b.Run(fmt.Sprintf("engine/batch%d", bs), func(b *testing.B) {
			outs := make([][]float64, 1)
			measure(b, bs, func() {
				outs[0] = outs[0][:0]
				if outs, err = m.eng.run(rows, bs, outs); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run(fmt.Sprintf("handwritten/batch%d", bs), func(b *testing.B) {
			out := make([]float32, bs*3)
			measure(b, bs, func() { hw.run(rows, bs, out) })
		})
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs body b.N times and reports rows/s by the wall clock, and by
// CPU time (cpu-rows/s: rows per second of one core) with the CPU time per
// operation (cpu-ns/op).
func measure(b *testing.B, batch int, body func()) {
	c0 := cpuTime()
	for b.Loop() {
		body()
	}
	cpu := cpuTime() - c0
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(b.N*batch)/cpu.Seconds(), "cpu-rows/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// handMLP is testdata/mlp.onnx written by hand: softmax(relu(x·W1+b1)·W2+b2).
type handMLP struct {
	w1, b1, w2, b2 []float32
	h              []float32
}

func newHandMLP(b *testing.B, buf []byte) *handMLP {
	var mp pb.ModelProto
	if err := proto.Unmarshal(buf, &mp); err != nil {
		b.Fatal(err)
	}
	w := make(map[string][]float32)
	for _, t := range mp.GetGraph().GetInitializer() {
		raw := t.GetRawData()
		v := make([]float32, len(raw)/4)
		for i := range v {
			v[i] = math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
		}
		w[t.GetName()] = v
	}
	return &handMLP{w1: w["W1"], b1: w["b1"], w2: w["W2"], b2: w["b2"], h: make([]float32, 64)}
}

func (m *handMLP) run(rows []float64, n int, out []float32) {
	for r := range n {
		x := rows[r*32 : (r+1)*32]
		h := m.h
		copy(h, m.b1)
		for k, xv := range x {
			xk := float32(xv)
			wr := m.w1[k*64 : (k+1)*64]
			for j := range h {
				h[j] += xk * wr[j]
			}
		}
		o := out[r*3 : (r+1)*3]
		copy(o, m.b2)
		for k, hv := range h {
			if hv < 0 {
				continue
			}
			wr := m.w2[k*3 : (k+1)*3]
			o[0] += hv * wr[0]
			o[1] += hv * wr[1]
			o[2] += hv * wr[2]
		}
		mx := max(o[0], o[1], o[2])
		var s float32
		for j := range o {
			o[j] = float32(math.Exp(float64(o[j] - mx)))
			s += o[j]
		}
		for j := range o {
			o[j] /= s
		}
	}
}
