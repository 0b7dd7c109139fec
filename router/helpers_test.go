package router

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/testenv"
)

// linear is a real Dispatcher for the tests: every model id names a linear
// model y = b + w·x whose coefficients derive from the id; an id starting
// with "missing" is not_found. Latency, a hook and the count of concurrent
// calls make backpressure and failures observable.
type linear struct {
	latency time.Duration
	hook    func(ctx context.Context, req *api.PredictRequest) *api.PredictResponse // non-nil answer wins

	calls   atomic.Int64
	running atomic.Int64
	maxRun  atomic.Int64
}

func coefficients(model string) (w [2]float64, b float64) {
	h := fnv.New32a()
	h.Write([]byte(model))
	v := h.Sum32()
	return [2]float64{float64(v%7) + 1, float64(v/7%5) - 2}, float64(v % 11)
}

// predictLinear is the model: it is also how tests compute expected output.
func predictLinear(model string, x [2]float64) string {
	w, b := coefficients(model)
	y := b + w[0]*x[0] + w[1]*x[1]
	return `{"prediction":` + strconv.FormatFloat(y, 'g', -1, 64) + `}`
}

func (l *linear) Do(ctx context.Context, req *api.PredictRequest) *api.PredictResponse {
	l.calls.Add(1)
	n := l.running.Add(1)
	defer l.running.Add(-1)
	for {
		m := l.maxRun.Load()
		if n <= m || l.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	if l.latency > 0 {
		t := time.NewTimer(l.latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &api.PredictResponse{RequestId: req.RequestId, ModelId: req.ModelId,
				Error: api.ErrorFrom(ctx.Err())}
		}
	}
	if l.hook != nil {
		if resp := l.hook(ctx, req); resp != nil {
			return resp
		}
	}
	resp := &api.PredictResponse{RequestId: req.RequestId, ModelId: req.ModelId, ModelVersion: "1", ServedBy: "test-member"}
	if strings.HasPrefix(req.ModelId, "missing") {
		resp.Error = api.NewError(api.ErrorCode_ERROR_CODE_NOT_FOUND, "model %s not found", req.ModelId)
		return resp
	}
	x, ok := parseFeatures(req.Payload)
	if !ok {
		resp.Error = api.NewError(api.ErrorCode_ERROR_CODE_BAD_INPUT, "want {\"features\": [x1, x2]}")
		return resp
	}
	resp.Output = []byte(predictLinear(req.ModelId, x))
	return resp
}

// parseFeatures reads {"features":[x1,x2]} without reflection, as the
// linear runtime's own scanner does (encoding/json would be most of the
// benchmark's cost); anything else falls back to encoding/json.
func parseFeatures(p []byte) (x [2]float64, ok bool) {
	s := string(p)
	if rest, found := strings.CutPrefix(s, `{"features":[`); found {
		if body, found := strings.CutSuffix(rest, "]}"); found {
			a, b, found := strings.Cut(body, ",")
			x0, err0 := strconv.ParseFloat(a, 64)
			x1, err1 := strconv.ParseFloat(b, 64)
			if found && err0 == nil && err1 == nil {
				return [2]float64{x0, x1}, true
			}
		}
	}
	var in struct{ Features []float64 }
	if err := json.Unmarshal(p, &in); err != nil || len(in.Features) != 2 {
		return x, false
	}
	return [2]float64{in.Features[0], in.Features[1]}, true
}

// speculating adds the optional Speculator ability to linear: it answers
// with the first model of the list.
type speculating struct{ *linear }

func (s speculating) SpeculateRequest(ctx context.Context, strategy string, models []string, req *api.PredictRequest) *api.PredictResponse {
	r := &api.PredictRequest{ModelId: models[0], RequestId: req.RequestId, Payload: req.Payload,
		ContentType: req.ContentType, Deadline: req.Deadline}
	resp := s.Do(ctx, r)
	resp.ServedBy = strategy
	return resp
}

var (
	_ Dispatcher = (*linear)(nil)
	_ Speculator = speculating{}
)

// env is one test's Redis and a client on it.
type env struct {
	t     *testing.T
	redis *testenv.Redis
	rdb   *redis.Client
}

func newEnv(t *testing.T, opts ...testenv.RedisOption) *env {
	t.Helper()
	rd := testenv.StartRedis(t, opts...)
	opt, err := redis.ParseURL(rd.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1 // the tests' own calls must not hide what they test
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return &env{t: t, redis: rd, rdb: rdb}
}

// testConfig is a config for fast tests: short block, idle and deadlines.
func (e *env) testConfig(consumer string) Config {
	c := DefaultConfig()
	c.URL = e.redis.URL(0)
	c.Consumer = consumer
	c.Block = 100 * time.Millisecond
	c.MinIdle = 2 * time.Second
	c.MaxDeadline = time.Second
	c.DefaultDeadline = time.Second
	c.RetryMin = 20 * time.Millisecond
	c.RetryMax = 500 * time.Millisecond
	c.Logger = slog.New(slog.NewTextHandler(testWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// running is a router under test.
type running struct {
	*Router
	cancel context.CancelFunc
	done   chan error
}

// start runs a router; cleanup shuts it down gracefully.
func (e *env) start(cfg Config, d Dispatcher) *running {
	e.t.Helper()
	r, err := New(cfg, d)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rr := &running{Router: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx) }()
	e.t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = r.Shutdown(sctx)
		cancel()
	})
	return rr
}

// kill stops a router the hard way and waits for Run to return.
func (rr *running) kill(t *testing.T) {
	t.Helper()
	rr.cancel()
	select {
	case <-rr.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// request is the fields of a good entry for request n.
func request(n int, models int) map[string]interface{} {
	return map[string]interface{}{
		FieldModel:   fmt.Sprintf("m-%d", n%models),
		FieldID:      "r-" + strconv.Itoa(n),
		FieldPayload: fmt.Sprintf(`{"features":[%d,1.5]}`, n),
	}
}

// produce XADDs requests from..to-1 to stream, pipelined.
func (e *env) produce(stream string, from, to, models int) {
	e.t.Helper()
	ctx := context.Background()
	for lo := from; lo < to; lo += 1000 {
		pipe := e.rdb.Pipeline()
		for n := lo; n < min(lo+1000, to); n++ {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: request(n, models)})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			e.t.Fatalf("produce: %v", err)
		}
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, timeout, what, cond)
}

func (e *env) xlen(stream string) int64 {
	n, err := e.rdb.XLen(context.Background(), stream).Result()
	if err != nil {
		return -1
	}
	return n
}

// all reads a whole stream.
func (e *env) all(stream string) []redis.XMessage {
	e.t.Helper()
	var out []redis.XMessage
	start := "-"
	for {
		msgs, err := e.rdb.XRangeN(context.Background(), stream, start, "+", 10000).Result()
		if err != nil {
			e.t.Fatalf("XRANGE %s: %v", stream, err)
		}
		out = append(out, msgs...)
		if len(msgs) < 10000 {
			return out
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// pending is the number of entries pending in the group on stream.
func (e *env) pending(stream, group string) int64 {
	e.t.Helper()
	p, err := e.rdb.XPending(context.Background(), stream, group).Result()
	if err != nil {
		e.t.Fatalf("XPENDING: %v", err)
	}
	return p.Count
}

// checkResults verifies that the result stream answers every request in
// [0, n) correctly, and returns how many duplicates it holds.
func (e *env) checkResults(stream string, n, models int) (dups int) {
	e.t.Helper()
	seen := make(map[string]int, n)
	for _, m := range e.all(stream) {
		id, _ := m.Values[FieldID].(string)
		seen[id]++
		if seen[id] > 1 {
			dups++
			continue
		}
		k, err := strconv.Atoi(strings.TrimPrefix(id, "r-"))
		if err != nil || k < 0 || k >= n {
			e.t.Errorf("result for unknown id %q", id)
			continue
		}
		model := fmt.Sprintf("m-%d", k%models)
		if m.Values[FieldModel] != model || m.Values[FieldError] != "" ||
			m.Values[FieldOutput] != predictLinear(model, [2]float64{float64(k), 1.5}) {
			e.t.Errorf("result %s = %v", id, m.Values)
		}
		for _, f := range []string{FieldVersion, FieldLatencyUS, FieldServedBy} {
			if _, ok := m.Values[f]; !ok {
				e.t.Errorf("result %s lacks %s", id, f)
			}
		}
	}
	missing := 0
	for k := 0; k < n; k++ {
		if seen["r-"+strconv.Itoa(k)] == 0 {
			missing++
		}
	}
	if missing > 0 {
		e.t.Errorf("%d of %d requests have no result", missing, n)
	}
	return dups
}
