package manta_test

import (
	"context"
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
	"github.com/manta-ml/manta/actors/strategy"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/modelhost"
)

// Models and strategies of the speculation tests.
//
// "spec-model" is a Go-function model configured by its manifest options:
// sleep (its latency; it gives up at the request's deadline unless
// ignore_ctx is set), first_sleep (the latency of its first call only: a
// straggler), output (what it answers; default the payload).
func init() {
	modelhost.RegisterFunc("spec-model", func(_ context.Context, m *modelhost.Manifest, _ string) (modelhost.Model, error) {
		sleep, _ := time.ParseDuration(m.Options["sleep"])
		first, _ := time.ParseDuration(m.Options["first_sleep"])
		ignoreCtx := m.Options["ignore_ctx"] == "true"
		output := m.Options["output"]
		var calls atomic.Int64
		return modelhost.NewFuncModel(func(ctx context.Context, in []modelhost.Input) ([]modelhost.Output, error) {
			d := sleep
			if calls.Add(1) == 1 && first > 0 {
				d = first
			}
			if d > 0 {
				t := time.NewTimer(d) // simulated model latency
				defer t.Stop()
				if ignoreCtx {
					<-t.C
				} else {
					select {
					case <-t.C:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
			}
			out := make([]modelhost.Output, len(in))
			for i, x := range in {
				out[i] = modelhost.Output{Payload: x.Payload}
				if output != "" {
					out[i].Payload = []byte(output)
				}
			}
			return out, nil
		}, 1<<20), nil
	})
	strategy.RegisterStrategy("test-panic", func(map[string]string) (strategy.Strategy, error) { return panicky{}, nil })
	strategy.RegisterStrategy("test-probe", func(map[string]string) (strategy.Strategy, error) { return &probe{}, nil })
}

// panicky launches its first candidate and panics on its result.
type panicky struct{}

func (panicky) Name() string { return "test-panic" }
func (panicky) Start(_ *strategy.Request, cands []strategy.Candidate) strategy.Plan {
	return strategy.Plan{Launches: []strategy.Launch{{Model: cands[0].Model}}}
}
func (panicky) OnEvent(strategy.Event, *strategy.Progress) strategy.Decision { panic("strategy bug") }

// probe answers with its first candidate and records the candidates it saw.
type probe struct{}

var (
	probeMu   sync.Mutex
	probeSeen []strategy.Candidate
)

func (*probe) Name() string { return "test-probe" }
func (*probe) Start(_ *strategy.Request, cands []strategy.Candidate) strategy.Plan {
	probeMu.Lock()
	probeSeen = append([]strategy.Candidate(nil), cands...)
	probeMu.Unlock()
	return strategy.Plan{Launches: []strategy.Launch{{Model: cands[0].Model}}}
}
func (*probe) OnEvent(ev strategy.Event, p *strategy.Progress) strategy.Decision {
	if ev.Kind == strategy.EventResult {
		if ev.Result.OK() {
			return strategy.Answer(ev.Result)
		}
		return strategy.Fail(ev.Result.Err)
	}
	return strategy.Wait()
}

func lastProbe() []strategy.Candidate {
	probeMu.Lock()
	defer probeMu.Unlock()
	return probeSeen
}

// specModel writes a spec-model version.
func specModel(t testing.TB, root, id, version string, opts map[string]string, q *modelhost.Quality) {
	t.Helper()
	if err := modelgen.Write(root, modelhost.Manifest{ID: id, Version: version, Runtime: "go", Entrypoint: "spec-model",
		MemoryBytes: 1 << 20, Options: opts, Quality: q}, nil); err != nil {
		t.Fatal(err)
	}
}

func specMember(t testing.TB, root string) *manta.Client {
	return startMember(t, root, func(cfg *manta.Config) { cfg.MaxInflightBatches = 8 })
}

func strategyStats(c *manta.Client, name string) manta.StrategyStats {
	for _, st := range c.SpeculationStats() {
		if st.Strategy == name {
			return st
		}
	}
	return manta.StrategyStats{Strategy: name}
}

var features3 = []byte(`{"features":[1,1,1]}`)

// The slow smart model misses the deadline: the fast linear model answers,
// by the deadline, and the result names its version.
func TestSpeculateDeadlineFallback(t *testing.T) {
	root := t.TempDir()
	specModel(t, root, "smart", "1", map[string]string{"sleep": "10s"}, nil)
	mustLinear(t, root, "fast", "3", []float64{1, 2, 3}, 0.5)
	c := specMember(t, root)
	ctx := context.Background()
	const deadline = 300 * time.Millisecond
	start := time.Now()
	res, err := c.Speculate(ctx, "deadline-fallback", []string{"smart", "fast"}, features3, manta.WithTimeout(deadline)).Get(ctx)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if res.Model != "fast" || res.Version != "3" || !res.Fallback || res.Strategy != "deadline-fallback" {
		t.Fatalf("answered by %s v%s fallback=%v strategy=%q, want fast v3 fallback by deadline-fallback", res.Model, res.Version, res.Fallback, res.Strategy)
	}
	if fmt.Sprint(res.Models, res.Versions) != "[fast] [3]" || res.Calls != 2 {
		t.Fatalf("models %v versions %v calls %d", res.Models, res.Versions, res.Calls)
	}
	if got := prediction(t, res.Output); got != 6.5 {
		t.Fatalf("prediction = %v, want 6.5", got)
	}
	// Not a speed assertion: the answer came at the deadline, not after
	// the smart model's 10 s (the slack covers a loaded machine).
	if elapsed > deadline+2*time.Second {
		t.Fatalf("answered after %v, deadline %v", elapsed, deadline)
	}
	st := strategyStats(c, "deadline-fallback")
	if st.Requests != 1 || st.Fallbacks != 1 || st.Wins["fast"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// When the smart model is in time, it answers.
func TestSpeculateDeadlineFallbackSmartInTime(t *testing.T) {
	root := t.TempDir()
	specModel(t, root, "smart", "2", map[string]string{"output": `{"prediction":42}`}, nil)
	mustLinear(t, root, "fast", "1", []float64{1, 2, 3}, 0)
	c := specMember(t, root)
	ctx := context.Background()
	res, err := c.Speculate(ctx, "deadline-fallback", []string{"smart", "fast"}, features3, manta.WithTimeout(10*time.Second)).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Model != "smart" || res.Version != "2" || res.Fallback || prediction(t, res.Output) != 42 {
		t.Fatalf("answered by %s v%s fallback=%v output %s", res.Model, res.Version, res.Fallback, res.Output)
	}
}

// A straggler's first call is hedged: the backup answers, one hedge fired.
func TestSpeculateHedged(t *testing.T) {
	root := t.TempDir()
	specModel(t, root, "svc", "1", map[string]string{"first_sleep": "10s", "output": `{"prediction":1}`}, nil)
	c := specMember(t, root)
	ctx := context.Background()
	res, err := c.Speculate(ctx, "hedged", []string{"svc"}, features3,
		manta.WithParams(map[string]string{"delay": "20ms"}), manta.WithTimeout(5*time.Second)).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Model != "svc" || res.Calls != 2 || res.Hedges != 1 {
		t.Fatalf("answered by %s with %d calls, %d hedges; want svc, 2, 1", res.Model, res.Calls, res.Hedges)
	}
	if st := strategyStats(c, "hedged"); st.Hedges != 1 || st.Calls != 2 || st.Wins["svc"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A failing model does not stop first-success: the other one answers.
func TestSpeculateFirstSuccess(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "broken", "1", []float64{1, 2}, 0) // 3 features: bad_input
	specModel(t, root, "ok", "4", map[string]string{"sleep": "30ms", "output": `{"prediction":7}`}, nil)
	c := specMember(t, root)
	ctx := context.Background()
	res, err := c.Speculate(ctx, "first-success", []string{"broken", "ok"}, features3).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Model != "ok" || res.Version != "4" || prediction(t, res.Output) != 7 {
		t.Fatalf("answered by %s v%s: %s", res.Model, res.Version, res.Output)
	}
	// Every model failing fails the request with their error.
	_, err = c.Speculate(ctx, "first-success", []string{"broken"}, features3).Get(ctx)
	if !errors.Is(err, manta.ErrBadInput) {
		t.Fatalf("all failing: err = %v, want ErrBadInput", err)
	}
}

// Two of three models agree: the vote names them, with the agreement share.
func TestSpeculateMajorityVote(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "a", "1", []float64{1, 2, 3}, 0)
	mustLinear(t, root, "b", "5", []float64{3, 2, 1}, 0)
	mustLinear(t, root, "c", "1", []float64{1, 1, 1}, 0)
	c := specMember(t, root)
	ctx := context.Background()
	res, err := c.Speculate(ctx, "majority-vote", []string{"a", "b", "c"}, features3).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if prediction(t, res.Output) != 6 || len(res.Models) != 2 || res.Fallback {
		t.Fatalf("vote: %s by %v fallback=%v", res.Output, res.Models, res.Fallback)
	}
	got := map[string]string{}
	for i, m := range res.Models {
		got[m] = res.Versions[i]
	}
	if got["a"] != "1" || got["b"] != "5" {
		t.Fatalf("vote named %v %v, want a v1 and b v5", res.Models, res.Versions)
	}
	if res.Confidence <= 0.5 || res.Confidence > 1 {
		t.Fatalf("confidence %v", res.Confidence)
	}
}

// A result that comes after the answer is dropped and counted as late.
func TestSpeculateLateResultsCounted(t *testing.T) {
	root := t.TempDir()
	specModel(t, root, "smart", "1", map[string]string{"sleep": "400ms", "ignore_ctx": "true"}, nil)
	mustLinear(t, root, "fast", "1", []float64{1, 2, 3}, 0)
	c := specMember(t, root)
	ctx := context.Background()
	res, err := c.Speculate(ctx, "deadline-fallback", []string{"smart", "fast"}, features3, manta.WithTimeout(100*time.Millisecond)).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Model != "fast" || !res.Fallback {
		t.Fatalf("answered by %s fallback=%v", res.Model, res.Fallback)
	}
	waitFor(t, 10*time.Second, func() bool { return strategyStats(c, "deadline-fallback").Late >= 1 }, "the smart model's late result counted")
}

// A request no strategy can answer in time ends at its deadline.
func TestSpeculateDeadlineExceeded(t *testing.T) {
	root := t.TempDir()
	specModel(t, root, "slow", "1", map[string]string{"sleep": "10s"}, nil)
	c := specMember(t, root)
	ctx := context.Background()
	start := time.Now()
	_, err := c.Speculate(ctx, "first-success", []string{"slow"}, features3, manta.WithTimeout(150*time.Millisecond)).Get(ctx)
	if !errors.Is(err, manta.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want ErrDeadlineExceeded", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("ended after %v, not at its deadline", time.Since(start))
	}
	if st := strategyStats(c, "first-success"); st.DeadlineExceeded != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSpeculateBadInput(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "lin", "1", []float64{1, 2, 3}, 0)
	c := specMember(t, root)
	ctx := context.Background()
	cases := []struct {
		name     string
		strategy string
		models   []string
		opts     []manta.Option
	}{
		{"unknown strategy", "no-such-strategy", []string{"lin"}, nil},
		{"zero models", "first-success", nil, nil},
		{"empty models", "first-success", []string{}, nil},
		{"invalid model id", "first-success", []string{"Bad/ID"}, nil},
		{"repeated model", "first-success", []string{"lin", "lin"}, nil},
		{"bad param", "hedged", []string{"lin"}, []manta.Option{manta.WithParams(map[string]string{"at": "p42"})}},
		{"unknown param", "first-success", []string{"lin"}, []manta.Option{manta.WithParams(map[string]string{"nope": "1"})}},
		{"param naming no candidate", "deadline-fallback", []string{"lin", "lin@1"}, []manta.Option{manta.WithParams(map[string]string{"smart": "other"})}},
		{"version pin", "first-success", []string{"lin"}, []manta.Option{manta.WithVersion("1")}},
	}
	for _, tc := range cases {
		_, err := c.Speculate(ctx, tc.strategy, tc.models, features3, tc.opts...).Get(ctx)
		if !errors.Is(err, manta.ErrBadInput) {
			t.Errorf("%s: err = %v, want ErrBadInput", tc.name, err)
		}
	}
	_, err := c.Model("lin").Predict(ctx, features3, manta.WithParams(map[string]string{"k": "2"})).Get(ctx)
	if !errors.Is(err, manta.ErrBadInput) {
		t.Errorf("Predict WithParams: err = %v, want ErrBadInput", err)
	}
}

// A panicking strategy fails its request with internal; the next works.
func TestSpeculatePanickingStrategy(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "lin", "1", []float64{1, 2, 3}, 0)
	c := specMember(t, root)
	ctx := context.Background()
	_, err := c.Speculate(ctx, "test-panic", []string{"lin"}, features3).Get(ctx)
	if !errors.Is(err, manta.ErrInternal) {
		t.Fatalf("err = %v, want ErrInternal", err)
	}
	if _, err := c.Speculate(ctx, "first-success", []string{"lin"}, features3).Get(ctx); err != nil {
		t.Fatal(err)
	}
}

// The router's path: a request message in, a response message out.
func TestSpeculateRequest(t *testing.T) {
	root := t.TempDir()
	specModel(t, root, "smart", "1", map[string]string{"sleep": "10s"}, nil)
	mustLinear(t, root, "fast", "2", []float64{1, 2, 3}, 0)
	c := specMember(t, root)
	ctx := context.Background()
	req := &api.PredictRequest{RequestId: "r-1", Payload: features3,
		Deadline: time.Now().Add(200 * time.Millisecond).UnixNano()}
	resp := c.SpeculateRequest(ctx, "deadline-fallback", []string{"smart", "fast"}, req)
	if resp.Error != nil {
		t.Fatal(resp.Error.Err())
	}
	if resp.RequestId != "r-1" || resp.ModelId != "fast" || resp.ModelVersion != "2" || resp.Strategy != "deadline-fallback" ||
		!resp.Fallback || resp.Calls != 2 || fmt.Sprint(resp.Models) != "[fast]" {
		t.Fatalf("response %v", resp)
	}
	resp = c.SpeculateRequest(ctx, "nope", []string{"fast"}, &api.PredictRequest{RequestId: "r-2", Payload: features3})
	if resp.Error.GetCode() != api.ErrorCode_ERROR_CODE_BAD_INPUT || resp.RequestId != "r-2" || resp.ModelId != "fast" {
		t.Fatalf("unknown strategy: %v", resp)
	}
}

// Strategies see the models' manifest quality at once and their live
// latency stats once the model actors have some.
func TestSpeculateCandidates(t *testing.T) {
	defer manta.SetCandidateStatsTTL(0)()
	root := t.TempDir()
	specModel(t, root, "good", "7", map[string]string{"sleep": "2ms"}, &modelhost.Quality{Metric: "accuracy", Value: 0.93})
	specModel(t, root, "err", "1", nil, &modelhost.Quality{Metric: "mae_minutes", Value: 41.5})
	c := specMember(t, root)
	ctx := context.Background()
	if _, err := c.Speculate(ctx, "test-probe", []string{"good", "err"}, features3).Get(ctx); err != nil {
		t.Fatal(err)
	}
	seen := lastProbe()
	if len(seen) != 2 || seen[0].Model != "good" || !seen[0].HasQuality || seen[0].Quality != 0.93 || !seen[0].HigherIsBetter ||
		seen[0].Version != "7" || !seen[1].HasQuality || seen[1].HigherIsBetter {
		t.Fatalf("candidates %+v", seen)
	}
	waitFor(t, 10*time.Second, func() bool {
		if _, err := c.Speculate(ctx, "test-probe", []string{"good", "err"}, features3).Get(ctx); err != nil {
			t.Fatal(err)
		}
		l := lastProbe()[0].Latency
		return l.Count > 0 && l.P50 > 0 && l.P95 >= l.P50 && l.P99 >= l.P95
	}, "live latency stats of the model")
}

// A Connect-less embedded client that closes completes speculative refs.
func TestSpeculateAfterClose(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "lin", "1", []float64{1, 2, 3}, 0)
	c := specMember(t, root)
	ctx := context.Background()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := c.Speculate(ctx, "first-success", []string{"lin"}, features3).Get(ctx)
	if !errors.Is(err, manta.ErrInternal) {
		t.Fatalf("err = %v, want ErrInternal (client closed)", err)
	}
}

// The member's /metrics shows model requests and speculative counters.
func TestMetricsEndpointCountsSpeculation(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "mfast", "1", []float64{1}, 0)
	mustLinear(t, root, "mslow", "1", []float64{2}, 0)
	c := startMember(t, root, func(cfg *manta.Config) { cfg.HTTPAddr = "127.0.0.1:0" })
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := c.Speculate(ctx, "first-success", []string{"mfast", "mslow"}, []byte(`{"features":[1]}`)).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// the per-model counters are recorded after the answers are sent: poll
	var body string
	wants := []string{`manta_speculative_requests_total{strategy="first-success"} 3`, `manta_model_requests_total{model="mfast",version=`}
	waitFor(t, 10*time.Second, func() bool {
		resp, err := http.Get("http://" + c.HTTPAddr() + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		for _, want := range wants {
			if !strings.Contains(body, want) {
				return false
			}
		}
		return true
	}, "speculative and model counters in /metrics")
}
