package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
)

// boundedSource adds manifest replica bounds to fakeSource.
type boundedSource struct {
	fakeSource
	lo, hi map[string]int
}

func (s *boundedSource) ReplicaBounds(_ context.Context, id string) (int, int) {
	return s.lo[id], s.hi[id]
}

// Load reports traffic on both models, so that rate alone would give each
// the cluster's MaxReplicas.
func (s *boundedSource) Load() SourceLoad {
	return SourceLoad{Budget: s.budget, Rate: 100, Models: map[string]ModelLoad{
		"floor": {Rate: 0}, "capped": {Rate: 50, Bytes: 1 << 20}, "free": {Rate: 50, Bytes: 1 << 20}}}
}

// A manifest's min_replicas gives a model replicas however cold it is; its
// max_replicas keeps a hot one below the cluster's MaxReplicas.
func TestManifestReplicaBounds(t *testing.T) {
	tc := newTestCluster(t)
	src := &boundedSource{
		fakeSource: fakeSource{budget: 1 << 30, sizes: map[string]int64{"floor": 1 << 20, "capped": 1 << 20, "free": 1 << 20}},
		lo:         map[string]int{"floor": 3},
		hi:         map[string]int{"capped": 1},
	}
	for i := 0; i < 2; i++ {
		cfg := DefaultConfig()
		cfg.LocalAgent = tc.agent
		cfg.Source = src
		cfg.RequestTimeout = 5 * time.Second
		cfg.Placement.FailureDetection = 2 * time.Second
		cfg.Placement.HandOffGrace = time.Second
		cfg.Placement.Rebalance.Interval = 300 * time.Millisecond
		cfg.Placement.Rebalance.HotRate = 1 // 50 req/s is hot: rate alone gives MaxReplicas
		cfg.Placement.Rebalance.MaxReplicas = 3
		cfg.Logger = tc.logger
		kind := pcluster.NewKind(KindModel, actor.PropsFromProducer(func() actor.Actor { return &echo{reg: tc.reg} }))
		m, err := Start(context.Background(), cfg, kind)
		if err != nil {
			t.Fatal(err)
		}
		tc.members = append(tc.members, m)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = m.Shutdown(ctx, false)
		})
	}
	tc.waitMembers(2)
	for _, id := range []string{"floor", "capped", "free"} {
		ask(t, tc.members[0], id)
	}
	// One cycle decides all three: free (no bounds) gets MaxReplicas from
	// its rate, floor gets min_replicas-1 without traffic, and capped,
	// as hot as free, none (max_replicas 1).
	waitCond(t, "replicas for free (rate) and floor (min_replicas 3)", func() bool {
		l := tc.members[0].lookup
		return l.Replicas("free") == 3 && l.Replicas("floor") == 2
	})
	if n := tc.members[0].lookup.Replicas("capped"); n != 0 {
		t.Fatalf("capped has %d replicas, max_replicas 1 allows none", n)
	}
}
