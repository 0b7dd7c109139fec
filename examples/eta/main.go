// Command eta is the seed's ETA-as-a-service case end to end: it trains one
// model per freight lane with train.py (Debian's /usr/bin/python3), pushes
// them into a directory store, serves them on an embedded member, and
// predicts the transit time of every lane's example shipment through the
// SDK, next to the simulated truth.
//
// The models are XGBoost boosters served natively by the xgboost runtime
// (package modelhost/trees: no Python at serving time) when Debian's
// python3-xgboost is installed; -model sklearn trains sklearn
// GradientBoostingRegressors served by the Python worker instead (the
// python runtime), which is also what happens without python3-xgboost.
//
//	go run ./examples/eta [-lanes 20] [-store DIR] [-model xgboost|sklearn]
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
	_ "github.com/manta-ml/manta/modelhost/trees" // the xgboost runtime (native)
	_ "github.com/manta-ml/manta/pyworker"        // the python runtime (-model sklearn)
)

type lanes struct {
	Lanes []struct {
		ID      string `json:"id"`
		Runtime string `json:"runtime"` // as train.py's --model: xgboost or sklearn
		Example struct {
			Features []float64 `json:"features"`
		} `json:"example"`
		ExampleHours float64 `json:"example_hours"`
		// ExamplePredicted is the training library's own prediction for
		// the example: what Manta must answer (to float32 precision).
		ExamplePredicted float64 `json:"example_predicted"`
	} `json:"lanes"`
}

func main() {
	n := flag.Int("lanes", 20, "lanes (one model each) to train and serve")
	storeDir := flag.String("store", "", "model store directory (default: a temporary one)")
	python := flag.String("python", pythonDefault(), "Python interpreter with numpy and xgboost or sklearn")
	kind := flag.String("model", "auto", "xgboost (served natively), sklearn (served by the Python worker), or auto: xgboost when the interpreter has it")
	flag.Parse()
	if err := run(*n, *storeDir, *python, *kind); err != nil {
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

func run(n int, storeDir, python, kind string) error {
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
	cmd := exec.Command(python, filepath.Join(filepath.Dir(self), "train.py"), "--out", trained, "--lanes", fmt.Sprint(n), "--model", kind)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("train with %s: %v\n%s(make setup installs python3-xgboost and python3-sklearn)", python, err, out)
	}

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
	how := "each loaded once into a Python worker"
	if len(idx.Lanes) > 0 && idx.Lanes[0].Runtime == "xgboost" {
		how = "XGBoost, each loaded once by the native xgboost runtime"
	}
	fmt.Printf("trained %d lane models (%s) in %v\n", len(idx.Lanes), idx.Lanes[0].Runtime, time.Since(t0).Round(time.Millisecond))
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
	fmt.Printf("%d predictions (cold: %s) in %v\n\n", len(results), how, time.Since(t1).Round(time.Millisecond))
	fmt.Printf("%-12s %10s %10s %8s  %s\n", "lane", "predicted", "simulated", "error", "served by")
	var sumErr float64
	for i, r := range results {
		var out struct {
			Prediction float64 `json:"prediction"`
		}
		if err := json.Unmarshal(r.Output, &out); err != nil {
			return fmt.Errorf("%s: %s: %w", r.Model, r.Output, err)
		}
		if lib := idx.Lanes[i].ExamplePredicted; math.Abs(out.Prediction-lib) > 1e-5*math.Max(1, math.Abs(lib)) {
			return fmt.Errorf("%s: served %v, the library predicted %v", r.Model, out.Prediction, lib)
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
