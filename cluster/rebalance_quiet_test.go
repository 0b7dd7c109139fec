package cluster

import (
	"testing"

	"github.com/manta-ml/manta/cluster/internal/wire"
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
