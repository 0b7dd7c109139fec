package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/modelhost"
)

func cmdBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("bench: want sdk, placement or cluster (manta bench --help)")
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, "usage: manta bench sdk|placement|cluster [flags]\n\n"+
			"  sdk        Predict+Get through Manta against a direct call of the same model\n"+
			"  placement  the placement and cache simulator\n"+
			"  cluster    etcd, Redis and K member processes: cold/warm rates, idle CPU, failover\n\n"+
			"manta bench NAME --help shows each one's flags.\n")
		return nil
	}
	switch args[0] {
	case "sdk":
		return benchSDK(args[1:], stdout)
	case "placement":
		return benchPlacement(args[1:], stdout, stderr)
	case "cluster":
		return benchCluster(args[1:], stdout, stderr)
	}
	return usagef("bench: unknown benchmark %q", args[0])
}

// benchSDK measures Predict+Get through Manta against calling the same
// linear model directly, sequentially and with many concurrent callers.
func benchSDK(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench sdk", flag.ContinueOnError)
	dur := fs.Duration("duration", 3*time.Second, "time per measurement")
	conc := fs.Int("concurrency", 64, "concurrent callers")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "manta-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	w := []float64{.1, .2, .3, .4, .5, .6, .7, .8, .9, 1}
	if err := modelgen.Linear(root, "bench", "1", w, 0, "identity"); err != nil {
		return err
	}
	// the same model with live quality and drift on (docs/ARCHITECTURE.md §2.4)
	if err := modelgen.Write(root, modelhost.Manifest{ID: "bench-monitored", Version: "1", Runtime: "linear", Format: "linear-json",
		Entrypoint: "model.json", MemoryBytes: 4096, Monitor: true},
		map[string][]byte{"model.json": modelgen.LinearJSON(w, 0, "identity")}); err != nil {
		return err
	}
	payload := []byte(`{"features":[1,2,3,4,5,6,7,8,9,10]}`)
	m, err := modelhost.NewLinearModel(modelhost.LinearSpec{Weights: w, Link: "identity"})
	if err != nil {
		return err
	}
	ctx := context.Background()
	cfg := manta.DefaultConfig()
	cfg.Store = root
	cfg.FetchDir = root + "-fetch"
	defer os.RemoveAll(cfg.FetchDir)
	c, err := manta.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	model, monitored := c.Model("bench"), c.Model("bench-monitored")
	for _, m := range []*manta.Model{model, monitored} {
		if _, err := m.Predict(ctx, payload).Get(ctx); err != nil {
			return err
		}
	}
	direct := func() error {
		_, err := m.Predict(ctx, []modelhost.Input{{Payload: payload}})
		return err
	}
	viaSDK := func() error {
		_, err := model.Predict(ctx, payload).Get(ctx)
		return err
	}
	viaMonitored := func() error {
		_, err := monitored.Predict(ctx, payload).Get(ctx)
		return err
	}
	fmt.Fprintf(stdout, "linear model, 10 features, GOMAXPROCS=%d, %v per measurement\n", runtime.GOMAXPROCS(0), *dur)
	fmt.Fprintf(stdout, "%-28s %12s %14s\n", "", "ns/request", "requests/s")
	var rows [4]float64
	for i, r := range []struct {
		name string
		f    func() error
		n    int
	}{
		{"direct Predict, 1 caller", direct, 1},
		{"SDK Predict+Get, 1 caller", viaSDK, 1},
		{fmt.Sprintf("direct Predict, %d callers", *conc), direct, *conc},
		{fmt.Sprintf("SDK Predict+Get, %d callers", *conc), viaSDK, *conc},
	} {
		ns, rps, err := measure(r.f, r.n, *dur)
		if err != nil {
			return err
		}
		rows[i] = ns
		fmt.Fprintf(stdout, "%-28s %12.0f %14.0f\n", r.name, ns, rps)
	}
	fmt.Fprintf(stdout, "overhead per request: %.2f µs sequential (ratio %.1fx), %.2f µs per request at %d callers\n",
		(rows[1]-rows[0])/1000, rows[1]/rows[0], (rows[3]-rows[2])/1000, *conc)
	// Live quality and drift: the same model monitored (every answer kept
	// in the ring, its features in the drift histograms), measured
	// alternately with the plain one, the better of two runs each, so
	// that a neighbour's load does not fall on one side only.
	for _, n := range []int{1, *conc} {
		best := [2]float64{math.Inf(1), math.Inf(1)}
		for range 2 {
			for i, f := range []func() error{viaSDK, viaMonitored} {
				ns, _, err := measure(f, n, *dur)
				if err != nil {
					return err
				}
				best[i] = math.Min(best[i], ns)
			}
		}
		fmt.Fprintf(stdout, "%-28s %12.0f ns/request plain, %.0f monitored: %+.1f%%\n",
			fmt.Sprintf("quality on, %d caller(s)", n), best[0], best[1], 100*(best[1]/best[0]-1))
	}
	return nil
}

// measure runs f from n goroutines for d; it returns wall ns per call and calls/s.
func measure(f func() error, n int, d time.Duration) (float64, float64, error) {
	var calls atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				for k := 0; k < 64; k++ {
					if err := f(); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
				}
				calls.Add(64)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if e := firstErr.Load(); e != nil {
		return 0, 0, e.(error)
	}
	rps := float64(calls.Load()) / el.Seconds()
	return 1e9 / rps, rps, nil
}
