package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/internal/bytesize"
	"github.com/manta-ml/manta/internal/latency"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/modelhost"
)

// cmdDemo generates linear models of very different sizes, serves them on
// the embedded default (one member, local provider, a model directory) with
// a memory budget small enough that evictions happen, runs a Zipf workload
// over them and prints what happened.
func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", ".demo", "working directory (models are generated under DIR/models)")
	nModels := fs.Int("models", 1000, "number of linear models to generate")
	nReq := fs.Int("requests", 20000, "requests to send")
	conc := fs.Int("concurrency", 32, "concurrent callers")
	budgetS := fs.String("budget", "", "model memory budget (default: a quarter of the models' total)")
	idle := fs.Duration("idle", 2*time.Second, "idle timeout of model actors")
	seed := fs.Uint64("seed", 1, "random seed")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	if *nModels < 1 || *nReq < 1 || *conc < 1 {
		return usagef("demo: --models, --requests and --concurrency must be positive")
	}
	root := filepath.Join(*dir, "models")
	fmt.Fprintf(stdout, "manta demo: %d linear models (10 to 1,000,000 features) in %s\n", *nModels, root)
	models, err := demoModels(root, *nModels, *seed, stdout)
	if err != nil {
		return err
	}
	trained := demoTrained(root, *dir, stdout)
	var total int64
	for _, m := range models {
		total += m.mem
	}
	budget := total / 4
	if *budgetS != "" {
		if budget, err = bytesize.Parse(*budgetS); err != nil {
			return usagef("--budget: %v", err)
		}
	}
	cfg := manta.DefaultConfig()
	cfg.Store = root
	cfg.BudgetBytes = budget
	cfg.IdleTimeout = *idle
	cfg.FetchDir = filepath.Join(*dir, "fetch")
	ctx := context.Background()
	c, err := manta.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	fmt.Fprintf(stdout, "member %s: budget %s for %s of models (embedded, cluster local)\n",
		c.MemberName(), formatBytes(budget), formatBytes(total))

	// Zipf(1.1) popularity over a random permutation of the models.
	rng := rand.New(rand.NewPCG(*seed, 7))
	perm := rng.Perm(len(models))
	zipf := rand.NewZipf(rand.New(rand.NewPCG(*seed, 9)), 1.1, 1, uint64(len(models)-1))
	picks := make([]int, *nReq)
	for i := range picks {
		picks[i] = perm[zipf.Uint64()]
		if len(trained) > 0 && rng.IntN(50) == 0 {
			picks[i] = -1 - rng.IntN(len(trained)) // a trained ETA model
		}
	}
	payloads := sync.Map{}
	payloadFor := func(m demoModel) []byte {
		if p, ok := payloads.Load(m.id); ok {
			return p.([]byte)
		}
		var b bytes.Buffer
		b.Grow(12 + 2*m.features)
		b.WriteString(`{"features":[`)
		for i := 0; i < m.features; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('1')
		}
		b.WriteString("]}")
		payloads.Store(m.id, b.Bytes())
		return b.Bytes()
	}

	var next, done, failed, wrong, pyDone, xgbDone atomic.Int64
	lat := make([]time.Duration, *nReq)
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(picks)) {
					return
				}
				if picks[i] < 0 {
					pm := trained[-1-picks[i]]
					t0 := time.Now()
					res, err := c.Model(pm.id).Predict(ctx, pm.payload).Get(ctx)
					lat[i] = time.Since(t0)
					if pm.runtime == "xgboost" {
						xgbDone.Add(1)
					} else {
						pyDone.Add(1)
					}
					var out struct {
						Prediction *float64 `json:"prediction"`
					}
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					} else if json.Unmarshal(res.Output, &out) != nil || out.Prediction == nil ||
						math.Abs(*out.Prediction-pm.want) > 1e-5*math.Max(1, math.Abs(pm.want)) { // float32 for XGBoost
						wrong.Add(1)
					}
					done.Add(1)
					continue
				}
				m := models[picks[i]]
				t0 := time.Now()
				res, err := c.Model(m.id).Predict(ctx, payloadFor(m)).Get(ctx)
				lat[i] = time.Since(t0)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					var out struct {
						Prediction float64 `json:"prediction"`
					}
					if json.Unmarshal(res.Output, &out) != nil || math.Abs(out.Prediction-m.want) > 1e-6*math.Max(1, math.Abs(m.want)) {
						wrong.Add(1)
					}
				}
				done.Add(1)
			}
		}()
	}
	stopBar := make(chan struct{})
	barDone := make(chan struct{})
	go func() {
		defer close(barDone)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopBar:
				drawBar(stderr, done.Load(), int64(*nReq), time.Since(start))
				fmt.Fprintln(stderr)
				return
			case <-t.C:
				drawBar(stderr, done.Load(), int64(*nReq), time.Since(start))
			}
		}
	}()
	wg.Wait()
	close(stopBar)
	<-barDone
	elapsed := time.Since(start)

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return latency.Quantile(lat, p) }
	st := c.Cache().Stats()
	hc := c.Host().Counters()
	distinct := map[int]bool{}
	for _, p := range picks {
		if p < 0 {
			continue
		}
		distinct[p] = true
	}
	fmt.Fprintf(stdout, "\nsummary\n")
	fmt.Fprintf(stdout, "  requests          %d in %v (%.0f req/s), %d models called\n", *nReq, elapsed.Round(time.Millisecond), float64(*nReq)/elapsed.Seconds(), len(distinct))
	nTrained := map[string]int{}
	for _, m := range trained {
		nTrained[m.runtime]++
	}
	if n := nTrained["python"]; n > 0 {
		fmt.Fprintf(stdout, "  python            %d requests to %d sklearn models (python runtime, one load per member)\n", pyDone.Load(), n)
	}
	if n := nTrained["xgboost"]; n > 0 {
		fmt.Fprintf(stdout, "  xgboost           %d requests to %d XGBoost models (native xgboost runtime)\n", xgbDone.Load(), n)
	}
	fmt.Fprintf(stdout, "  errors            %d (wrong predictions: %d)\n", failed.Load(), wrong.Load())
	fmt.Fprintf(stdout, "  latency           p50 %v  p99 %v  max %v\n", q(0.50).Round(time.Microsecond), q(0.99).Round(time.Microsecond), q(1).Round(time.Microsecond))
	fmt.Fprintf(stdout, "  activations       %d (deactivations %d, batches %d)\n", hc.Activations, hc.Deactivations, hc.Batches)
	fmt.Fprintf(stdout, "  loads             %d  (cache hits %d)\n", st.Loads, st.Hits)
	fmt.Fprintf(stdout, "  evictions         %d\n", st.Evictions)
	fmt.Fprintf(stdout, "  memory            high-water %s of budget %s (%.0f%%), now %s in %d models\n",
		formatBytes(st.HighWater), formatBytes(st.Budget), 100*float64(st.HighWater)/float64(st.Budget), formatBytes(st.Used), st.Models)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(stdout, "  first error       %s\n", e)
	}
	if failed.Load() > 0 || wrong.Load() > 0 {
		return fmt.Errorf("demo: %d errors, %d wrong predictions", failed.Load(), wrong.Load())
	}
	return nil
}

func drawBar(w io.Writer, done, total int64, el time.Duration) {
	pct := float64(done) / float64(total)
	n := int(pct * 30)
	rate := float64(done) / math.Max(el.Seconds(), 1e-3)
	fmt.Fprintf(w, "\r[%-30s] %6d/%d %5.1f%% %8.0f req/s", string(repeat('=', n)), done, total, 100*pct, rate)
}

type demoModel struct {
	id       string
	features int
	mem      int64
	want     float64 // prediction for all-ones features
}

// demoModels generates (or reuses) the demo's models: sizes from 10 to 10^6
// features, skewed towards small ones as real fleets are.
func demoModels(root string, n int, seed uint64, stdout io.Writer) ([]demoModel, error) {
	rng := rand.New(rand.NewPCG(seed, 3))
	models := make([]demoModel, n)
	marker := filepath.Join(root, ".demo-"+strconv.Itoa(n)+"-"+strconv.FormatUint(seed, 10))
	_, statErr := os.Stat(marker)
	reuse := statErr == nil
	var bytesWritten int64
	t0 := time.Now()
	for i := range models {
		var f int
		switch {
		case i == 0:
			f = 1_000_000
		case i == 1:
			f = 300_000
		default:
			f = int(10 * math.Pow(10, 5*math.Pow(rng.Float64(), 3)))
		}
		w := make([]float64, f)
		sum := 0.0
		for j := range w {
			w[j] = float64(rng.IntN(2001)-1000) / 1000
			sum += w[j]
		}
		bias := float64(rng.IntN(100)) / 10
		id := fmt.Sprintf("demo-%04d", i)
		models[i] = demoModel{id: id, features: f, mem: int64(f)*8 + 1024, want: sum + bias}
		if !reuse {
			if err := modelgen.Linear(root, id, "1", w, bias, "identity"); err != nil {
				return nil, err
			}
			bytesWritten += int64(f) * 6
		}
	}
	if !reuse {
		if err := os.WriteFile(marker, nil, 0o644); err != nil {
			return nil, err
		}
		fmt.Fprintf(stdout, "generated %d models (~%s) in %v\n", n, formatBytes(bytesWritten), time.Since(t0).Round(time.Millisecond))
	} else {
		fmt.Fprintf(stdout, "reusing the models generated before\n")
	}
	return models, nil
}

// trainedModel is an ETA lane model trained by examples/eta/train.py.
type trainedModel struct {
	id      string
	runtime string // "python" (sklearn) or "xgboost" (native)
	payload []byte
	want    float64 // the training library's own prediction for payload
}

// demoTrained trains ETA lane models with Debian's Python
// (examples/eta/train.py) and writes them into the demo's store: three
// sklearn models served by the Python worker when sklearn is there, and
// three XGBoost models served natively by the xgboost runtime when
// python3-xgboost is there. Without either the demo runs on linear models
// alone.
func demoTrained(root, dir string, stdout io.Writer) []trainedModel {
	python := os.Getenv("MANTA_PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	script := filepath.Join("examples", "eta", "train.py")
	if _, err := os.Stat(script); err != nil {
		return nil
	}
	var models []trainedModel
	for _, k := range []struct {
		model, prefix, runtime, modules, what, missing string
	}{
		{"sklearn", "eta", "python", "sklearn, joblib, numpy", "Python models (sklearn GradientBoostingRegressor, ETA lanes, python runtime)", "no Python with sklearn at %s: no Python models in the demo (make setup installs it)\n"},
		{"xgboost", "xgb-eta", "xgboost", "xgboost, numpy", "XGBoost models (ETA lanes, served natively by the xgboost runtime)", "no Python with xgboost at %s: no XGBoost models in the demo (make setup installs python3-xgboost)\n"},
	} {
		if err := exec.Command(python, "-c", "import "+k.modules).Run(); err != nil {
			fmt.Fprintf(stdout, k.missing, python)
			continue
		}
		ms, err := trainLanes(root, filepath.Join(dir, k.model+"-trained"), python, script, k.model, k.prefix, k.runtime)
		if err != nil {
			fmt.Fprintf(stdout, "%s models: %v; the demo goes on without them\n", k.model, err)
			continue
		}
		fmt.Fprintf(stdout, "%d %s join the workload\n", len(ms), k.what)
		models = append(models, ms...)
	}
	return models
}

// trainLanes runs train.py for three lanes into out and pushes the models
// the store does not have yet.
func trainLanes(root, out, python, script, model, prefix, runtime string) ([]trainedModel, error) {
	if b, err := exec.Command(python, script, "--out", out, "--lanes", "3", "--model", model, "--id-prefix", prefix).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("training failed: %v %s", err, b)
	}
	b, err := os.ReadFile(filepath.Join(out, "lanes.json"))
	if err != nil {
		return nil, err
	}
	var idx struct {
		Lanes []struct {
			ID      string `json:"id"`
			Example struct {
				Features []float64 `json:"features"`
			} `json:"example"`
			Predicted float64 `json:"example_predicted"`
		} `json:"lanes"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("lanes.json: %w", err)
	}
	ctx := context.Background()
	st, err := modelhost.OpenStore(ctx, root)
	if err != nil {
		return nil, err
	}
	var models []trainedModel
	for _, l := range idx.Lanes {
		if vs, _ := st.Versions(ctx, l.ID); len(vs) == 0 {
			if _, err := modelhost.Push(ctx, st, filepath.Join(out, l.ID), modelhost.PushOptions{}); err != nil {
				return nil, fmt.Errorf("push %s: %w", l.ID, err)
			}
		}
		p, _ := json.Marshal(map[string]any{"features": l.Example.Features})
		models = append(models, trainedModel{id: l.ID, runtime: runtime, payload: p, want: l.Predicted})
	}
	return models, nil
}
