package manta_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/modelhost"
)

// Go-function models used by the tests.
var (
	countLoads  atomic.Int64
	batchMu     sync.Mutex
	batchSizes  []int
	slowDelay   = 40 * time.Millisecond
	echoPredict = func(_ context.Context, in []modelhost.Input) ([]modelhost.Output, error) {
		out := make([]modelhost.Output, len(in))
		for i, x := range in {
			out[i] = modelhost.Output{Payload: x.Payload}
		}
		return out, nil
	}
)

func init() {
	modelhost.RegisterFunc("test-counted", func(ctx context.Context, m *modelhost.Manifest, dir string) (modelhost.Model, error) {
		countLoads.Add(1)
		time.Sleep(100 * time.Millisecond) // a slow load, so concurrent requests pile up on it
		return modelhost.NewFuncModel(echoPredict, 1<<20), nil
	})
	modelhost.RegisterFunc("test-slow-batch", func(ctx context.Context, m *modelhost.Manifest, dir string) (modelhost.Model, error) {
		return modelhost.NewFuncModel(func(ctx context.Context, in []modelhost.Input) ([]modelhost.Output, error) {
			batchMu.Lock()
			batchSizes = append(batchSizes, len(in))
			batchMu.Unlock()
			time.Sleep(slowDelay) // the model's own compute time
			return echoPredict(ctx, in)
		}, 1<<20), nil
	})
	modelhost.RegisterFunc("test-panic", func(ctx context.Context, m *modelhost.Manifest, dir string) (modelhost.Model, error) {
		return modelhost.NewFuncModel(func(ctx context.Context, in []modelhost.Input) ([]modelhost.Output, error) {
			for _, x := range in {
				if string(x.Payload) == `"boom"` {
					panic("model exploded")
				}
			}
			return echoPredict(ctx, in)
		}, 1<<20), nil
	})
	modelhost.RegisterFunc("test-sleep", func(ctx context.Context, m *modelhost.Manifest, dir string) (modelhost.Model, error) {
		d, _ := time.ParseDuration(m.Options["sleep"])
		return modelhost.NewFuncModel(func(ctx context.Context, in []modelhost.Input) ([]modelhost.Output, error) {
			select {
			case <-time.After(d): // simulated model latency
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return echoPredict(ctx, in)
		}, 1<<20), nil
	})
}

func writeFunc(t testing.TB, root, id, fn string, mem int64, batch modelhost.Batch) {
	t.Helper()
	if err := modelgen.Func(root, id, "1", fn, mem, batch); err != nil {
		t.Fatal(err)
	}
}

func writeSleep(t testing.TB, root, id string, d time.Duration) {
	t.Helper()
	if err := modelgen.Write(root, modelhost.Manifest{ID: id, Version: "1", Runtime: "go", Entrypoint: "test-sleep",
		MemoryBytes: 1 << 20, Options: map[string]string{"sleep": d.String()}}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestSingleFlightColdRequests(t *testing.T) {
	root := t.TempDir()
	writeFunc(t, root, "counted", "test-counted", 1<<20, modelhost.Batch{})
	c := startMember(t, root, nil)
	ctx := context.Background()
	before := countLoads.Load()
	refs := make([]*manta.Ref, 100)
	var wg sync.WaitGroup
	for i := range refs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			refs[i] = c.Model("counted").Predict(ctx, []byte(fmt.Sprintf(`{"i":%d}`, i)))
		}(i)
	}
	wg.Wait()
	res, err := manta.GetAll(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if want := fmt.Sprintf(`{"i":%d}`, i); string(r.Output) != want {
			t.Fatalf("result %d = %s, want %s (GetAll keeps input order)", i, r.Output, want)
		}
	}
	if n := countLoads.Load() - before; n != 1 {
		t.Fatalf("100 concurrent cold requests caused %d loads, want 1", n)
	}
	if st := c.Cache().Stats(); st.Loads != 1 {
		t.Fatalf("cache counted %d loads, want 1", st.Loads)
	}
}

func TestMicroBatching(t *testing.T) {
	root := t.TempDir()
	writeFunc(t, root, "batchy", "test-slow-batch", 1<<20, modelhost.Batch{MaxSize: 32, MaxWaitMS: 5})
	c := startMember(t, root, func(cfg *manta.Config) { cfg.MaxInflightBatches = 1 })
	ctx := context.Background()
	if _, err := c.Model("batchy").Predict(ctx, []byte(`1`)).Get(ctx); err != nil {
		t.Fatal(err)
	}
	batchMu.Lock()
	batchSizes = nil
	batchMu.Unlock()
	refs := make([]*manta.Ref, 200)
	for i := range refs {
		refs[i] = c.Model("batchy").Predict(ctx, []byte(`2`))
	}
	res, err := manta.GetAll(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	maxSeen := 0
	for _, r := range res {
		maxSeen = max(maxSeen, r.BatchSize)
	}
	batchMu.Lock()
	sizes := append([]int(nil), batchSizes...)
	batchMu.Unlock()
	total, biggest := 0, 0
	for _, s := range sizes {
		total += s
		biggest = max(biggest, s)
	}
	t.Logf("200 requests ran in %d batches, sizes %v", len(sizes), sizes)
	if total != 200 {
		t.Fatalf("batches held %d requests, want 200", total)
	}
	if biggest < 2 || maxSeen < 2 || len(sizes) >= 200 {
		t.Fatalf("no batching: %d batches, largest %d", len(sizes), biggest)
	}
	if biggest > 32 {
		t.Fatalf("batch of %d exceeds max_size 32", biggest)
	}
}

func TestPanickingModelReturnsInternal(t *testing.T) {
	root := t.TempDir()
	writeFunc(t, root, "fragile", "test-panic", 1<<20, modelhost.Batch{MaxSize: 1})
	c := startMember(t, root, nil)
	ctx := context.Background()
	_, err := c.Model("fragile").Predict(ctx, []byte(`"boom"`)).Get(ctx)
	if !errors.Is(err, manta.ErrInternal) {
		t.Fatalf("err = %v, want ErrInternal", err)
	}
	res, err := c.Model("fragile").Predict(ctx, []byte(`"fine"`)).Get(ctx)
	if err != nil || string(res.Output) != `"fine"` {
		t.Fatalf("after a panic: %v %v", res, err)
	}
}

func TestIdleDeactivationAndReactivation(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "sleepy", "1", []float64{1}, 0)
	c := startMember(t, root, func(cfg *manta.Config) { cfg.IdleTimeout = 150 * time.Millisecond })
	ctx := context.Background()
	if _, err := c.Model("sleepy").Predict(ctx, []byte(`{"features":[2]}`)).Get(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return len(c.Host().Active()) == 0 }, "idle deactivation")
	if d := c.Host().Counters().Deactivations; d < 1 {
		t.Fatalf("deactivations = %d", d)
	}
	// the model stays warm in the cache: no second load
	res, err := c.Model("sleepy").Predict(ctx, []byte(`{"features":[3]}`)).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := prediction(t, res.Output); got != 3 {
		t.Fatalf("prediction %v", got)
	}
	if a := c.Host().Counters().Activations; a != 2 {
		t.Fatalf("activations = %d, want 2", a)
	}
	if l := c.Cache().Stats().Loads; l != 1 {
		t.Fatalf("loads = %d, want 1 (warm in cache after deactivation)", l)
	}
}

func TestEvictionUnderBudget(t *testing.T) {
	root := t.TempDir()
	w := make([]float64, 100_000) // ~800 KB per model
	for i := range w {
		w[i] = 1
	}
	for i := 0; i < 8; i++ {
		mustLinear(t, root, fmt.Sprintf("big-%d", i), "1", w, 0)
	}
	budget := int64(3 << 20)
	c := startMember(t, root, func(cfg *manta.Config) {
		cfg.BudgetBytes = budget
		cfg.IdleTimeout = 50 * time.Millisecond
	})
	ctx := context.Background()
	payload := []byte(`{"features":[` + string(bytes.Repeat([]byte("1,"), len(w)-1)) + `1]}`)
	for round := 0; round < 2; round++ {
		for i := 0; i < 8; i++ {
			id := fmt.Sprintf("big-%d", i)
			res, err := c.Model(id).Predict(ctx, payload).Get(ctx)
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			if got := prediction(t, res.Output); got != float64(len(w)) {
				t.Fatalf("%s: prediction %v", id, got)
			}
			// let it deactivate so the cache may evict it
			waitFor(t, 10*time.Second, func() bool { return len(c.Host().Active()) == 0 }, fmt.Sprintf("deactivation of %s (active %v)", id, c.Host().Active()))
		}
	}
	st := c.Cache().Stats()
	t.Logf("cache: %+v", st)
	if st.Evictions == 0 {
		t.Fatal("no evictions under a budget smaller than the models")
	}
	if st.HighWater > budget+int64(len(w))*8+1024 {
		t.Fatalf("high water %d exceeds budget %d by more than one load", st.HighWater, budget)
	}
}

func TestTooLarge(t *testing.T) {
	root := t.TempDir()
	writeFunc(t, root, "huge", "test-counted", 1<<40, modelhost.Batch{})
	c := startMember(t, root, nil)
	ctx := context.Background()
	_, err := c.Model("huge").Predict(ctx, []byte(`1`)).Get(ctx)
	if !errors.Is(err, manta.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestWaitReturnsFirstReady(t *testing.T) {
	root := t.TempDir()
	writeSleep(t, root, "fast", 0)
	writeSleep(t, root, "slow", 2*time.Second)
	c := startMember(t, root, nil)
	ctx := context.Background()
	refs := []*manta.Ref{
		c.Model("slow").Predict(ctx, []byte(`"s1"`)),
		c.Model("fast").Predict(ctx, []byte(`"f1"`)),
		c.Model("slow").Predict(ctx, []byte(`"s2"`)),
		c.Model("fast").Predict(ctx, []byte(`"f2"`)),
	}
	ready, pending, err := manta.Wait(ctx, refs, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ready) != 2 || len(pending) != 2 {
		t.Fatalf("ready %d pending %d", len(ready), len(pending))
	}
	for _, r := range ready {
		res, err := r.Get(ctx)
		if err != nil || res.Model != "fast" {
			t.Fatalf("ready holds %v %v, want the fast model", res, err)
		}
	}
	if pending[0] != refs[0] || pending[1] != refs[2] {
		t.Fatal("pending is not the slow refs in input order")
	}
}

func TestDeadlineExceeded(t *testing.T) {
	root := t.TempDir()
	writeSleep(t, root, "slow", 2*time.Second)
	c := startMember(t, root, nil)
	ctx := context.Background()
	start := time.Now()
	_, err := c.Model("slow").Predict(ctx, []byte(`1`), manta.WithTimeout(100*time.Millisecond)).Get(ctx)
	if !errors.Is(err, manta.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want ErrDeadlineExceeded", err)
	}
	t.Logf("answered deadline_exceeded after %v (the model takes 2s)", time.Since(start))
}

func TestStatsAndReload(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "lin", "1", []float64{1}, 0)
	c := startMember(t, root, nil)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := c.Model("lin").Predict(ctx, []byte(`{"features":[1]}`)).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st, err := c.Model("lin").Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 5 || st.Version != "1" || st.Min <= 0 || st.Max < st.Min || st.Mean <= 0 || st.Since.IsZero() {
		t.Fatalf("stats %+v", st)
	}
	mustLinear(t, root, "lin", "2", []float64{10}, 0)
	v, changed, err := c.Model("lin").Reload(ctx)
	if err != nil || v != "2" || !changed {
		t.Fatalf("reload: %v %v %v", v, changed, err)
	}
	res, err := c.Model("lin").Predict(ctx, []byte(`{"features":[1]}`)).Get(ctx)
	if err != nil || res.Version != "2" || prediction(t, res.Output) != 10 {
		t.Fatalf("after reload: %+v %v", res, err)
	}
}

func TestHTTPPredict(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "lin", "1", []float64{2}, 1)
	c := startMember(t, root, func(cfg *manta.Config) { cfg.HTTPAddr = "127.0.0.1:0" })
	cases := []struct {
		model, body string
		status      int
		code        string
		ctype       string
	}{
		{"lin", `{"features":[3]}`, 200, "", "application/json"},
		{"lin", `{"features":[3,4]}`, 400, "bad_input", "application/json"},
		{"nope", `{"features":[3]}`, 404, "not_found", "application/json"},
		// curl -d's default content type, none at all, and JSON with a
		// charset all mean JSON; another explicit type keeps its meaning.
		{"lin", `{"features":[3]}`, 200, "", "application/x-www-form-urlencoded"},
		{"lin", `{"features":[3]}`, 200, "", ""},
		{"lin", `{"features":[3]}`, 200, "", "application/json; charset=utf-8"},
		{"lin", `{"features":[3]}`, 400, "bad_input", "text/csv"},
	}
	for _, tc := range cases {
		req, err := http.NewRequest("POST", "http://"+c.HTTPAddr()+"/v1/models/"+tc.model+"/predict", bytes.NewReader([]byte(tc.body)))
		if err != nil {
			t.Fatal(err)
		}
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out manta.ResponseJSON
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s %s: status %d, want %d (%+v)", tc.model, tc.body, resp.StatusCode, tc.status, out)
		}
		if tc.code == "" {
			if string(out.Output) != `{"prediction":7}` || out.ModelVersion != "1" {
				t.Fatalf("output %s version %s", out.Output, out.ModelVersion)
			}
		} else if out.Error == nil || out.Error.Code != tc.code {
			t.Fatalf("error %+v, want %s", out.Error, tc.code)
		}
	}
	// /v2 infer reads its body as JSON whatever curl -d sends as its type.
	for _, ct := range []string{"application/x-www-form-urlencoded", ""} {
		req, _ := http.NewRequest("POST", "http://"+c.HTTPAddr()+"/v2/models/lin/infer",
			strings.NewReader(`{"inputs":[{"name":"features","shape":[1,1],"datatype":"FP64","data":[3]}]}`))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"data":[7]`) {
			t.Fatalf("/v2 infer with content type %q: %d %s", ct, resp.StatusCode, b)
		}
	}
	resp, err := http.Get("http://" + c.HTTPAddr() + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st manta.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Members) != 1 {
		t.Fatalf("status %+v %v", st, err)
	}
	resp.Body.Close()
}

func TestPollingRollsOutNewVersion(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "polled", "1", []float64{1}, 0)
	c := startMember(t, root, func(cfg *manta.Config) { cfg.PollInterval = 50 * time.Millisecond })
	ctx := context.Background()
	res, err := c.Model("polled").Predict(ctx, []byte(`{"features":[1]}`)).Get(ctx)
	if err != nil || res.Version != "1" {
		t.Fatalf("%+v %v", res, err)
	}
	mustLinear(t, root, "polled", "2", []float64{5}, 0)
	waitFor(t, 10*time.Second, func() bool {
		res, err := c.Model("polled").Predict(ctx, []byte(`{"features":[1]}`)).Get(ctx)
		return err == nil && res.Version == "2" && prediction(t, res.Output) == 5
	}, "the poller to roll out version 2")
}

// A rollout under load: every request succeeds and answers switch from v1
// to v2, also when memory only holds one version (drain, then swap).
func TestRolloutUnderLoadNoErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		budget int64
	}{{"beside", 64 << 20}, {"drain-then-swap", 1200 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			w := make([]float64, 100_000) // ~800 KB: two versions do not fit in 1.2 MB
			for i := range w {
				w[i] = 1
			}
			mustLinear(t, root, "hot", "1", w, 0)
			c := startMember(t, root, func(cfg *manta.Config) { cfg.BudgetBytes = tc.budget })
			ctx := context.Background()
			payload := []byte(`{"features":[` + strings.Repeat("1,", len(w)-1) + `1]}`)
			var v1, v2, failed atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						res, err := c.Model("hot").Predict(ctx, payload).Get(ctx)
						switch {
						case err != nil:
							failed.Add(1)
							t.Errorf("request failed during rollout: %v", err)
						case res.Version == "1":
							v1.Add(1)
						case res.Version == "2":
							v2.Add(1)
						}
					}
				}()
			}
			waitFor(t, 10*time.Second, func() bool { return v1.Load() > 20 }, "v1 traffic")
			for i := range w {
				w[i] = 2
			}
			mustLinear(t, root, "hot", "2", w, 0)
			v, changed, err := c.Model("hot").Reload(ctx)
			if err != nil || v != "2" || !changed {
				t.Errorf("reload: %v %v %v", v, changed, err)
			}
			n := v2.Load()
			waitFor(t, 10*time.Second, func() bool { return v2.Load() > n+20 }, "v2 traffic")
			close(stop)
			wg.Wait()
			t.Logf("%s: v1 %d, v2 %d, failed %d", tc.name, v1.Load(), v2.Load(), failed.Load())
			if failed.Load() != 0 {
				t.Fatalf("%d requests failed", failed.Load())
			}
		})
	}
}

func TestHTTPBearerToken(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "lin", "1", []float64{2}, 1)
	for _, protect := range []bool{false, true} {
		c := startMember(t, root, func(cfg *manta.Config) {
			cfg.HTTPAddr = "127.0.0.1:0"
			cfg.HTTPToken = "s3cret-token"
			cfg.ProtectMetrics = protect
		})
		checkToken(t, c, protect)
	}
}

// checkToken checks which of the member's endpoints need the token.
func checkToken(t *testing.T, c *manta.Client, protectMetrics bool) {
	t.Helper()
	infer := `{"inputs":[{"name":"features","shape":[1],"datatype":"FP64","data":[1]}]}`
	do := func(path, auth string) int {
		method, body := "GET", ""
		switch {
		case strings.HasSuffix(path, "/infer"):
			method, body = "POST", infer
		case strings.HasSuffix(path, "/predict"):
			method, body = "POST", `{"features":[1]}`
		}
		req, _ := http.NewRequest(method, "http://"+c.HTTPAddr()+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/v1/models/lin/predict", "", 401},
		{"/v1/models/lin/predict", "Bearer wrong", 401},
		{"/v1/status", "", 401},
		{"/v1/models/lin/predict", "Bearer s3cret-token", 200},
		{"/v1/status", "Bearer s3cret-token", 200},
		{"/v2/models/lin/infer", "", 401},
		{"/v2/models/lin", "", 401},
		{"/v2/models/lin/infer", "Bearer s3cret-token", 200},
		{"/v2/health/ready", "", 200}, // probes stay open
		{"/metrics", "", map[bool]int{false: 200, true: 401}[protectMetrics]},
		{"/metrics", "Bearer s3cret-token", 200},
	} {
		if got := do(tc.path, tc.auth); got != tc.want {
			t.Errorf("protect metrics %v: %s with %q: %d, want %d", protectMetrics, tc.path, tc.auth, got, tc.want)
		}
	}
}

func TestPprofIsOptIn(t *testing.T) {
	root := t.TempDir()
	for _, on := range []bool{false, true} {
		c := startMember(t, root, func(cfg *manta.Config) { cfg.HTTPAddr = "127.0.0.1:0"; cfg.Pprof = on })
		resp, err := http.Get("http://" + c.HTTPAddr() + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: 404, true: 200}[on]; resp.StatusCode != want {
			t.Fatalf("pprof %v: status %d, want %d", on, resp.StatusCode, want)
		}
	}
}

// A payload over Config.MaxPayloadBytes is answered too_large at every
// entry point (Predict, Do, Speculate, HTTP) before it enters the cluster;
// one at the limit is served.
func TestPayloadLimit(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "lin", "1", []float64{2}, 1)
	const limit = 1024
	c := startMember(t, root, func(cfg *manta.Config) {
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.MaxPayloadBytes = limit
	})
	ctx := context.Background()
	at := []byte(`{"features":[1]}` + strings.Repeat(" ", limit-len(`{"features":[1]}`)))
	over := append(append([]byte(nil), at...), ' ')
	if _, err := c.Model("lin").Predict(ctx, at).Get(ctx); err != nil {
		t.Fatalf("a payload at the limit: %v", err)
	}
	if _, err := c.Model("lin").Predict(ctx, over).Get(ctx); !errors.Is(err, manta.ErrTooLarge) {
		t.Errorf("Predict over the limit: %v, want ErrTooLarge", err)
	}
	if r := c.Do(ctx, &api.PredictRequest{ModelId: "lin", Payload: over}); r.Error == nil || r.Error.Code != api.ErrorCode_ERROR_CODE_TOO_LARGE {
		t.Errorf("Do over the limit: %v", r.Error)
	}
	if _, err := c.Speculate(ctx, "first-success", []string{"lin"}, over).Get(ctx); !errors.Is(err, manta.ErrTooLarge) {
		t.Errorf("Speculate over the limit: %v, want ErrTooLarge", err)
	}
	for _, tc := range []struct {
		body []byte
		want int
	}{{at, 200}, {over, 413}} {
		resp, err := http.Post("http://"+c.HTTPAddr()+"/v1/models/lin/predict", "application/json", bytes.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("HTTP body of %d bytes: status %d, want %d", len(tc.body), resp.StatusCode, tc.want)
		}
	}
	cfg := manta.DefaultConfig()
	cfg.MaxPayloadBytes = -1
	if err := cfg.Validate(); err == nil {
		t.Error("a negative max_payload_bytes validated")
	}
}

// An activation stopped while its batch runs still gives its version back
// to the cache when the batch ends: after many such stops nothing is
// pinned and the whole budget is free again.
func TestStopMidBatchReleasesPinnedMemory(t *testing.T) {
	root := t.TempDir()
	writeSleep(t, root, "busy", 100*time.Millisecond)
	c := startMember(t, root, nil)
	ctx := context.Background()
	for i := 0; i < 15; i++ {
		batches := c.Host().Counters().Batches
		ref := c.Model("busy").Predict(ctx, []byte(`{"i":1}`))
		// The batch must be running (not only the model loaded): a stop
		// before it starts bounces the request, which then activates the
		// model again.
		waitFor(t, 10*time.Second, func() bool { return c.Host().Counters().Batches > batches }, "the batch to run")
		if !c.Host().Stop("busy") {
			t.Fatalf("round %d: no activation to stop", i)
		}
		if _, err := ref.Get(ctx); err != nil {
			t.Fatalf("round %d: the request running when its activation stopped: %v", i, err)
		}
		waitFor(t, 10*time.Second, func() bool {
			for _, id := range c.Host().Active() {
				if id == "busy" {
					return false
				}
			}
			return true
		}, "the activation to stop")
		waitFor(t, 10*time.Second, func() bool { return c.Cache().Stats().Pinned == 0 }, "pinned memory back to 0")
	}
	if st := c.Cache().Stats(); st.Used > st.Budget {
		t.Fatalf("used %d over budget %d", st.Used, st.Budget)
	}
}

// A Reload that activates the model (or reaches it while its first load
// runs) answers with the load's outcome: the version served, or the load's
// error; not "nothing changed" before the store was read.
func TestReloadDuringFirstLoad(t *testing.T) {
	root := t.TempDir()
	writeFunc(t, root, "slowload", "test-counted", 1<<20, modelhost.Batch{}) // its load takes 100 ms
	if err := modelgen.Write(root, modelhost.Manifest{ID: "noload", Version: "1", Runtime: "nosuchruntime", Entrypoint: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	c := startMember(t, root, nil)
	ctx := context.Background()
	v, changed, err := c.Model("slowload").Reload(ctx)
	if err != nil || v != "1" || changed {
		t.Fatalf("reload of a cold model: version %q changed %v err %v; want version 1, unchanged", v, changed, err)
	}
	if _, _, err := c.Model("noload").Reload(ctx); err == nil || !strings.Contains(err.Error(), "nosuchruntime") {
		t.Fatalf("reload of a model that cannot load: %v, want its load error", err)
	}
}
