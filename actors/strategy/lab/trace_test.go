package lab

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTrace writes a trace of n requests: "slow" right 95% of the time in
// 20 ms, "fast" right 80% of the time in 2 ms (failing 1%).
func writeTrace(t *testing.T, n int) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	var b strings.Builder
	for i := range n {
		label := rng.IntN(2)
		ans := func(acc float64) int {
			if rng.Float64() < acc {
				return label
			}
			return 1 - label
		}
		fast := fmt.Sprintf(`{"latency_ms":%.3f,"output":{"label":%d}}`, 1.5+rng.Float64(), ans(0.8))
		if i%100 == 0 {
			fast = `{"latency_ms":2.5,"error":"overloaded"}`
		}
		fmt.Fprintf(&b, `{"label":%d,"models":{"slow":{"latency_ms":%.3f,"output":{"label":%d}},"fast":%s}}`+"\n",
			label, 18+4*rng.Float64(), ans(0.95), fast)
	}
	p := filepath.Join(t.TempDir(), "trace.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReplayTrace: a recorded trace with labels replays exactly: each
// model's accuracy over the labels is its live quality for the
// strategies, each strategy's accuracy and latency come from the recorded
// answers and times.
func TestReplayTrace(t *testing.T) {
	path := writeTrace(t, 2000)
	cfg, err := ParseFlags([]string{"-trace", path, "-deadline", "50ms",
		"-trial", "slow=first-success:slow", "-trial", "fast=first-success:fast",
		"-trial", "best=best-quality:fast,slow", "-trial", "fb=deadline-fallback:slow,fast?fallback_at=10ms"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Requests != 2000 || len(cfg.Models) != 2 {
		t.Fatalf("config from the trace: %d requests, models %+v", cfg.Requests, cfg.Models)
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]Row{}
	for _, r := range rep.Rows {
		rows[r.Label] = r
	}
	acc := map[string]float64{}
	for _, m := range rep.Models {
		acc[m.Model.Name] = m.Model.Accuracy
	}
	// a single model's run is its recorded accuracy over the labels
	if s := rows["slow"]; s.Accuracy != acc["slow"] || s.Accuracy < 0.93 || s.P50 < 18e6 || s.P50 > 22e6 {
		t.Errorf("slow: %+v (model accuracy %v)", s, acc["slow"])
	}
	if f := rows["fast"]; f.Errors != 20 || f.Accuracy < 0.77 || f.Accuracy > 0.83 {
		t.Errorf("fast: %+v", f)
	}
	// best-quality ranks by the live quality from the labels: slow's answers
	if b := rows["best"]; b.Accuracy != rows["slow"].Accuracy || b.Wins["slow"] != 2000 {
		t.Errorf("best-quality: %+v", b)
	}
	var out strings.Builder
	_ = rep.Print(&out)
	for _, want := range []string{"accuracy", "slow", "fast", "best"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	for _, bad := range []string{`{"label":2,"models":{"a":{"latency_ms":1,"output":{}}}}`, `{"label":0,"models":{}}`,
		`{"label":0,"models":{"a":{"latency_ms":1}}}`, `nope`} {
		if _, err := ReadTrace(strings.NewReader(bad)); err == nil {
			t.Errorf("trace %q accepted", bad)
		}
	}
	if _, err := ParseFlags([]string{"-trace", path}, os.Stderr); err == nil || !strings.Contains(err.Error(), "-trial") {
		t.Errorf("-trace without trials: %v", err)
	}
}

func FuzzReadTrace(f *testing.F) {
	f.Add([]byte(`{"label":1,"models":{"a":{"latency_ms":3,"output":{"label":1}}}}` + "\n"))
	f.Add([]byte(`{"label":0,"models":{"a":{"latency_ms":3,"error":"overloaded"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ReadTrace(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, r := range tr {
			if (r.Label != 0 && r.Label != 1) || len(r.Models) == 0 {
				t.Fatalf("accepted %+v", r)
			}
		}
		traceModels(tr) // never panics on an accepted trace
	})
}
