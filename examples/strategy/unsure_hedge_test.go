package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/manta-ml/manta/actors/strategy"
	"github.com/manta-ml/manta/actors/strategy/lab"
	"github.com/manta-ml/manta/actors/strategy/strategytest"
)

// The same suite every built-in passes.
func TestConformance(t *testing.T) {
	strategytest.Run(t, NewUnsureHedge)
	strategytest.Run(t, NewUnsureHedge, strategytest.WithParams(map[string]string{"max": "3", "delay": "2ms", "threshold": "0.95"}))
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func start(t *testing.T) (*strategy.Session, []strategy.Action) {
	t.Helper()
	s, err := strategy.New("unsure-hedge", nil)
	if err != nil {
		t.Fatal(err)
	}
	se := strategy.NewSession(s, &strategy.Request{Deadline: t0.Add(40 * time.Millisecond)}, []strategy.Candidate{
		{Model: "fast", Version: "1"},
		{Model: "smart", Version: "2", Latency: strategy.Latency{P50: 12 * time.Millisecond, P95: 15 * time.Millisecond, Count: 100}},
	})
	return se, se.Start(t0)
}

func launches(acts []strategy.Action) (n int) {
	for _, a := range acts {
		if a.Kind == strategy.ActLaunch {
			n++
		}
	}
	return n
}

func TestConfidentFastIsEnough(t *testing.T) {
	se, acts := start(t)
	if launches(acts) != 1 || acts[0].Model != "fast" {
		t.Fatalf("%v", acts)
	}
	se.OnResult(t0.Add(2*time.Millisecond), strategy.Result{Model: "fast", Version: "1", Output: []byte(`{"label":1,"confidence":0.93}`)})
	if r := se.Response(); r == nil || r.Models[0] != "fast" || r.Calls != 1 {
		t.Fatalf("%v", r)
	}
}

func TestUnsureHedgesTheSmartModel(t *testing.T) {
	se, _ := start(t)
	acts := se.OnResult(t0.Add(2*time.Millisecond), strategy.Result{Model: "fast", Version: "1", Output: []byte(`{"label":1,"confidence":0.6}`)})
	if launches(acts) != 1 || acts[0].Model != "smart" {
		t.Fatalf("unsure fast: %v", acts)
	}
	acts = se.OnTimer(t0.Add(17 * time.Millisecond)) // smart's p95 later
	if launches(acts) != 1 || !acts[0].Hedge {
		t.Fatalf("no hedge at the p95: %v", acts)
	}
	se.OnResult(t0.Add(28*time.Millisecond), strategy.Result{Model: "smart", Version: "2", Output: []byte(`{"label":0}`)})
	if r := se.Response(); r == nil || r.Models[0] != "smart" || r.Versions[0] != "2" || r.Hedges != 1 {
		t.Fatalf("%v", r)
	}
}

func TestFallsBackToFastAtTheDeadline(t *testing.T) {
	se, _ := start(t)
	se.OnResult(t0.Add(2*time.Millisecond), strategy.Result{Model: "fast", Version: "1", Output: []byte(`{"label":1,"confidence":0.6}`)})
	se.OnTimer(t0.Add(17 * time.Millisecond))
	se.OnTimer(t0.Add(40 * time.Millisecond))
	if r := se.Response(); r == nil || r.Models[0] != "fast" || !r.Fallback {
		t.Fatalf("%v", r)
	}
}

// The one-command comparison, small: the researcher's strategy against the
// built-ins. Figures are virtual time: deterministic.
func TestLabComparison(t *testing.T) {
	cfg := Config()
	cfg.Requests = 3000
	cfg.StatsSamples = 5000
	rep, err := lab.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		rep.Print(os.Stdout)
	}
	uh, _ := rep.Row("unsure-hedge")
	cascade, _ := rep.Row("cascade")
	fast, _ := rep.Row("fast-only")
	if uh.DeadlineMisses != 0 || uh.Accuracy <= fast.Accuracy || uh.P99 > cascade.P99 {
		t.Errorf("unsure-hedge: %+v\ncascade: %+v", uh, cascade)
	}
}
