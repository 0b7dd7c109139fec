package ops_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/manta-ml/manta/actors"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/ops"
)

// Per-model series carry the version that served, and a model keeps the
// series of its last MaxVersionsPerModel versions only: promoting a model
// many times does not grow the series without bound.
func TestMetricsVersionLabel(t *testing.T) {
	m, err := ops.NewMetrics(ops.WithoutRuntimeMetrics())
	if err != nil {
		t.Fatal(err)
	}
	batch, cache, errh := m.BatchHook(), m.CacheHook(), m.ErrorHook()
	serve := func(version string, n int) {
		cache(modelhost.CacheEvent{Kind: modelhost.EventLoad, Key: "m@" + version, ID: "m", Version: version, Duration: time.Millisecond})
		ds := make([]time.Duration, n)
		codes := make([]string, n)
		codes[0] = "bad_input"
		batch(actors.BatchReport{Model: "m@1", Version: version, Size: n, Durations: ds, Codes: codes})
	}
	serve("1", 4)
	serve("2", 2)
	reg := m.Registry()
	for _, c := range []struct {
		name    string
		version string
		want    float64
	}{
		{"manta_model_requests_total", "1", 4},
		{"manta_model_requests_total", "2", 2},
		{"manta_model_request_duration_seconds", "1", 4},
		{"manta_model_batch_size", "2", 1},
		{"manta_model_loads_total", "2", 1},
	} {
		if v, ok := value(t, reg, c.name, map[string]string{"model": "m", "version": c.version}); !ok || v != c.want {
			t.Errorf("%s{model=m,version=%s} = %v (found %v), want %v", c.name, c.version, v, ok, c.want)
		}
	}
	if v, ok := value(t, reg, "manta_model_errors_total", map[string]string{"model": "m", "version": "2", "code": "bad_input"}); !ok || v != 1 {
		t.Errorf("errors of version 2: %v %v", v, ok)
	}
	// An error before any version was resolved has an empty version.
	errh("m", "overloaded")
	if v, ok := value(t, reg, "manta_model_errors_total", map[string]string{"model": "m", "version": "", "code": "overloaded"}); !ok || v != 1 {
		t.Errorf("unversioned error: %v %v", v, ok)
	}

	for v := 3; v <= 10; v++ {
		serve(fmt.Sprint(v), 1)
	}
	for v := 1; v <= 10; v++ {
		_, ok := value(t, reg, "manta_model_requests_total", map[string]string{"model": "m", "version": fmt.Sprint(v)})
		if want := v > 10-ops.MaxVersionsPerModel; ok != want {
			t.Errorf("version %d has series: %v, want %v", v, ok, want)
		}
		if _, ok2 := value(t, reg, "manta_model_loads_total", map[string]string{"model": "m", "version": fmt.Sprint(v)}); ok2 != ok {
			t.Errorf("version %d: loads series %v, requests series %v", v, ok2, ok)
		}
	}
}
