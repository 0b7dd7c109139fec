package cluster

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/manta-ml/manta/cluster/placement"
)

func TestPlacementFlags(t *testing.T) {
	t.Setenv("MANTA_HOT_RATE", "50")
	t.Setenv("MANTA_REBALANCE", "false")
	c := DefaultPlacementConfig()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := c.RegisterFlags(fs); err != nil {
		t.Fatal(err)
	}
	if c.Rebalance.HotRate != 50 || !c.Rebalance.Disabled {
		t.Fatalf("environment not applied: %+v", c.Rebalance)
	}
	err := fs.Parse([]string{"--rebalance", "--rebalance-interval", "2s", "--rebalance-moves", "3", "--max-replicas", "5",
		"--failure-detection", "1500ms", "--placement-weights", "volume=2,models=0"})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultPlacementConfig()
	want.Rebalance.HotRate, want.Rebalance.Interval, want.Rebalance.Plan.MaxMoves, want.Rebalance.MaxReplicas = 50, 2*time.Second, 3, 5
	want.FailureDetection = 1500 * time.Millisecond
	want.Weights = placement.Weights{Memory: 1, Volume: 2}
	if c.Rebalance != want.Rebalance || c.FailureDetection != want.FailureDetection || c.Weights != want.Weights {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"--placement-weights", "memory=-1"}, {"--placement-weights", "cpu=1"}, {"--rebalance-interval", "0s"}, {"--max-replicas", "-1"}} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c := DefaultPlacementConfig()
		_ = c.RegisterFlags(fs)
		if err := fs.Parse(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	t.Setenv("MANTA_FAILURE_DETECTION", "soon")
	c = DefaultPlacementConfig()
	if err := c.RegisterFlags(flag.NewFlagSet("y", flag.ContinueOnError)); err == nil {
		t.Error("a bad environment value was not reported")
	}
}

func TestPlacementConfigValidate(t *testing.T) {
	bad := []PlacementConfig{
		{Weights: placement.Weights{Memory: -1}},
		{Sample: -1},
		{LoadInterval: -time.Second},
		{Rebalance: RebalanceConfig{Plan: placement.PlanConfig{Headroom: 2}}},
		{Rebalance: RebalanceConfig{Plan: placement.PlanConfig{Trigger: placement.Ratio{Volume: 1.1}, Target: placement.Ratio{Volume: 1.2}}}},
		{Rebalance: RebalanceConfig{MaxReplicas: -1}},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	var zero PlacementConfig
	if err := zero.Validate(); err != nil {
		t.Error(err)
	}
	if d := zero.withDefaults(); d.Rebalance.Plan != placement.DefaultPlanConfig() || d.Weights != placement.DefaultWeights() {
		t.Errorf("zero config defaults: %+v", d)
	}
}
