package cluster

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/manta-ml/manta/cluster/placement"
	"github.com/manta-ml/manta/internal/flagenv"
)

// Validate checks the placement config and names the first problem.
// Zero values are fine: they take the defaults.
func (c *PlacementConfig) Validate() error {
	w := c.Weights
	if w.Memory < 0 || w.Volume < 0 || w.Models < 0 {
		return fmt.Errorf("cluster: placement: weights must not be negative, got %+v", w)
	}
	if c.Sample < 0 {
		return fmt.Errorf("cluster: placement: sample %d is negative", c.Sample)
	}
	if c.LoadInterval < 0 || c.FailureDetection < 0 || c.ActivateTimeout < 0 || c.HandOffGrace < 0 || c.LoadTimeout < 0 || c.Rebalance.Interval < 0 {
		return errors.New("cluster: placement: durations must not be negative")
	}
	p := c.Rebalance.Plan
	if p.MaxMoves < 0 || p.CoolDown < 0 || p.Headroom < 0 || p.Headroom > 1 {
		return fmt.Errorf("cluster: placement: plan: bad moves %d, cool-down %d or headroom %g", p.MaxMoves, p.CoolDown, p.Headroom)
	}
	if p.Trigger.Volume != 0 && p.Target.Volume > p.Trigger.Volume || p.Trigger.Memory != 0 && p.Target.Memory > p.Trigger.Memory {
		return fmt.Errorf("cluster: placement: plan: target %+v above trigger %+v", p.Target, p.Trigger)
	}
	if c.Rebalance.MaxReplicas < 0 {
		return fmt.Errorf("cluster: placement: max_replicas %d is negative", c.Rebalance.MaxReplicas)
	}
	return nil
}

// RegisterFlags adds the placement flags to fs, each also read from an
// environment variable (the flag wins), filling c (start from
// DefaultPlacementConfig). It reports environment values it cannot parse.
//
//	--rebalance            MANTA_REBALANCE            run the rebalancer and replicas (true)
//	--rebalance-interval   MANTA_REBALANCE_INTERVAL   time between rebalancer cycles (10s)
//	--rebalance-moves      MANTA_REBALANCE_MOVES      moves per cycle at most (8)
//	--hot-rate             MANTA_HOT_RATE             requests/s one activation serves before replicas (200; <0: none)
//	--max-replicas         MANTA_MAX_REPLICAS         replicas per model at most (15)
//	--failure-detection    MANTA_FAILURE_DETECTION    longest wait on another member (4s)
//	--activate-timeout     MANTA_ACTIVATE_TIMEOUT     longest wait on a live member's activation answer (30s)
//	--placement-weights    MANTA_PLACEMENT_WEIGHTS    memory=1,volume=1,models=0.25
func (c *PlacementConfig) RegisterFlags(fs *flag.FlagSet) error {
	b := flagenv.New(fs)
	vars := []struct {
		name, env, usage string
		v                flag.Value
	}{
		{"rebalance", "MANTA_REBALANCE", "run the rebalancer and hot-model replicas", enabledFlag{&c.Rebalance.Disabled}},
		{"rebalance-interval", "MANTA_REBALANCE_INTERVAL", "time between rebalancer cycles", durationFlag{&c.Rebalance.Interval}},
		{"rebalance-moves", "MANTA_REBALANCE_MOVES", "models a rebalancer cycle moves at most", intFlag{&c.Rebalance.Plan.MaxMoves}},
		{"hot-rate", "MANTA_HOT_RATE", "requests/s one activation serves before its model gets replicas (<0: no replicas)", floatFlag{&c.Rebalance.HotRate}},
		{"max-replicas", "MANTA_MAX_REPLICAS", "replicas of one model at most", intFlag{&c.Rebalance.MaxReplicas}},
		{"failure-detection", "MANTA_FAILURE_DETECTION", "longest wait on another member", durationFlag{&c.FailureDetection}},
		{"activate-timeout", "MANTA_ACTIVATE_TIMEOUT", "longest wait on a live member's answer to an activation (a member that leaves ends it at once)", durationFlag{&c.ActivateTimeout}},
		{"placement-weights", "MANTA_PLACEMENT_WEIGHTS", "weights of placement's score: memory=1,volume=1,models=0.25", weightsFlag{&c.Weights}},
	}
	for _, f := range vars {
		b.Var(f.v, f.name, f.env, f.usage)
	}
	return b.Err()
}

type enabledFlag struct{ disabled *bool }

func (f enabledFlag) String() string {
	if f.disabled == nil {
		return "true"
	}
	return strconv.FormatBool(!*f.disabled)
}
func (f enabledFlag) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err == nil {
		*f.disabled = !b
	}
	return err
}
func (f enabledFlag) IsBoolFlag() bool { return true }

type durationFlag struct{ p *time.Duration }

func (f durationFlag) String() string {
	if f.p == nil {
		return ""
	}
	return f.p.String()
}
func (f durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err == nil && d <= 0 {
		err = errors.New("must be positive")
	}
	if err == nil {
		*f.p = d
	}
	return err
}

type intFlag struct{ p *int }

func (f intFlag) String() string {
	if f.p == nil {
		return ""
	}
	return strconv.Itoa(*f.p)
}
func (f intFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err == nil && n < 0 {
		err = errors.New("must not be negative")
	}
	if err == nil {
		*f.p = n
	}
	return err
}

type floatFlag struct{ p *float64 }

func (f floatFlag) String() string {
	if f.p == nil {
		return ""
	}
	return strconv.FormatFloat(*f.p, 'g', -1, 64)
}
func (f floatFlag) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err == nil {
		*f.p = v
	}
	return err
}

type weightsFlag struct{ p *placement.Weights }

func (f weightsFlag) String() string {
	if f.p == nil {
		return ""
	}
	return fmt.Sprintf("memory=%g,volume=%g,models=%g", f.p.Memory, f.p.Volume, f.p.Models)
}
func (f weightsFlag) Set(s string) error {
	w := *f.p
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || err != nil || x < 0 {
			return fmt.Errorf("bad weight %q (want name=value, value ≥ 0)", kv)
		}
		switch strings.TrimSpace(k) {
		case "memory":
			w.Memory = x
		case "volume":
			w.Volume = x
		case "models":
			w.Models = x
		default:
			return fmt.Errorf("unknown weight %q (memory, volume, models)", k)
		}
	}
	*f.p = w
	return nil
}
