// Package placement holds Manta's placement rules as pure functions: the
// rendezvous rule protoactor's disthash uses (Manta keeps it to name an
// identity's directory), the weighted score that picks the member a model
// is activated on, and the rebalancer's plan. They know nothing of actors
// or networks: the cluster package feeds them gossiped member loads, and the
// placement simulator (internal/placesim) feeds them a synthetic cluster, so
// the simulator measures the very code the cluster runs.
//
// A member's load has three parts, each normalised so that 1 is the
// cluster's mean: memory (bytes of active models over the member's
// budget, against the cluster's total over total), request volume, and
// models loaded. Choose scores the members that can fit a model by those
// loads after adding the model, over a sample of ⌈√n⌉ (at least 2)
// candidates to avoid herding on stale gossip; a model with no volume
// history ("cold") is placed by memory alone. Plan moves at most K models
// from overloaded members, only when max/mean exceeds a trigger and only
// while it stays above a target (hysteresis), never a model in its
// cool-down.
//
//	i, err := placement.Choose(members, placement.Model{Identity: "eta", Bytes: 50 << 20, Cold: true},
//		placement.DefaultWeights(), 0, rng)
//	var nr *placement.NoRoomError
//	if errors.As(err, &nr) { /* too_large: nr.Largest is the largest room */ }
package placement
