package placesim

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/manta-ml/manta/internal/testenv"
)

// The goals of the issue, on the default (benchmark) configuration.
func TestPlacementGoals(t *testing.T) {
	testenv.SkipShort(t, "the full simulation takes a few seconds")
	for _, slack := range []float64{1.15, 1.03} {
		c := DefaultConfig()
		c.Slack = slack
		rep, err := SimulatePlacement(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, phase := range []string{phaseSteady, phaseDrift} {
			m := rep.Row(MantaFull, phase)
			r := rep.Row(Rendezvous, phase)
			k := rep.Row(Knapsack, phase)
			if m.VolumeMaxMean > 1.10 || m.MemoryMaxMean > 1.05 {
				t.Errorf("slack %.2f %s: manta volume %.3f memory %.3f, want ≤ 1.10 and ≤ 1.05", slack, phase, m.VolumeMaxMean, m.MemoryMaxMean)
			}
			if r.VolumeMaxMean < 1.3 {
				t.Errorf("slack %.2f %s: rendezvous volume %.3f: the scenario does not show its blindness", slack, phase, r.VolumeMaxMean)
			}
			if m.Unplaced > r.Unplaced {
				t.Errorf("slack %.2f %s: manta leaves %.4f unplaced, rendezvous %.4f", slack, phase, m.Unplaced, r.Unplaced)
			}
			if m.Moves*20 > k.Moves {
				t.Errorf("slack %.2f %s: manta moved %d models, the knapsack %d: want far fewer", slack, phase, m.Moves, k.Moves)
			}
			if m.Moves > 10*c.MaxMoves*c.Cycles/2 {
				t.Errorf("more moves than K per cycle allows: %d", m.Moves)
			}
		}
		if slack < 1.05 && rep.Row(Rendezvous, phaseSteady).Unplaced == 0 {
			t.Errorf("tight budgets: rendezvous placed everything; the scenario is not tight")
		}
	}
}

func TestCacheGoals(t *testing.T) {
	testenv.SkipShort(t, "the full trace takes a few seconds")
	rep, err := SimulateCache(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	lru, gdsf, oracle, opt := rep.Row(PolicyLRU), rep.Row(PolicyGDSF), rep.Row(PolicyOracle), rep.Row(PolicyBelady)
	if !(gdsf.ByteMiss < lru.ByteMiss) {
		t.Errorf("gdsf byte miss %.4f not below lru %.4f", gdsf.ByteMiss, lru.ByteMiss)
	}
	if !(opt.ByteMiss <= oracle.ByteMiss && oracle.ByteMiss <= gdsf.ByteMiss) {
		t.Errorf("bounds out of order: belady %.4f, oracle %.4f, gdsf %.4f", opt.ByteMiss, oracle.ByteMiss, gdsf.ByteMiss)
	}
	// Against the best any online policy can do on an independent Zipf
	// trace (the static oracle), GDSF is within 1.2×.
	if gdsf.ByteMiss > 1.2*oracle.ByteMiss {
		t.Errorf("gdsf %.4f is more than 1.2× the static oracle %.4f", gdsf.ByteMiss, oracle.ByteMiss)
	}
}

func small() Config {
	c := DefaultConfig()
	c.Models = 800
	c.Cycles = 6
	c.TraceRequests = 20_000
	c.DriftHot = 5
	return c
}

func TestDeterministic(t *testing.T) {
	c := small()
	var outs [2]string
	for i := range outs {
		p, err := SimulatePlacement(c)
		if err != nil {
			t.Fatal(err)
		}
		ca, err := SimulateCache(c)
		if err != nil {
			t.Fatal(err)
		}
		if p.Row(MantaFull, phaseSteady).Replicas == 0 {
			t.Fatal("no replicas: the determinism check does not cover them")
		}
		b, _ := json.Marshal([]any{p, ca})
		outs[i] = string(b)
	}
	if outs[0] != outs[1] {
		t.Fatal("two runs with the same seed differ")
	}
	c.Seed = 2
	p, _ := SimulatePlacement(c)
	ca, _ := SimulateCache(c)
	b, _ := json.Marshal([]any{p, ca})
	if string(b) == outs[0] {
		t.Fatal("another seed gives the same figures")
	}
}

func TestReportsPrint(t *testing.T) {
	c := small()
	p, err := SimulatePlacement(c)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := SimulateCache(c)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WritePlacement(&buf, p); err != nil {
		t.Fatal(err)
	}
	if err := WriteCache(&buf, ca); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{Rendezvous, Knapsack, MantaFull, PolicyLRU, PolicyGDSF, PolicyBelady, "volume max/mean", "byte miss", "replicas", "top copies"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestValidate(t *testing.T) {
	bad := []Config{
		{Members: 1},
		{MinBytes: 10, MaxBytes: 5},
		{CacheFraction: 2},
		{Models: 10, DriftHot: 6},
		{MaxReplicas: -1},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}

// BenchmarkPlacement reports the figures as metrics (one full
// simulation per iteration).
func BenchmarkPlacement(b *testing.B) {
	var rep *PlacementReport
	for b.Loop() {
		var err error
		if rep, err = SimulatePlacement(DefaultConfig()); err != nil {
			b.Fatal(err)
		}
	}
	m, r := rep.Row(MantaFull, phaseSteady), rep.Row(Rendezvous, phaseSteady)
	b.ReportMetric(m.VolumeMaxMean, "manta-vol-max/mean")
	b.ReportMetric(m.MemoryMaxMean, "manta-mem-max/mean")
	b.ReportMetric(float64(m.Moves), "manta-moves")
	b.ReportMetric(r.VolumeMaxMean, "rendezvous-vol-max/mean")
	b.ReportMetric(float64(rep.Row(Knapsack, phaseSteady).Moves), "knapsack-moves")
}

// BenchmarkCachePolicies reports byte miss ratios relative to Belady.
func BenchmarkCachePolicies(b *testing.B) {
	var rep *CacheReport
	for b.Loop() {
		var err error
		if rep, err = SimulateCache(DefaultConfig()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(rep.Row(PolicyLRU).VsBelady, "lru/belady")
	b.ReportMetric(rep.Row(PolicyGDSF).VsBelady, "gdsf/belady")
	b.ReportMetric(rep.Row(PolicyOracle).VsBelady, "oracle/belady")
}
