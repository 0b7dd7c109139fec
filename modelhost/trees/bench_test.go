package trees_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/modelhost/trees"
	"github.com/manta-ml/manta/pyworker"
)

// benchFixture is BenchmarkXGBoost's model (100 trees of depth 6, 20
// features), loaded by the native runtime and by a Python worker, with
// xgboost's in-process inplace_predict times measured on the same machine
// just before.
type benchFixture struct {
	native, worker modelhost.Model
	rows           [][]byte // 64 request payloads
	timing         struct {
		Default struct {
			SingleNS  float64 `json:"single_ns"`
			Batch64NS float64 `json:"batch64_ns"`
		} `json:"default"`
		OneThread struct {
			SingleNS  float64 `json:"single_ns"`
			Batch64NS float64 `json:"batch64_ns"`
		} `json:"1thread"`
		XGBoost string `json:"xgboost"`
	}
}

var (
	benchOnce sync.Once
	bench     *benchFixture
	benchErr  string
)

func loadBench(b *testing.B) *benchFixture {
	b.Helper()
	py := testenv.PythonWith(b, "numpy", "xgboost")
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "manta-xgboost-bench-")
		if err != nil {
			benchErr = err.Error()
			return
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		var stderr bytes.Buffer
		cmd := exec.Command(py, filepath.Join("testdata", "xgboost_bench.py"), dir)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			benchErr = "train: " + err.Error() + ": " + stderr.String()
			return
		}
		fx := &benchFixture{}
		readJSON(b, filepath.Join(dir, "timing.json"), &fx.timing)
		var rows [][]float64
		readJSON(b, filepath.Join(dir, "rows.json"), &rows)
		for _, r := range rows {
			fx.rows = append(fx.rows, row(r))
		}
		m := &modelhost.Manifest{ID: "bench", Version: "1", Runtime: "xgboost", Format: "xgboost", Entrypoint: "model.json"}
		rt, _ := modelhost.LookupRuntime(trees.XGBoostRuntimeName)
		m.Format = ""
		if fx.native, err = rt.Load(context.Background(), m, dir); err != nil {
			benchErr = err.Error()
			return
		}
		sup, err := pyworker.New(pyworker.Config{Python: py, Workers: 1})
		if err != nil {
			benchErr = err.Error()
			return
		}
		cleanups = append(cleanups, func() { sup.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		pm := *m
		pm.Runtime, pm.Format = pyworker.RuntimeName, "xgboost"
		if fx.worker, err = sup.Load(ctx, &pm, dir); err != nil {
			benchErr = "python worker: " + err.Error()
			return
		}
		bench = fx
	})
	if benchErr != "" {
		b.Fatal(benchErr)
	}
	return bench
}

// BenchmarkXGBoost serves one XGBoost model (100 trees of depth 6, 20
// features) natively and through the Python worker (runtime python, format
// xgboost: a Go call, a frame to the worker process, numpy, xgboost,
// back), one request and a batch of 64 JSON requests at a time, and
// reports xgboost's own inplace_predict on the same rows, timed in-process
// by testdata/xgboost_bench.py in the same run. The last sub-benchmark
// reports the ratios: native single-request speed-up over the worker
// (goal ≥ 20), native batch-64 rows/s over inplace_predict's (goal ≥ 0.5).
//
//	go test ./modelhost/trees -run '^$' -bench XGBoost
func BenchmarkXGBoost(b *testing.B) {
	fx := loadBench(b)
	ctx := context.Background()
	one := inputs(fx.rows[0])
	batch := inputs(fx.rows...)
	perOp := map[string]float64{} // ns per call, from the sub-benchmarks' own timing
	run := func(name string, m modelhost.Model, in []modelhost.Input) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := m.Predict(ctx, in)
				if err != nil || out[0].Err != nil {
					b.Fatal(err, out[0].Err)
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			perOp[name] = ns
			if len(in) > 1 {
				b.ReportMetric(float64(len(in))*1e9/ns, "rows/s")
			}
		})
	}
	run("native/single", fx.native, one)
	run("native/batch64", fx.native, batch)
	run("python-worker/single", fx.worker, one)
	run("python-worker/batch64", fx.worker, batch)
	b.Run("xgboost-inplace", func(b *testing.B) {
		for b.Loop() { // the figures are the Python script's
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(fx.timing.Default.SingleNS, "single-ns")
		b.ReportMetric(64e9/fx.timing.Default.Batch64NS, "batch64-rows/s")
		b.ReportMetric(fx.timing.OneThread.SingleNS, "1thread-single-ns")
		b.ReportMetric(64e9/fx.timing.OneThread.Batch64NS, "1thread-batch64-rows/s")
	})
	b.Run("ratios", func(b *testing.B) {
		for b.Loop() {
		}
		b.ReportMetric(0, "ns/op")
		if w, n := perOp["python-worker/single"], perOp["native/single"]; w > 0 && n > 0 {
			b.ReportMetric(w/n, "single-speedup-vs-worker")
		}
		if n := perOp["native/batch64"]; n > 0 {
			b.ReportMetric(fx.timing.Default.Batch64NS/n, "batch64-vs-inplace")
			b.ReportMetric(fx.timing.OneThread.Batch64NS/n, "batch64-vs-inplace-1thread")
		}
		if w, n := perOp["python-worker/batch64"], perOp["native/batch64"]; w > 0 && n > 0 {
			b.ReportMetric(w/n, "batch64-speedup-vs-worker")
		}
	})
}
