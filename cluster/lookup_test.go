package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster/internal/wire"
	"github.com/manta-ml/manta/internal/testenv"
)

// fakeSource is a member's Source for tests: a budget, fixed estimates.
type fakeSource struct {
	budget int64
	sizes  map[string]int64 // model id -> estimate; absent: not found
}

func (s *fakeSource) Load() SourceLoad { return SourceLoad{Budget: s.budget} }
func (s *fakeSource) Estimate(_ context.Context, id string) (int64, error) {
	if n, ok := s.sizes[id]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("%w: model %s", api.ErrNotFound, id)
}
func (s *fakeSource) Loaded(string) bool { return true }

// registry counts live activations per identity across the test's members.
type registry struct {
	mu     sync.Mutex
	live   map[string]map[string]bool // identity -> member addresses
	spawns atomic.Int64
}

func (r *registry) add(identity, addr string, delta bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live == nil {
		r.live = map[string]map[string]bool{}
	}
	if r.live[identity] == nil {
		r.live[identity] = map[string]bool{}
	}
	if delta {
		r.live[identity][addr] = true
	} else {
		delete(r.live[identity], addr)
	}
}

func (r *registry) where(identity string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for a := range r.live[identity] {
		out = append(out, a)
	}
	return out
}

// echo is a stand-in model actor: it answers with where it runs.
type echo struct {
	reg      *registry
	identity string
	addr     string
}

func (e *echo) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *pcluster.ClusterInit:
		e.identity, e.addr = m.Identity.Identity, ctx.ActorSystem().Address()
		e.reg.spawns.Add(1)
		e.reg.add(e.identity, e.addr, true)
	case *api.PredictRequest:
		ctx.Respond(&api.PredictResponse{RequestId: m.RequestId, ModelId: m.ModelId, ServedBy: e.addr})
	case *actor.Stopping:
		e.reg.add(e.identity, e.addr, false)
	}
}

type testCluster struct {
	logger  *slog.Logger
	t       *testing.T
	agent   *test.InMemAgent
	reg     *registry
	members []*Member
}

func newTestCluster(t *testing.T) *testCluster {
	return &testCluster{t: t, agent: test.NewInMemAgent(), reg: &registry{}}
}

func (tc *testCluster) start(src Source) *Member {
	tc.t.Helper()
	cfg := DefaultConfig()
	cfg.LocalAgent = tc.agent
	cfg.Source = src
	cfg.RequestTimeout = 5 * time.Second
	cfg.Placement.FailureDetection = 2 * time.Second
	cfg.Placement.HandOffGrace = time.Second
	cfg.Placement.AntiEntropy = 2 * time.Second
	cfg.Placement.Rebalance.Disabled = true
	cfg.Logger = tc.logger
	kind := pcluster.NewKind(KindModel, actor.PropsFromProducer(func() actor.Actor { return &echo{reg: tc.reg} }))
	m, err := Start(context.Background(), cfg, kind)
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.members = append(tc.members, m)
	tc.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Shutdown(ctx, false)
	})
	return m
}

// waitMembers waits until every member sees n members.
func (tc *testCluster) waitMembers(n int) {
	tc.t.Helper()
	testenv.WaitFor(tc.t, 10*time.Second, fmt.Sprintf("every member to see %d members", n), func() bool {
		for _, m := range tc.members {
			if m.lookup == nil || len(m.lookup.topo.Load().byKind[KindModel]) != n {
				return false
			}
		}
		return true
	})
}

func ask(t *testing.T, m *Member, identity string) *api.PredictResponse {
	t.Helper()
	pid := m.Cluster.Get(identity, KindModel)
	if pid == nil {
		t.Fatalf("%s: no PID", identity)
	}
	res, err := m.System.Root.RequestFuture(pid, &api.PredictRequest{ModelId: identity, RequestId: "r"}, 5*time.Second).Result()
	if err != nil {
		t.Fatalf("%s: %v", identity, err)
	}
	resp, ok := res.(*api.PredictResponse)
	if !ok {
		t.Fatalf("%s: answer %T", identity, res)
	}
	return resp
}

func TestLookupOneActivationAndRespectsBudgets(t *testing.T) {
	sizes := map[string]int64{}
	for i := 0; i < 40; i++ {
		sizes[fmt.Sprintf("m%02d", i)] = int64(10 + i%7*10)
	}
	sizes["huge"] = 700
	tc := newTestCluster(t)
	budgets := []int64{600, 600, 600} // 1550 bytes of models
	for _, b := range budgets {
		tc.start(&fakeSource{budget: b, sizes: sizes})
	}
	tc.waitMembers(3)

	// Concurrent first lookups of every model from every member.
	var wg sync.WaitGroup
	served := make([]map[string]string, len(tc.members))
	for i, m := range tc.members {
		served[i] = map[string]string{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range sizes {
				if id == "huge" {
					continue
				}
				pid := m.Cluster.Get(id, KindModel)
				if pid == nil {
					t.Errorf("member %d: %s: no PID", i, id)
					return
				}
				served[i][id] = pid.String()
			}
		}()
	}
	wg.Wait()
	// An activation counts itself when it handles ClusterInit, which may
	// come after its PID was handed out.
	waitCond(t, "every model's activation initialised", func() bool { return tc.reg.spawns.Load() >= int64(len(sizes)-1) })
	for id := range sizes {
		if id == "huge" {
			continue
		}
		if w := tc.reg.where(id); len(w) != 1 {
			t.Errorf("%s active on %v, want exactly one member", id, w)
		}
		if served[0][id] != served[1][id] || served[1][id] != served[2][id] {
			t.Errorf("%s: members were given different activations: %s %s %s", id, served[0][id], served[1][id], served[2][id])
		}
	}
	if n := tc.reg.spawns.Load(); n != int64(len(sizes)-1) {
		t.Errorf("%d activations for %d models", n, len(sizes)-1)
	}
	// Within budgets: the activators' books.
	for _, m := range tc.members {
		var active int64
		active = m.lookup.localBytes.Load()
		if active > 600 {
			t.Errorf("member %s holds %d bytes of a 600 budget", m.Address(), active)
		}
	}

	// too_large names the largest member budget; not_found for no such model.
	resp := ask(t, tc.members[0], "huge")
	if resp.Error.Err() == nil || !errors.Is(resp.Error.Err(), api.ErrTooLarge) || !strings.Contains(resp.Error.Message, "largest member budget") {
		t.Errorf("huge: %+v, want too_large naming the largest member budget", resp.Error)
	}
	resp = ask(t, tc.members[1], "nosuchmodel")
	if !errors.Is(resp.Error.Err(), api.ErrNotFound) {
		t.Errorf("nosuchmodel: %+v, want not_found", resp.Error)
	}
	if tc.reg.where("huge") != nil || tc.reg.where("nosuchmodel") != nil {
		t.Error("refused models were activated")
	}
	resp = ask(t, tc.members[2], "m01")
	if resp.Error != nil || resp.ServedBy == "" {
		t.Errorf("m01: %+v", resp)
	}
}

func TestLookupJoinKeepsAndLeaveMoves(t *testing.T) {
	sizes := map[string]int64{}
	for i := 0; i < 30; i++ {
		sizes[fmt.Sprintf("m%02d", i)] = 10
	}
	tc := newTestCluster(t)
	a := tc.start(&fakeSource{budget: 1000, sizes: sizes})
	b := tc.start(&fakeSource{budget: 1000, sizes: sizes})
	tc.waitMembers(2)
	before := map[string]string{}
	for id := range sizes {
		before[id] = ask(t, a, id).ServedBy
	}
	spawns := tc.reg.spawns.Load()

	// A member joins: nothing stops, nothing moves, every lookup still
	// finds the same activation (the new owners learnt it at hand-off).
	c := tc.start(&fakeSource{budget: 1000, sizes: sizes})
	tc.waitMembers(3)
	for id := range sizes {
		c.Cluster.PidCache.Remove(id, KindModel)
		if got := ask(t, c, id).ServedBy; got != before[id] {
			t.Errorf("%s served by %s after the join, was %s", id, got, before[id])
		}
	}
	if n := tc.reg.spawns.Load(); n != spawns {
		t.Errorf("%d activations after the join, want %d (none)", n, spawns)
	}

	// A member leaves: its models come back on the others, once each.
	var gone []string
	for id, at := range before {
		if at == b.Address() {
			gone = append(gone, id)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx, false); err != nil {
		t.Fatal(err)
	}
	tc.members = []*Member{a, c}
	tc.agent.DeregisterService(b.System.ID)
	tc.waitMembers(2)
	for id := range sizes {
		a.Cluster.PidCache.Remove(id, KindModel)
		got := ask(t, a, id).ServedBy
		if got == b.Address() {
			t.Errorf("%s still served by the member that left", id)
		}
	}
	for id := range sizes {
		if w := tc.reg.where(id); len(w) != 1 {
			t.Errorf("%s active on %v after the leave", id, w)
		}
	}
	if len(gone) == 0 {
		t.Log("the member that left hosted nothing (placement put everything elsewhere)")
	}
}

// Two activations of one identity (as after a split view): the directory
// hears of the second, keeps the older and stops the other.
func TestLookupDuplicateResolved(t *testing.T) {
	tc, first, owner := threeWithOne(t, "dup")
	var q, r *Member // q: hosts the duplicate; r: asks for it (not the owner)
	for _, m := range tc.members {
		if m.Address() != first && q == nil {
			q = m
		}
	}
	for _, m := range tc.members {
		if m.Address() != owner {
			r = m
		}
	}
	activateBehindDirectory(t, r, q, "dup")
	dups := func() (n int64) {
		for _, m := range tc.members {
			n += m.PlacementStats().Duplicates
		}
		return n
	}
	waitCond(t, "the duplicate activated, found and stopped", func() bool {
		w := tc.reg.where("dup")
		return tc.reg.spawns.Load() == 2 && dups() > 0 && len(w) == 1 && w[0] == first
	})
	if n := dups(); n != 1 {
		t.Errorf("%d duplicates counted, want 1", n)
	}
	tc.servedEverywhereBy(t, "dup", first)
}

// An activation the directory never heard of (its answer was lost: the
// directory's own request, so the activator announces nothing) is found by
// the activators' anti-entropy round and stopped; the one the directory
// hands out stays.
func TestLookupAntiEntropyStopsUnknownDuplicate(t *testing.T) {
	tc, first, ownerAddr := threeWithOne(t, "lost")
	var owner, q *Member
	for _, m := range tc.members {
		if m.Address() == ownerAddr {
			owner = m
		}
	}
	for _, m := range tc.members {
		if m.Address() != first && q == nil {
			q = m
		}
	}
	// As the owner's directory would ask, but the answer goes nowhere.
	activateBehindDirectory(t, owner, q, "lost")
	waitCond(t, "the unknown duplicate spawned, found and stopped", func() bool {
		w := tc.reg.where("lost")
		return tc.reg.spawns.Load() == 2 && len(w) == 1 && w[0] == first
	})
	var dups int64
	for _, m := range tc.members {
		dups += m.PlacementStats().Duplicates
	}
	if dups != 1 {
		t.Errorf("%d duplicates counted, want 1", dups)
	}
	tc.servedEverywhereBy(t, "lost", first)
}

// A directory whose entry names an activation that is gone (its
// Terminated never arrived) does not stop the live activation anti-entropy
// reports: after three rounds without news of the one it knew, it takes the
// live one.
func TestLookupAntiEntropyReplacesStaleEntry(t *testing.T) {
	tc, host, ownerAddr := threeWithOne(t, "stale")
	var owner, q *Member
	for _, m := range tc.members {
		if m.Address() == ownerAddr {
			owner = m
		}
		if m.Address() != host && m.Address() != ownerAddr {
			q = m
		}
	}
	if q == nil { // the owner hosts it: any other member
		for _, m := range tc.members {
			if m.Address() != host && q == nil {
				q = m
			}
		}
	}
	// Make the directory believe in an activation that does not exist (an
	// older one, on the host's member): it switches to it and stops the
	// real one.
	owner.System.Root.Send(placerAt(ownerAddr), &wire.Announce{From: host, Activations: []*wire.Activation{{
		Identity: "stale", Pid: &wire.Pid{Address: host, Id: "gone$1"}, Bytes: 10, SinceUnixMs: 1}}})
	waitCond(t, "the real activation stopped", func() bool { return len(tc.reg.where("stale")) == 0 })
	// While the entry was confirmed recently (by that announcement) a live
	// one is a duplicate and is stopped; it is made again until the entry
	// has gone three rounds without news and the live one is taken.
	adopted := owner.PlacementStats().Adopted
	testenv.WaitFor(t, 30*time.Second, "the live activation adopted", func() bool {
		w := tc.reg.where("stale")
		if len(w) == 0 {
			activateBehindDirectory(t, owner, q, "stale")
			return false
		}
		return owner.PlacementStats().Adopted > adopted && len(w) == 1 && w[0] == q.Address()
	})
	tc.servedEverywhereBy(t, "stale", q.Address())
}

// servedEverywhereBy checks that a fresh lookup from every member finds
// identity's activation on the member at want.
func (tc *testCluster) servedEverywhereBy(t *testing.T, identity, want string) {
	t.Helper()
	for _, m := range tc.members {
		m.Cluster.PidCache.Remove(identity, KindModel)
		if got := ask(t, m, identity).ServedBy; got != want {
			t.Errorf("%s served by %s, want the activation on %s", identity, got, want)
		}
	}
}

// threeWithOne starts three members and activates identity: it returns
// the address of the member hosting it and that of its directory owner.
func threeWithOne(t *testing.T, identity string) (tc *testCluster, host, owner string) {
	t.Helper()
	tc = newTestCluster(t)
	for i := 0; i < 3; i++ {
		tc.start(&fakeSource{budget: 1000, sizes: map[string]int64{identity: 10}})
	}
	tc.waitMembers(3)
	host = ask(t, tc.members[0], identity).ServedBy
	return tc, host, tc.members[0].lookup.topo.Load().owner(identity, KindModel)
}

// activateBehindDirectory has from ask on's activator for identity
// directly, as a directory would, without the directory recording it.
func activateBehindDirectory(t *testing.T, from, on *Member, identity string) {
	t.Helper()
	res, err := from.System.Root.RequestFuture(placerAt(on.Address()), &wire.ActivateRequest{Identity: identity, Kind: KindModel, Bytes: 10}, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if resp, ok := res.(*wire.ActivateResponse); !ok || resp.Pid == nil {
		t.Fatalf("activate: %+v", res)
	}
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, what, cond)
}

func TestRouteSpreadsOverReplicas(t *testing.T) {
	l := NewLookup(PlacementConfig{}, nil, nil)
	l.replicas.Store(&wire.Replicas{Replicas: map[string]int32{}})
	if id, done := l.Route("solo"); id != "solo" {
		t.Fatalf("no replicas: routed to %s", id)
	} else {
		done()
	}
	l.replicas.Store(&wire.Replicas{Replicas: map[string]int32{"hot": 3}})
	// Requests that never end: power of two choices keeps the
	// outstanding counts within one of each other... nearly.
	seen := map[string]int{}
	var dones []func()
	for i := 0; i < 400; i++ {
		id, done := l.Route("hot")
		seen[id]++
		dones = append(dones, done)
	}
	if len(seen) != 4 {
		t.Fatalf("routed to %v, want hot and hot@1..hot@3", seen)
	}
	for id, n := range seen {
		if n < 80 || n > 120 {
			t.Errorf("%s got %d of 400 outstanding requests", id, n)
		}
	}
	for _, d := range dones {
		d()
		d() // idempotent
	}
	for _, id := range []string{"hot", "hot@1", "hot@2", "hot@3"} {
		if n := l.outstanding(id).Load(); n != 0 {
			t.Errorf("%s: %d outstanding after every request ended", id, n)
		}
	}
}
