package cluster

import (
	"context"
	"time"

	"github.com/manta-ml/manta/cluster/placement"
)

// Source is what a member's placement needs from the models it hosts: its
// memory and request figures (gossiped to every member), a model's memory
// estimate (for the directory to choose a member that fits it) and whether
// a model is loaded (a move switches only once it is). actors.Host
// provides one (Host.PlacementSource); a member without a Source hosts
// with an unlimited budget and places by model count and volume only.
type Source interface {
	// Load reports the member's figures now. It is called a few times a
	// second and on every activation, so it must cost O(1): it need not
	// fill SourceLoad.Models when the Source is also a ModelLoader.
	Load() SourceLoad
	// Estimate returns the memory estimate of model id (an identity's part
	// before any "@"): its manifest's memory_bytes, else the runtime's
	// estimate, else its files' size. An error wrapping api.ErrNotFound
	// means there is no such model; other errors are treated as unknown
	// size.
	Estimate(ctx context.Context, id string) (int64, error)
	// Loaded reports whether a version of model id is loaded in the
	// member's cache.
	Loaded(id string) bool
}

// ModelLoader is an optional ability of a Source: the per-model figures,
// which cost a walk over the member's models. Placement asks for them at
// most once per summary interval (the gossiped top-K) and when the
// rebalancer's leader plans; without it, SourceLoad.Models of Load is
// read at those times instead.
type ModelLoader interface {
	ModelLoads() map[string]ModelLoad
}

// Reliever is an optional ability of a Source: when a model is placed on a
// member whose budget is held by activations, Relieve asks the idle ones
// to release their models (need is the bytes missing).
type Reliever interface {
	Relieve(need int64)
}

// ReplicaBounder is an optional ability of a Source: a model's manifest may
// bound its activations (min_replicas, max_replicas: activations in all,
// the first one included; 0 means no bound). The leader keeps a hot
// model's replicas within them.
type ReplicaBounder interface {
	ReplicaBounds(ctx context.Context, id string) (minActivations, maxActivations int)
}

// SourceLoad is a member's figures.
type SourceLoad struct {
	Budget       int64   // model-memory budget
	Used         int64   // loaded and loading bytes
	Pinned       int64   // bytes of models in use
	ModelsLoaded int     // loaded models
	Rate         float64 // requests/s, EWMA
	// Models holds per model id figures (models with traffic or loaded);
	// read only from a Source that is not a ModelLoader.
	Models map[string]ModelLoad
}

// ModelLoad is one model's figures on a member.
type ModelLoad struct {
	Rate  float64 // requests/s, EWMA
	Bytes int64   // measured size when loaded (0: not loaded)
}

// PlacementConfig tunes Manta's placement (the IdentityLookup of
// NewLookup). The zero value takes DefaultPlacementConfig's values field
// by field.
type PlacementConfig struct {
	// Weights weigh free memory, request volume and models loaded when
	// the directory chooses a member.
	Weights placement.Weights `json:"weights" yaml:"weights"`
	// Sample is how many feasible members the directory compares
	// (0: ⌈√n⌉, at least 2).
	Sample int `json:"sample,omitempty" yaml:"sample,omitempty"`
	// LoadInterval is how often a member gossips its load and reads the
	// others', and Proto.Actor's gossip round (default 1s: the gossip's
	// heartbeats make every round cost O(members) on every member, and
	// placement covers the staleness with its own recent placements).
	LoadInterval time.Duration `json:"load_interval" yaml:"load_interval"`
	// FailureDetection bounds every wait on another member: a lookup, an
	// activation, a hand-off (default 4s: the etcd provider's 3s TTL plus
	// a margin). A member that does not answer within it is skipped.
	FailureDetection time.Duration `json:"failure_detection" yaml:"failure_detection"`
	// ActivateTimeout is how long a directory waits for a live member's
	// activator to answer an activation (default 30s). A member that
	// leaves ends the wait at once (the provider, or its connection
	// broken and its port refusing connections), so this only bounds a
	// member that is alive but slow: under a burst of cold models on
	// busy members an answer can take longer than FailureDetection, and
	// placing the model elsewhere then would start a second activation
	// beside the one under way.
	ActivateTimeout time.Duration `json:"activate_timeout" yaml:"activate_timeout"`
	// HandOffGrace is how long a new directory owner holds first
	// activations of identities it has no entry for while members
	// re-announce their activations after a topology change (default 2s;
	// it stops holding as soon as every member has announced).
	HandOffGrace time.Duration `json:"handoff_grace" yaml:"handoff_grace"`
	// LoadTimeout bounds a move's load on its target (default 5m).
	LoadTimeout time.Duration `json:"load_timeout" yaml:"load_timeout"`
	// AntiEntropy is the period in which an activator re-announces every
	// activation it hosts to its directory owner (default 10s). The
	// announcements are spread over the period, a slice on every 250 ms
	// tick, so a member's cost per second is its activations divided by
	// the period; activations younger than 5 s are announced on every
	// tick. A directory entry not announced for two periods yields to a
	// live activation another member announces.
	AntiEntropy time.Duration `json:"anti_entropy" yaml:"anti_entropy"`
	// Rebalance configures the rebalancer and hot-model replicas.
	Rebalance RebalanceConfig `json:"rebalance" yaml:"rebalance"`
}

// RebalanceConfig configures the rebalancer (one member at a time: the
// member with the lowest id) and hot-model replicas.
type RebalanceConfig struct {
	// Disabled turns the rebalancer (and replicas) off.
	Disabled bool `json:"disabled,omitempty" yaml:"disabled,omitempty"`
	// Interval between cycles (default 10s).
	Interval time.Duration `json:"interval" yaml:"interval"`
	// Plan tunes the plan: trigger, target, moves per cycle, cool-down
	// (in cycles).
	Plan placement.PlanConfig `json:"plan" yaml:"plan"`
	// HotRate is the request rate (requests/s) one activation is meant to
	// serve at most: a model above the hot rate gets replicas id@1..id@k
	// so that each serves about it; a replica goes again when the model's
	// rate falls below 60% of what the remaining activations serve. The
	// hot rate is HotRate, or half of one member's mean share of the
	// cluster's requests when that is lower, but at least HotRate/10. 0:
	// the default (200); negative: no replicas.
	HotRate float64 `json:"hot_rate" yaml:"hot_rate"`
	// MaxReplicas bounds the extra replicas of one model (default 15: a
	// model carrying 8% of the requests of 64 members needs about 11
	// copies to bring the busiest member within 10% of the mean).
	MaxReplicas int `json:"max_replicas" yaml:"max_replicas"`
}

// DefaultPlacementConfig is the default placement: DefaultWeights, a load
// round every second, 4s failure detection, 30s for a live activator's
// answer, 2s hand-off grace, a rebalance
// cycle every 10s (placement.DefaultPlanConfig), replicas above 200
// requests/s (or half a member's mean share), at most 15.
func DefaultPlacementConfig() PlacementConfig {
	return PlacementConfig{
		Weights:          placement.DefaultWeights(),
		LoadInterval:     time.Second,
		FailureDetection: 4 * time.Second,
		ActivateTimeout:  30 * time.Second,
		HandOffGrace:     2 * time.Second,
		LoadTimeout:      5 * time.Minute,
		AntiEntropy:      10 * time.Second,
		Rebalance: RebalanceConfig{
			Interval:    10 * time.Second,
			Plan:        placement.DefaultPlanConfig(),
			HotRate:     200,
			MaxReplicas: 15,
		},
	}
}

// withDefaults fills zero fields from DefaultPlacementConfig.
func (c PlacementConfig) withDefaults() PlacementConfig {
	d := DefaultPlacementConfig()
	if c.Weights == (placement.Weights{}) {
		c.Weights = d.Weights
	}
	if c.LoadInterval <= 0 {
		c.LoadInterval = d.LoadInterval
	}
	if c.FailureDetection <= 0 {
		c.FailureDetection = d.FailureDetection
	}
	if c.ActivateTimeout <= 0 {
		c.ActivateTimeout = d.ActivateTimeout
	}
	if c.HandOffGrace <= 0 {
		c.HandOffGrace = d.HandOffGrace
	}
	if c.LoadTimeout <= 0 {
		c.LoadTimeout = d.LoadTimeout
	}
	if c.AntiEntropy <= 0 {
		c.AntiEntropy = d.AntiEntropy
	}
	r := &c.Rebalance
	if r.Interval <= 0 {
		r.Interval = d.Rebalance.Interval
	}
	dp := d.Rebalance.Plan
	if r.Plan.Trigger == (placement.Ratio{}) {
		r.Plan.Trigger = dp.Trigger
	}
	if r.Plan.Target == (placement.Ratio{}) {
		r.Plan.Target = dp.Target
	}
	if r.Plan.MaxMoves <= 0 {
		r.Plan.MaxMoves = dp.MaxMoves
	}
	if r.Plan.MoveCost <= 0 {
		r.Plan.MoveCost = dp.MoveCost
	}
	if r.Plan.Headroom <= 0 {
		r.Plan.Headroom = dp.Headroom
	}
	if r.Plan.CoolDown <= 0 {
		r.Plan.CoolDown = dp.CoolDown
	}
	if r.HotRate == 0 {
		r.HotRate = d.Rebalance.HotRate
	}
	if r.MaxReplicas <= 0 {
		r.MaxReplicas = d.Rebalance.MaxReplicas
	}
	return c
}
