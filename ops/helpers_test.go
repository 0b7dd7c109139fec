package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/ops"
)

// env is an embedded member (manta.Start over a temporary directory store
// of linear models) with ops metrics installed and every ops endpoint
// mounted on a test HTTP server, beside the SDK's own /v1 handler.
type env struct {
	root string
	c    *manta.Client
	m    *ops.Metrics
	s    *ops.Server
	srv  *httptest.Server
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// linear writes a linear model version (identity link).
func linear(t testing.TB, root, id, version string, w []float64, b float64) {
	t.Helper()
	if err := modelgen.Linear(root, id, version, w, b, "identity"); err != nil {
		t.Fatal(err)
	}
}

// newEnv starts the member after setup has written models into the store.
func newEnv(t testing.TB, setup func(root string), mopts ...ops.MetricsOption) *env {
	t.Helper()
	e := &env{root: t.TempDir(), logs: &syncBuffer{}}
	if setup != nil {
		setup(e.root)
	}
	cfg := manta.DefaultConfig()
	cfg.Store = e.root
	cfg.BudgetBytes = 64 << 20
	cfg.FetchDir = t.TempDir()
	cfg.PollInterval = -1
	cfg.Cluster = cluster.DefaultConfig()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := manta.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	e.c = c
	e.m, err = ops.NewMetrics(append([]ops.MetricsOption{ops.WithoutRuntimeMetrics()}, mopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	// No request has reached the member yet, so setting the host's hook
	// fields here happens before any goroutine reads them.
	e.m.InstallHost(c.Host())
	if err := e.m.AttachMember(c.Host(), c.Cache()); err != nil {
		t.Fatal(err)
	}
	logger, err := ops.NewLogger(e.logs, ops.LogConfig{Format: "json", Level: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	e.s, err = ops.NewServer(c, ops.WithMember(c.Host(), c.Cache()), ops.WithMetrics(e.m), ops.WithLogger(logger),
		ops.WithStatus(c.Status))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.s.Register(mux)
	mux.Handle("GET /v1/models/{id}", e.s.ModelHandler())
	mux.Handle("/v1/", c.Handler())
	e.srv = httptest.NewServer(ops.RequestID(logger, mux))
	t.Cleanup(e.srv.Close)
	return e
}

// do sends one HTTP request and returns the status and body.
func (e *env) do(t testing.TB, method, path, body string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// getJSON decodes a 200 answer into v.
func (e *env) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	status, body := e.do(t, http.MethodGet, path, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// predict calls the model through the SDK and returns its prediction.
func (e *env) predict(t testing.TB, id string, features string) (float64, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := e.c.Model(id).Predict(ctx, []byte(`{"features":`+features+`}`)).Get(ctx)
	if err != nil {
		t.Fatalf("predict %s %s: %v", id, features, err)
	}
	var out struct {
		Prediction float64 `json:"prediction"`
	}
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatalf("output %s: %v", res.Output, err)
	}
	return out.Prediction, res.Version
}

// quiet is a logger for tests that do not look at logs.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }
