package cluster

import (
	"testing"

	"github.com/manta-ml/manta/cluster/internal/wire"
	"github.com/manta-ml/manta/cluster/placement"
)

// An idle cluster's leader skips the pull of every member's full load;
// traffic, an imbalance, a replica or a new leader makes it pull.
func TestRebalancerQuiet(t *testing.T) {
	l := &Lookup{cfg: DefaultPlacementConfig()}
	tp := &topology{byKind: map[string][]string{KindModel: {"a", "b"}}}
	l.topo.Store(tp)
	set := func(ra, rb float64, activeA, activeB int64) {
		l.loads.Store(newLoadView([]*wire.Load{
			{Address: "a", Budget: 1 << 30, Active: activeA, Rate: ra, Activations: 10},
			{Address: "b", Budget: 1 << 30, Active: activeB, Rate: rb, Activations: 10},
		}))
	}
	rb := newRebalancer(l)
	set(0, 0, 100<<20, 100<<20)
	if rb.quiet() {
		t.Fatal("a leader that has not yet recovered the replica table must pull")
	}
	rb.leading = true
	if !rb.quiet() {
		t.Fatal("idle and balanced: the cycle should skip the pull")
	}
	set(50, 50, 100<<20, 100<<20) // 100 req/s ≥ HotRate/10: a model may be hot
	if rb.quiet() {
		t.Fatal("traffic above the lowest hot rate: must pull")
	}
	set(0, 0, 500<<20, 10<<20) // memory imbalance beyond the trigger
	if rb.quiet() {
		t.Fatal("memory imbalance: must pull")
	}
	set(0, 0, 100<<20, 100<<20)
	rb.table = map[string]int32{"m": 1}
	if rb.quiet() {
		t.Fatal("replicas to keep or retire: must pull")
	}
	rb.table = map[string]int32{}
	l.topo.Store(&topology{byKind: map[string][]string{KindModel: {"a", "b", "c"}}})
	if rb.quiet() {
		t.Fatal("a member without a gossiped load: must pull")
	}
}

// With memory alone out of balance, the leader pulls the full loads of
// the most loaded members only, and plans with the others' gossiped
// figures (their rate is the gossiped one, not the sum of a summary).
func TestRebalancerPartialPull(t *testing.T) {
	l := &Lookup{cfg: DefaultPlacementConfig()}
	l.topo.Store(&topology{byKind: map[string][]string{KindModel: {"a", "b", "c", "d"}}})
	gossip := []*wire.Load{
		{Address: "a", Budget: 1 << 30, Active: 100 << 20, Activations: 10},
		{Address: "b", Budget: 1 << 30, Active: 900 << 20, Activations: 90},
		{Address: "c", Budget: 1 << 30, Active: 50 << 20, Activations: 5, Rate: 0.5,
			Hosted: []*wire.Hosted{{Identity: "hot", Rate: 0.1, Bytes: 1 << 20}}},
		{Address: "d", Budget: 1 << 29, Active: 400 << 20, Activations: 40},
	}
	l.loads.Store(newLoadView(gossip))
	rb := newRebalancer(l)
	rb.leading = true
	if idle, balanced := rb.gossiped(); !idle || balanced {
		t.Fatalf("memory imbalance with no traffic: idle %v balanced %v, want idle and unbalanced", idle, balanced)
	}
	members, _, ok := rb.gossipMembers()
	if !ok {
		t.Fatal("every member gossiped")
	}
	donors := donorsOf(members, 2, 1.02)
	if len(donors) != 2 || !donors["b"] || !donors["d"] {
		t.Fatalf("donors %v, want b (88%%) and d (78%%)", donors)
	}
	// Only members above the target over the mean (here 1,450 MiB over
	// 3.5 GiB: 40%) are donors, however large k: b and d.
	if d := donorsOf(members, 10, 1.02); len(d) != 2 || !d["b"] || !d["d"] {
		t.Fatalf("donors with k=10: %v, want b and d", d)
	}
	// At least two, even when only one is above the target.
	one := []placement.Member{{ID: "x", Active: 90, Budget: 100}, {ID: "y", Active: 10, Budget: 100}, {ID: "z", Active: 10, Budget: 100}}
	if d := donorsOf(one, 10, 1.02); len(d) != 2 || !d["x"] {
		t.Fatalf("donors %v, want x and the next", d)
	}
	// c's gossiped summary holds one activation of rate 0.1; its member
	// rate is the gossiped 0.5.
	v := newLoadView(gossip)
	for _, m := range rb.members(v) {
		if m.ID == "c" && m.Rate != 0.5 {
			t.Fatalf("a gossiped member's rate %v, want its gossiped 0.5", m.Rate)
		}
	}
	full := &wire.Load{Address: "c", Budget: 1 << 30, Full: true, Hosted: []*wire.Hosted{{Identity: "x", Rate: 2}, {Identity: "y", Rate: 3}}}
	v = newLoadView([]*wire.Load{gossip[0], gossip[1], full, gossip[3]})
	for _, m := range rb.members(v) {
		if m.ID == "c" && m.Rate != 5 {
			t.Fatalf("a full load's rate %v, want the sum of its activations' 5", m.Rate)
		}
	}
}
