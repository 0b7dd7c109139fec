package lab

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/manta-ml/manta/actors/strategy"
)

func small(t *testing.T, scenario string, n int) Config {
	t.Helper()
	cfg, err := Scenario(scenario)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Requests = n
	cfg.StatsSamples = 5000
	return cfg
}

func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func row(t *testing.T, rep *Report, label string) Row {
	t.Helper()
	r, ok := rep.Row(label)
	if !ok {
		t.Fatalf("no row %q", label)
	}
	return r
}

func TestDeterministic(t *testing.T) {
	cfg := small(t, "all", 500)
	a, b := run(t, cfg), run(t, cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs of the same config differ")
	}
	cfg.Seed = 2
	if c := run(t, cfg); reflect.DeepEqual(a.Rows, c.Rows) {
		t.Fatal("another seed gave the same rows")
	}
}

// The figures are virtual time, so these are properties of the simulation
// (deterministic), not timings of the machine.
func TestScenarios(t *testing.T) {
	t.Run("tail", func(t *testing.T) {
		rep := run(t, small(t, "tail", 5000))
		single, hedged := row(t, rep, "single"), row(t, rep, "hedged@p95")
		if single.CallsPerRequest != 1 || single.Hedges != 0 {
			t.Errorf("single: %+v", single)
		}
		if hedged.P99 >= single.P99/2 || hedged.P999 >= single.P999/2 {
			t.Errorf("hedging did not cut the tail: single p99 %v p99.9 %v, hedged %v %v", single.P99, single.P999, hedged.P99, hedged.P999)
		}
		if hedged.ExtraLoad() > 0.08 || hedged.Hedges == 0 {
			t.Errorf("hedged: %.1f%% extra calls, %d hedges", 100*hedged.ExtraLoad(), hedged.Hedges)
		}
	})
	t.Run("fallback", func(t *testing.T) {
		rep := run(t, small(t, "fallback", 3000))
		smart, fb := row(t, rep, "smart-only"), row(t, rep, "deadline-fallback(smart,fast)")
		if smart.DeadlineMisses == 0 {
			t.Error("the smart model alone never missed its deadline: the scenario tests nothing")
		}
		if fb.DeadlineMisses != 0 || fb.Errors != 0 || fb.Fallbacks == 0 || fb.P999 > fb.Deadline {
			t.Errorf("deadline-fallback: %+v", fb)
		}
		if fb.Wins["smart"] <= fb.Wins["fast"] {
			t.Errorf("wins %v", fb.Wins)
		}
		if late := row(t, rep, "deadline-fallback@20ms"); late.CallsPerRequest >= fb.CallsPerRequest {
			t.Errorf("fallback_at did not save calls: %.2f vs %.2f", late.CallsPerRequest, fb.CallsPerRequest)
		}
		if c := row(t, rep, "cascade(fast,smart)"); c.P50 >= smart.P50 || c.CallsPerRequest >= 2 {
			t.Errorf("cascade: %+v", c)
		}
	})
	t.Run("ensemble", func(t *testing.T) {
		rep := run(t, small(t, "ensemble", 3000))
		a, vote := row(t, rep, "a-only"), row(t, rep, "majority-vote(a,b,c)")
		if vote.Accuracy <= a.Accuracy {
			t.Errorf("voting three ~0.88 models is no better than one: %.3f vs %.3f", vote.Accuracy, a.Accuracy)
		}
		if vote.Agreement < 0.6 || vote.Agreement > 1 {
			t.Errorf("agreement %.2f", vote.Agreement)
		}
		if fs := row(t, rep, "first-success(a,b,c)"); fs.P99 >= a.P99 || fs.CallsPerRequest != 3 {
			t.Errorf("first-success: %+v", fs)
		}
	})
}

func TestPrint(t *testing.T) {
	rep := run(t, small(t, "all", 300))
	var b bytes.Buffer
	if err := rep.Print(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"p99.9", "calls/req", "misses", "heavy-tail", "bimodal", "lognormal"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	for _, r := range rep.Rows {
		if !strings.Contains(out, r.Label) {
			t.Errorf("no row %q in\n%s", r.Label, out)
		}
	}
}

func TestEveryBuiltinRuns(t *testing.T) {
	cfg := small(t, "fallback", 200)
	cfg.Trials = nil
	for _, name := range []string{strategy.NameDeadlineFallback, strategy.NameHedged, strategy.NameFirstSuccess,
		strategy.NameMajorityVote, strategy.NameBestQuality, strategy.NameWeightedAverage, strategy.NameCascade} {
		cfg.Trials = append(cfg.Trials, Trial{Strategy: name, Models: []string{"smart", "fast"}})
	}
	rep := run(t, cfg)
	for _, r := range rep.Rows {
		if r.Requests != 200 || r.AnsweredFraction == 0 {
			t.Errorf("%s: %+v", r.Label, r)
		}
	}
}

func TestValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"unknown strategy": func(c *Config) { c.Trials[0].Strategy = "nope" },
		"bad params":       func(c *Config) { c.Trials[0].Params = map[string]string{"nope": "1"} },
		"unknown model":    func(c *Config) { c.Trials[0].Models = []string{"ghost"} },
		"no trials":        func(c *Config) { c.Trials = nil },
		"bad dist":         func(c *Config) { c.Models[0].Latency.Dist = "uniform" },
		"no median":        func(c *Config) { c.Models[0].Latency.Median = 0 },
		"duplicate model":  func(c *Config) { c.Models = append(c.Models, c.Models[0]) },
		"bad accuracy":     func(c *Config) { c.Models[0].Accuracy = 2 },
	} {
		cfg := small(t, "tail", 10)
		mutate(&cfg)
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, small(t, "tail", 5000)); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := ParseFlags([]string{"-scenario", "tail", "-seed", "7", "-requests", "50", "-deadline", "40ms",
		"-add", "h2=hedged:svc?delay=11ms&max=2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	last := cfg.Trials[len(cfg.Trials)-1]
	if cfg.Seed != 7 || cfg.Requests != 50 || cfg.Deadline != 40*time.Millisecond || len(cfg.Trials) != 5 ||
		last.Label != "h2" || last.Strategy != "hedged" || last.Params["delay"] != "11ms" || last.Params["max"] != "2" {
		t.Fatalf("%+v", cfg)
	}
	cfg, err = ParseFlags([]string{"-scenario", "fallback", "-trial", "deadline-fallback:smart,fast", "-trial", "x=cascade:fast,smart?threshold=0.9"}, io.Discard)
	if err != nil || len(cfg.Trials) != 2 || cfg.Trials[1].Name() != "x" || cfg.Trials[0].Name() != "deadline-fallback(smart,fast)" {
		t.Fatalf("%+v %v", cfg.Trials, err)
	}
	for _, bad := range [][]string{
		{"-scenario", "nope"},
		{"-trial", "hedged"},
		{"-trial", "nope:svc", "-scenario", "tail"},
		{"-trial", "hedged:ghost", "-scenario", "tail"},
		{"-trial", "hedged:svc?delay=%zz", "-scenario", "tail"},
		{"extra"},
	} {
		if _, err := ParseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := ParseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestLatencySamples(t *testing.T) {
	for _, l := range []Latency{
		{Dist: DistLogNormal, Median: 10 * time.Millisecond},
		TailModel.Latency,
		{Dist: DistBimodal, Median: 5 * time.Millisecond, ColdProb: 0.1, ColdMedian: 50 * time.Millisecond},
	} {
		s := measure(l, 20000, 1, 1)
		if s.P50 < l.Median*9/10 || s.P50 > l.Median*11/10 || !(s.P50 <= s.P95 && s.P95 <= s.P99) {
			t.Errorf("%s: %+v", l, s)
		}
	}
	if s := measure(TailModel.Latency, 20000, 1, 1); s.P99 < 8*s.P50 || s.P99 > 12*s.P50 {
		t.Errorf("the tail model's p99 is %.1f× its p50, want about 10×", float64(s.P99)/float64(s.P50))
	}
}
