package pyworker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
)

// inProcess drives testdata/inprocess_bench.py: the same model called by a
// pure-Python loop in one process.
type inProcess struct {
	in  io.WriteCloser
	out *bufio.Scanner
}

func startInProcess(b *testing.B, dir string, nfeat int) *inProcess {
	cmd := exec.Command(testenv.Python(b), filepath.Join("testdata", "inprocess_bench.py"), dir, strconv.Itoa(nfeat))
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
	})
	p := &inProcess{in: in, out: bufio.NewScanner(out)}
	if !p.out.Scan() || p.out.Text() != "ready" {
		b.Fatalf("inprocess_bench.py did not start: %q", p.out.Text())
	}
	return p
}

// run times n iterations of one loop (single, batch or raw).
func (p *inProcess) run(b *testing.B, loop string, n int) time.Duration {
	if _, err := fmt.Fprintf(p.in, "%s %d\n", loop, n); err != nil {
		b.Fatal(err)
	}
	if !p.out.Scan() {
		b.Fatalf("inprocess_bench.py: %v", p.out.Err())
	}
	sec, err := strconv.ParseFloat(strings.TrimSpace(p.out.Text()), 64)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(sec * float64(time.Second))
}

// sliceLen splits n operations into k nearly equal slices.
func sliceLen(n, slices, k int) int {
	return n*(k+1)/slices - n*k/slices
}

func featureDocs(n, nfeat int) []modelhost.Input {
	rng := rand.New(rand.NewPCG(1, 2))
	in := make([]modelhost.Input, n)
	for i := range in {
		var sb strings.Builder
		sb.WriteString(`{"features":[`)
		for j := 0; j < nfeat; j++ {
			if j > 0 {
				sb.WriteByte(',')
			}
			// Feature values as clients send them (distances, hours,
			// counts): a few decimals, not 17 significant digits.
			sb.WriteString(strconv.FormatFloat(rng.NormFloat64()*100, 'f', 3, 64))
		}
		sb.WriteString(`]}`)
		in[i] = modelhost.Input{Payload: []byte(sb.String())}
	}
	return in
}

// BenchmarkPredict compares the worker with the same model's predict called
// in-process by a pure-Python loop (testdata/inprocess_bench.py). Each
// sub-benchmark times b.N operations through the worker, then b.N in the
// loop, so both figures come from the same moment of a shared machine:
//
//   - single: one-row requests one after the other; µs-added/req is the
//     latency the worker adds (goal: at most 100).
//
//   - batch64/inflight=K: batches of 64 rows, K in flight at once; x-inprocess
//     is the worker's rows/s over the loop's (goal: at least 0.8).
//
//     go test -run '^$' -bench Predict -count 5 ./pyworker/
func BenchmarkPredict(b *testing.B) {
	for _, tc := range []struct {
		name  string
		nfeat int
	}{{"reg", 5}, {"gbr", 8}} {
		b.Run(tc.name, func(b *testing.B) {
			s, _ := newSupervisor(b, func(c *Config) { c.Workers = 1 })
			m, dir := sklearnModel(b, tc.name)
			mod := load(b, s, m, dir)
			base := startInProcess(b, dir, tc.nfeat)
			docs := featureDocs(64, tc.nfeat)
			ctx := context.Background()
			for i := 0; i < 200; i++ { // warm up
				if _, err := mod.Predict(ctx, docs[i&63:i&63+1]); err != nil {
					b.Fatal(err)
				}
			}

			// Each measurement alternates slices of worker and in-process
			// runs, so that a burst of load from elsewhere on the machine
			// hits both alike.
			const slices = 8
			b.Run("single", func(b *testing.B) {
				var worker, inproc time.Duration
				b.ResetTimer()
				for k := 0; k < slices; k++ {
					n := sliceLen(b.N, slices, k)
					start := time.Now()
					for i := 0; i < n; i++ {
						out, err := mod.Predict(ctx, docs[i&63:i&63+1])
						if err != nil || out[0].Err != nil {
							b.Fatal(err, out[0].Err)
						}
					}
					worker += time.Since(start)
					b.StopTimer()
					inproc += base.run(b, "single", n)
					b.StartTimer()
				}
				b.StopTimer()
				wus := float64(worker.Microseconds()) / float64(b.N)
				ius := float64(inproc.Microseconds()) / float64(b.N)
				b.ReportMetric(ius, "inproc-µs/req")
				b.ReportMetric(wus-ius, "µs-added/req")
			})

			for _, inflight := range []int{1, 4} {
				b.Run(fmt.Sprintf("batch64/inflight=%d", inflight), func(b *testing.B) {
					pid := pids(s)[0]
					pyCPU := processCPU(pid)
					var worker, inproc, workerCPU time.Duration
					b.ResetTimer()
					for k := 0; k < slices; k++ {
						n := sliceLen(b.N, slices, k)
						var next atomic.Int64
						var wg sync.WaitGroup
						start, cpu0 := time.Now(), selfCPU()
						for g := 0; g < inflight; g++ {
							wg.Add(1)
							go func() {
								defer wg.Done()
								for next.Add(1) <= int64(n) {
									if _, err := mod.Predict(ctx, docs); err != nil {
										b.Error(err)
										return
									}
								}
							}()
						}
						wg.Wait()
						worker += time.Since(start)
						workerCPU += selfCPU() - cpu0
						b.StopTimer()
						inproc += base.run(b, "batch", n)
						b.StartTimer()
					}
					b.StopTimer()
					if py := processCPU(pid); pyCPU >= 0 && py >= 0 {
						// Where the time goes: CPU per batch on each side.
						b.ReportMetric(float64((py-pyCPU).Microseconds())/float64(b.N), "py-cpu-µs/batch")
						b.ReportMetric(float64(workerCPU.Microseconds())/float64(b.N), "go-cpu-µs/batch")
					}
					rows := float64(64*b.N) / worker.Seconds()
					irows := float64(64*b.N) / inproc.Seconds()
					b.ReportMetric(rows, "rows/s")
					b.ReportMetric(irows, "inproc-rows/s")
					b.ReportMetric(rows/irows, "x-inprocess")
				})
			}
		})
	}
}
