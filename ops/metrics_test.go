package ops_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/manta-ml/manta/actors"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/ops"
)

// value sums the samples of a gathered metric family whose labels include
// labels (a histogram counts its sample count); ok is false when none does.
func value(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	found := false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				sum, found = sum+m.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				sum, found = sum+m.GetGauge().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				sum, found = sum+float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return sum, found
}

// waitValue polls until the sample equals want: hooks that run on other
// goroutines (a load's, a batch's) may report just after the caller got
// its answer.
func waitValue(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		v, ok := value(t, g, name, labels)
		if ok && v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v (present %v), want %v", name, labels, v, ok, want)
		}
		<-tick.C
	}
}

func mustValue(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := value(t, g, name, labels)
	if !ok {
		t.Fatalf("no sample of %s%v", name, labels)
	}
	return v
}

// TestMetricsFollowRequests: known requests to a real member move the
// per-model and per-member metrics by known amounts.
func TestMetricsFollowRequests(t *testing.T) {
	e := newEnv(t, func(root string) {
		linear(t, root, "m1", "1", []float64{1, 2}, 0)
		linear(t, root, "m2", "1", []float64{3}, 1)
	})
	reg := e.m.Registry()
	for i := range 5 {
		e.predict(t, "m1", fmt.Sprintf("[%d,1]", i))
	}
	e.predict(t, "m2", "[1]")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A wrong feature count: the model answers bad_input for that row.
	if _, err := e.c.Model("m1").Predict(ctx, []byte(`{"features":[1]}`)).Get(ctx); !errors.Is(err, api.ErrBadInput) {
		t.Fatalf("wrong feature count: %v", err)
	}
	m1 := map[string]string{"model": "m1"}
	for name, want := range map[string]float64{
		"manta_model_requests_total":             6,
		"manta_model_request_duration_seconds":   6,
		"manta_model_activations_total":          1,
		"manta_member_activations_active":        -1, // checked below
		"manta_model_errors_total":               1,
		"manta_model_batch_size":                 -1,
		"manta_model_predict_duration_seconds":   -1,
		"manta_member_model_memory_budget_bytes": 64 << 20,
	} {
		labels := m1
		switch name {
		case "manta_model_errors_total":
			labels = map[string]string{"model": "m1", "code": "bad_input"}
		case "manta_member_activations_active", "manta_member_model_memory_budget_bytes":
			labels = nil
		}
		got := mustValue(t, reg, name, labels)
		if want >= 0 && got != want {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}
	if v := mustValue(t, reg, "manta_model_requests_total", map[string]string{"model": "m2"}); v != 1 {
		t.Errorf("m2 requests %v, want 1", v)
	}
	if v := mustValue(t, reg, "manta_member_activations_active", nil); v != 2 {
		t.Errorf("active activations %v, want 2", v)
	}
	if v := mustValue(t, reg, "manta_member_models_loaded", nil); v != 2 {
		t.Errorf("models loaded %v, want 2", v)
	}
	if v := mustValue(t, reg, "manta_member_models_pinned", nil); v != 2 {
		t.Errorf("models pinned %v, want 2 (both actors active)", v)
	}
	if v := mustValue(t, reg, "manta_model_memory_bytes", m1); v <= 0 {
		t.Errorf("m1 memory %v", v)
	}
	if v := mustValue(t, reg, "manta_member_info", map[string]string{"member": e.c.MemberName()}); v != 1 {
		t.Errorf("member info %v", v)
	}

	// The exposition is served, and lints clean (Prometheus naming rules).
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `manta_model_requests_total{model="m1",version="1"} 6`) {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, body)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetricsCardinalityCap: past the cap, models share the "other" series.
func TestMetricsCardinalityCap(t *testing.T) {
	m, err := ops.NewMetrics(ops.WithMaxModels(2), ops.WithoutRuntimeMetrics())
	if err != nil {
		t.Fatal(err)
	}
	batch, errh := m.BatchHook(), m.ErrorHook()
	for _, id := range []string{"a", "b", "c", "d", "a@2", "b"} {
		batch(actors.BatchReport{Model: id, Version: "1", Size: 2, Predict: time.Millisecond,
			Durations: []time.Duration{time.Millisecond, 2 * time.Millisecond}, Codes: []string{"", "internal"}})
	}
	errh("d", "overloaded")
	errh("a", "made-up-code")
	reg := m.Registry()
	for model, want := range map[string]float64{"a": 5, "b": 4, "other": 5} {
		if v := mustValue(t, reg, "manta_model_requests_total", map[string]string{"model": model}); v != want {
			t.Errorf("requests{model=%s} = %v, want %v", model, v, want)
		}
	}
	if _, ok := value(t, reg, "manta_model_requests_total", map[string]string{"model": "c"}); ok {
		t.Error("model c has its own series past the cap")
	}
	if v := mustValue(t, reg, "manta_model_errors_total", map[string]string{"model": "other", "code": "overloaded"}); v != 1 {
		t.Errorf("other overloaded %v", v)
	}
	if v := mustValue(t, reg, "manta_model_errors_total", map[string]string{"model": "a", "code": "internal"}); v != 3 {
		t.Errorf("a internal %v, want 3 (2 batches + 1 unknown code)", v)
	}
	if got := m.ModelLabel("zzz"); got != ops.OtherModel {
		t.Errorf("label past the cap %q", got)
	}
	if got := m.ModelLabel("b@7"); got != "b" {
		t.Errorf("replica label %q", got)
	}
	if _, err := ops.NewMetrics(ops.WithLatencyBuckets([]float64{1, 1})); err == nil {
		t.Error("non-increasing buckets accepted")
	}
}

// TestMetricsCacheHook: a real cache over a directory store reports
// loads (with durations), evictions, hits and failed loads.
func TestMetricsCacheHook(t *testing.T) {
	m, err := ops.NewMetrics(ops.WithoutRuntimeMetrics())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	weights := make([]float64, 80_000) // 640 KB measured: two do not fit a 1 MiB budget
	for _, id := range []string{"a", "b"} {
		if err := modelgen.Linear(root, id, "1", weights, 0, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := modelgen.Linear(root, "broken", "1", []float64{1}, 0, ""); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := modelhost.OpenStore(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := modelhost.NewCache(store, modelhost.CacheConfig{BudgetBytes: 1 << 20, FetchDir: t.TempDir(), OnEvent: m.CacheHook()})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	if err := m.AttachMember(nil, cache); err != nil {
		t.Fatal(err)
	}
	if err := m.AttachMember(nil, cache); !errors.Is(err, ops.ErrAttached) {
		t.Fatalf("second attach: %v", err)
	}
	acquire := func(id string) error {
		man, err := store.Manifest(ctx, id, "1")
		if err != nil {
			return err
		}
		l, err := cache.Acquire(ctx, man)
		if err != nil {
			return err
		}
		l.Release()
		return nil
	}
	for _, id := range []string{"a", "a", "b"} {
		if err := acquire(id); err != nil {
			t.Fatal(err)
		}
	}
	// Change "broken"'s file after its manifest was written: the sha256
	// check fails the load.
	if err := os.WriteFile(filepath.Join(root, "broken", "1", "model.json"), []byte(`{"weights":[2],"bias":0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := acquire("broken"); !errors.Is(err, api.ErrLoadFailed) {
		t.Fatalf("broken load: %v", err)
	}
	reg := m.Registry()
	checks := []struct {
		name  string
		model string
		want  float64
	}{
		{"manta_model_loads_total", "a", 1},
		{"manta_model_loads_total", "b", 1},
		{"manta_model_load_duration_seconds", "a", 1},
		{"manta_model_cache_hits_total", "a", 1},
		{"manta_model_evictions_total", "a", 1},
		{"manta_model_load_failures_total", "broken", 1},
	}
	for _, c := range checks {
		waitValue(t, reg, c.name, map[string]string{"model": c.model}, c.want)
	}
	for name, want := range map[string]float64{
		"manta_member_cache_loads_total":         2,
		"manta_member_cache_evictions_total":     1,
		"manta_member_cache_load_failures_total": 1,
		"manta_member_models_loaded":             1,
		"manta_member_model_memory_budget_bytes": 1 << 20,
	} {
		if v := mustValue(t, reg, name, nil); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if _, ok := value(t, reg, "manta_member_activations_active", nil); ok {
		t.Error("host gauges exported without a host")
	}
}

// TestMetricsQueueDepthAndRegister: the extension points.
func TestMetricsQueueDepthAndRegister(t *testing.T) {
	m, err := ops.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AttachMember(nil, nil, ops.WithQueueDepth(func() int { return 7 })); err != nil {
		t.Fatal(err)
	}
	lag := prometheus.NewGauge(prometheus.GaugeOpts{Name: "manta_stream_lag_entries", Help: "test"})
	if err := m.Register(lag); err != nil {
		t.Fatal(err)
	}
	lag.Set(3)
	if v := mustValue(t, m.Registry(), "manta_member_queue_depth_requests", nil); v != 7 {
		t.Errorf("queue depth %v", v)
	}
	if v := mustValue(t, m.Registry(), "manta_stream_lag_entries", nil); v != 3 {
		t.Errorf("registered gauge %v", v)
	}
	if _, ok := value(t, m.Registry(), "go_goroutines", nil); !ok {
		t.Error("no Go runtime metrics by default")
	}
}
