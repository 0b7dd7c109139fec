// Command eta is the seed's ETA-as-a-service case end to end: it trains one
// sklearn model per freight lane with train.py (Debian's /usr/bin/python3),
// pushes them into a directory store, serves them on an embedded member with
// the python runtime, and predicts the transit time of every lane's example
// shipment through the SDK, next to the simulated truth.
//
//	go run ./examples/eta [-lanes 20] [-store DIR]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/modelhost"
	_ "github.com/manta-ml/manta/pyworker" // the python runtime
)

type lanes struct {
	Lanes []struct {
		ID      string `json:"id"`
		Example struct {
			Features []float64 `json:"features"`
		} `json:"example"`
		ExampleHours float64 `json:"example_hours"`
	} `json:"lanes"`
}

func main() {
	n := flag.Int("lanes", 20, "lanes (one model each) to train and serve")
	storeDir := flag.String("store", "", "model store directory (default: a temporary one)")
	python := flag.String("python", pythonDefault(), "Python interpreter with numpy and sklearn")
	flag.Parse()
	if err := run(*n, *storeDir, *python); err != nil {
		fmt.Fprintln(os.Stderr, "eta:", err)
		os.Exit(1)
	}
}

func pythonDefault() string {
	if p := os.Getenv("MANTA_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

func run(n int, storeDir, python string) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "manta-eta-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if storeDir == "" {
		storeDir = filepath.Join(work, "store")
	}
	_, self, _, _ := runtime.Caller(0)
	trained := filepath.Join(work, "trained")
	t0 := time.Now()
	cmd := exec.Command(python, filepath.Join(filepath.Dir(self), "train.py"), "--out", trained, "--lanes", fmt.Sprint(n))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("train with %s: %v\n%s(make setup installs python3-sklearn)", python, err, out)
	}
	fmt.Printf("trained %d lane models in %v\n", n, time.Since(t0).Round(time.Millisecond))

	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return err
	}
	store, err := modelhost.OpenStore(ctx, storeDir)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(trained, "lanes.json"))
	if err != nil {
		return err
	}
	var idx lanes
	if err := json.Unmarshal(b, &idx); err != nil {
		return err
	}
	for _, l := range idx.Lanes {
		if _, err := modelhost.Push(ctx, store, filepath.Join(trained, l.ID), modelhost.PushOptions{}); err != nil {
			return fmt.Errorf("push %s: %w", l.ID, err)
		}
	}
	cfg := manta.DefaultConfig()
	cfg.StoreImpl = store
	cfg.FetchDir = filepath.Join(work, "fetch")
	cfg.BudgetBytes = 1 << 30
	c, err := manta.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close(ctx)

	// every lane's example shipment at once: futures, then GetAll
	refs := make([]*manta.Ref, len(idx.Lanes))
	t1 := time.Now()
	for i, l := range idx.Lanes {
		payload, _ := json.Marshal(map[string]any{"features": l.Example.Features})
		refs[i] = c.Model(l.ID).Predict(ctx, payload, manta.WithTimeout(60*time.Second))
	}
	results, err := manta.GetAll(ctx, refs)
	if err != nil {
		return err
	}
	fmt.Printf("%d predictions (cold: each model loaded once into a Python worker) in %v\n\n", len(results), time.Since(t1).Round(time.Millisecond))
	fmt.Printf("%-12s %10s %10s %8s  %s\n", "lane", "predicted", "simulated", "error", "served by")
	var sumErr float64
	for i, r := range results {
		var out struct {
			Prediction float64 `json:"prediction"`
		}
		if err := json.Unmarshal(r.Output, &out); err != nil {
			return fmt.Errorf("%s: %s: %w", r.Model, r.Output, err)
		}
		want := idx.Lanes[i].ExampleHours
		sumErr += math.Abs(out.Prediction - want)
		fmt.Printf("%-12s %9.1fh %9.1fh %7.1fh  %s v%s\n", r.Model, out.Prediction, want, out.Prediction-want, r.ServedBy, r.Version)
	}
	fmt.Printf("\nmean absolute error %.1f h over %d lanes\n", sumErr/float64(len(results)), len(results))

	// warm: the same again
	t2 := time.Now()
	for i, l := range idx.Lanes {
		payload, _ := json.Marshal(map[string]any{"features": l.Example.Features})
		refs[i] = c.Model(l.ID).Predict(ctx, payload)
	}
	if _, err := manta.GetAll(ctx, refs); err != nil {
		return err
	}
	fmt.Printf("warm: %d predictions in %v\n", len(refs), time.Since(t2).Round(time.Microsecond))
	return nil
}
