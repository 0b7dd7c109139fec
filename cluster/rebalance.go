package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/manta-ml/manta/cluster/internal/wire"
	"github.com/manta-ml/manta/cluster/placement"
)

// rebalancer runs on the leader (the member with the lowest id): every
// cycle it adjusts hot-model replicas, then plans at most K moves from
// the gossiped loads (placement.Planner: hysteresis, cool-down) and asks
// each move's directory to carry it out (make-before-break).
type rebalancer struct {
	l       *Lookup
	planner *placement.Planner
	leading bool
	table   map[string]int32 // model id -> extra replicas
	// replicas dropped from the table, stopped once callers have seen the
	// smaller table
	retiring map[string]time.Time
	// coldChecked is when a cold model's manifest bounds were last read
	// (coldDue).
	coldChecked map[string]time.Time
	busy        atomic.Bool
	// cycling: a cycle runs (on its own goroutine; one at a time, so the
	// rebalancer's state is only ever touched by one goroutine at once).
	cycling atomic.Bool
	wg      sync.WaitGroup
}

func newRebalancer(l *Lookup) *rebalancer {
	return &rebalancer{l: l, planner: placement.NewPlanner(l.cfg.Rebalance.Plan), retiring: map[string]time.Time{}}
}

func (rb *rebalancer) cycle() {
	l := rb.l
	if rb.busy.Load() {
		return // the last cycle's moves are still running
	}
	if len(l.topo.Load().byKind[KindModel]) < 2 {
		return // nothing to move between, no member for a replica
	}
	idle, balanced := rb.gossiped()
	if idle && balanced {
		l.count(func(s *Stats) { s.QuietCycles++ })
		return
	}
	var v *loadView
	if idle {
		// Only memory is out of balance (no model is hot, no replica
		// exists): the plan moves activations off the most loaded
		// members, so only theirs are pulled.
		v = rb.pullDonors()
		l.count(func(s *Stats) { s.PartialPulls++ })
	} else {
		v = rb.pull()
	}
	if v == nil {
		return
	}
	if !rb.leading {
		// A new leader recovers the table from the activations it sees.
		rb.leading = true
		rb.planner = placement.NewPlanner(l.cfg.Rebalance.Plan)
		rb.table = map[string]int32{}
		for identity := range v.where {
			if k := ReplicaOf(identity); k > 0 && int32(k) > rb.table[ModelOf(identity)] {
				rb.table[ModelOf(identity)] = int32(k)
			}
		}
		l.publishReplicas(copyTable(rb.table))
	}
	rb.retire()
	// Idle (no replica, the cluster's rate under a tenth of the hot rate):
	// no model can be hot, so there are no replicas to add or remove.
	if !idle && l.cfg.Rebalance.HotRate > 0 && len(v.byAddr) >= 2 {
		rb.adjustReplicas(v)
	}
	rb.plan(v)
}

// gossiped reads the members' gossiped loads alone (O(members)). idle:
// this leader already recovered the replica table and it is empty, no
// replica is retiring, and the whole cluster serves fewer requests than
// the lowest hot rate (so no model is hot and no replica is due).
// balanced: besides, the members' balance is within the planner's
// trigger while it is not engaged. Both: the cycle can do nothing and
// skips the pull of every member's full load (an idle cluster's leader
// walks no activations); idle alone: only memory can need moves.
func (rb *rebalancer) gossiped() (idle, balanced bool) {
	members, total, ok := rb.gossipMembers()
	if !ok || !rb.leading || len(rb.table) > 0 || len(rb.retiring) > 0 {
		return false, false
	}
	if hot := rb.l.cfg.Rebalance.HotRate; hot > 0 && total >= hot/10 {
		return false, false
	}
	if rb.planner.Engaged() {
		return true, false
	}
	b := placement.Balance(members)
	trig := rb.planner.Config.Trigger
	return true, b.Volume <= trig.Volume && b.Memory <= trig.Memory
}

// quiet reports that a cycle can do nothing (gossiped: idle and
// balanced).
func (rb *rebalancer) quiet() bool {
	idle, balanced := rb.gossiped()
	return idle && balanced
}

// gossipMembers is the model-hosting members as their gossip shows them,
// in topology order, and their total rate; ok is false while a member's
// load is unknown.
func (rb *rebalancer) gossipMembers() ([]placement.Member, float64, bool) {
	l := rb.l
	v := l.loads.Load()
	if v == nil {
		return nil, 0, false
	}
	var members []placement.Member
	var total float64
	for _, addr := range l.topo.Load().byKind[KindModel] {
		ld, ok := v.byAddr[addr]
		if !ok {
			return nil, 0, false
		}
		m := placement.Member{ID: addr, Budget: ld.Budget, Active: max(ld.Active, ld.Pinned), Models: int(ld.Activations), Rate: ld.Rate}
		if m.Budget <= 0 {
			m.Budget = unlimited
		}
		total += ld.Rate
		members = append(members, m)
	}
	return members, total, true
}

// pullDonors is pull for a plan that can only move memory: the full loads
// of the most loaded members (by memory over budget, as many as a plan
// can take moves from: MaxMoves+2), the gossiped figures of the rest.
// At 16 members × 10^5 activations the full pull every cycle was most of
// an idle leader's CPU while it evened out memory after a cold start.
func (rb *rebalancer) pullDonors() *loadView {
	l := rb.l
	members, _, ok := rb.gossipMembers()
	gv := l.loads.Load()
	if !ok || gv == nil {
		return nil
	}
	donors := donorsOf(members, rb.planner.Config.MaxMoves+2, rb.planner.Config.Target.Memory)
	t := l.topo.Load()
	loads := make([]*wire.Load, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		addr := m.ID
		switch {
		case !donors[addr]:
			// Gossiped: its figures, and a summary the plan may also
			// take items from (a donor's are what it needs).
			loads[i] = gv.byAddr[addr]
		case addr == l.self:
			loads[i] = l.fullLoad()
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := l.ask(placerAt(addr), &wire.LoadsRequest{Full: true}, l.cfg.FailureDetection, t, addr)
				if r, ok := res.(*wire.LoadsResponse); ok && err == nil && len(r.Loads) == 1 && r.Loads[0].Full {
					loads[i] = r.Loads[0]
				}
			}()
		}
	}
	wg.Wait()
	for i, ld := range loads {
		if ld == nil {
			l.logger.Debug("placement: rebalancer: no full load", slog.String("member", members[i].ID))
			return nil
		}
	}
	// Only byAddr is read from this view (plan, members): the per-identity
	// maps of newLoadView, over every pulled activation, are not built.
	v := &loadView{at: time.Now(), byAddr: make(map[string]*wire.Load, len(loads))}
	for _, ld := range loads {
		v.byAddr[ld.Address] = ld
	}
	return v
}

// donorsOf names the members a memory-only plan moves from: those whose
// memory utilisation (active bytes over budget) is above target times the
// cluster's, the most loaded first, at most k and at least two.
func donorsOf(members []placement.Member, k int, target float64) map[string]bool {
	util := func(m placement.Member) float64 { return float64(m.Active) / float64(m.Budget) }
	var active, budget float64
	for _, m := range members {
		active, budget = active+float64(m.Active), budget+float64(m.Budget)
	}
	mean := 0.0
	if budget > 0 {
		mean = active / budget
	}
	order := make([]int, len(members))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return util(members[order[a]]) > util(members[order[b]]) })
	donors := map[string]bool{}
	for n, i := range order[:max(0, min(len(order), k))] {
		if n >= 2 && util(members[i]) <= mean*target {
			break
		}
		donors[members[i].ID] = true
	}
	return donors
}

func copyTable(t map[string]int32) map[string]int32 {
	out := make(map[string]int32, len(t))
	for k, v := range t {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

// adjustReplicas gives a model whose total rate exceeds the hot rate per
// activation more replicas (up to MaxReplicas), and takes one away when
// the remaining activations would serve under 60% of it each. The hot
// rate is HotRate, lowered to half of one member's mean share of the
// cluster's requests when that is less (a model carrying several members'
// share is spread however busy the cluster is), but never under a tenth
// of HotRate (no replicas for models with little traffic). The simulator
// (internal/placesim, `manta bench placement`) applies the same rule.
func (rb *rebalancer) adjustReplicas(v *loadView) {
	l := rb.l
	hot, maxK := hotRate(l.cfg.Rebalance.HotRate, v), int32(l.cfg.Rebalance.MaxReplicas)
	rates := map[string]float64{}
	for identity, r := range v.rates {
		rates[ModelOf(identity)] += r
	}
	for id := range rb.table {
		if _, ok := rates[id]; !ok {
			rates[id] = 0
		}
	}
	ids := make([]string, 0, len(rates))
	for id := range rates {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	changed := false
	var grow []string
	bounder, _ := l.source.(ReplicaBounder)
	// Manifest bounds are read for the models that are hot or replicated
	// now, and for a rotating slice of the others (coldBoundsPerCycle a
	// cycle): a cycle never reads every model's manifest.
	cold := 0
	for _, id := range ids {
		r, k := rates[id], rb.table[id]
		want := min(max(int32(math.Ceil(r/hot))-1, 0), maxK)
		check := want > 0 || k > 0
		if !check && bounder != nil {
			if cold < coldBoundsPerCycle && rb.coldDue(id) {
				cold++
				check = true
			}
		}
		if bounder != nil && check {
			// the manifest's min_replicas/max_replicas override (in
			// activations; replicas are the ones beyond the first)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			lo, hi := bounder.ReplicaBounds(ctx, id)
			cancel()
			if hi > 0 {
				want = min(want, int32(hi-1))
			}
			if lo > 1 {
				want = max(want, int32(lo-1))
			}
		}
		switch {
		case want > k:
			for j := k + 1; j <= want; j++ {
				grow = append(grow, ReplicaIdentity(id, int(j)))
			}
			rb.table[id] = want
			changed = true
			l.logger.Info("placement: adding replicas", slog.String("model", id), slog.Float64("rate", r), slog.Int("replicas", int(want)))
		case k > want && r < 0.6*hot*float64(k):
			rb.table[id] = k - 1
			if k-1 == 0 {
				delete(rb.table, id)
			}
			rb.retiring[ReplicaIdentity(id, int(k))] = time.Now().Add(2*l.cfg.Rebalance.Interval/3 + 2*time.Second)
			changed = true
			l.logger.Info("placement: removing a replica", slog.String("model", id), slog.Float64("rate", r), slog.Int("replicas", int(k-1)))
		}
	}
	// Activate new replicas before callers are told of them, each on a
	// member hosting no other activation of its model (the leader chooses:
	// the directories of id@1, id@2, ... would each see stale gossip).
	chosen := map[string][]string{}
	prefer := map[string]string{}
	members := rb.members(v)
	for _, identity := range grow {
		id := ModelOf(identity)
		avoid := append(append([]string(nil), v.hosts[id]...), chosen[id]...)
		x := placement.Model{Identity: identity, Bytes: v.bytes[id], Rate: hot, Avoid: avoid}
		if i, err := placement.Choose(members, x, l.cfg.Weights, 0, nil); err == nil && !slices.Contains(avoid, members[i].ID) {
			prefer[identity] = members[i].ID
			chosen[id] = append(chosen[id], members[i].ID)
			members[i].Active += x.Bytes
			members[i].Rate += x.Rate
			members[i].Models++
		}
	}
	var wg sync.WaitGroup
	for _, identity := range grow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &wire.LookupRequest{Identity: identity, Kind: KindModel, Prefer: prefer[identity]}
			if _, err := l.resolve(req); err != nil {
				l.logger.Warn("placement: activate replica", slog.String("identity", identity), slog.Any("error", err))
				return
			}
			l.count(func(s *Stats) { s.ReplicasAdded++ })
		}()
	}
	wg.Wait()
	if changed {
		l.publishReplicas(copyTable(rb.table))
	}
}

// hotRate is the rate one activation is meant to serve (adjustReplicas).
func hotRate(base float64, v *loadView) float64 {
	var total float64
	for _, ld := range v.byAddr {
		total += ld.Rate
	}
	if n := len(v.byAddr); n > 0 && total > 0 {
		share := 0.5 * total / float64(n)
		return max(min(base, share), base/10)
	}
	return base
}

// coldBoundsPerCycle is how many models that are neither hot nor
// replicated the leader reads manifest bounds for in one cycle.
const coldBoundsPerCycle = 64

// coldRecheck is how long a cold model's bounds are trusted.
const coldRecheck = 10 * time.Minute

// coldDue reports whether cold model id's bounds are due a read (and
// records the read).
func (rb *rebalancer) coldDue(id string) bool {
	if rb.coldChecked == nil {
		rb.coldChecked = map[string]time.Time{}
	}
	if at, ok := rb.coldChecked[id]; ok && time.Since(at) < coldRecheck {
		return false
	}
	rb.coldChecked[id] = time.Now()
	return true
}

// retire stops replicas whose removal callers have had time to see.
func (rb *rebalancer) retire() {
	l := rb.l
	now := time.Now()
	for identity, at := range rb.retiring {
		if now.Before(at) {
			continue
		}
		delete(rb.retiring, identity)
		if int32(ReplicaOf(identity)) <= rb.table[ModelOf(identity)] {
			continue // wanted again meanwhile
		}
		resp, err := l.Resolve(identity, KindModel, true)
		if err != nil || resp.Pid == nil {
			continue
		}
		l.system.Root.Send(placerAt(resp.Pid.Address), &wire.Stop{Identity: identity, Pid: resp.Pid, Reason: "replica no longer needed"})
		l.count(func(s *Stats) { s.ReplicasGone++ })
	}
}

// pull asks every model-hosting member for its full load (every
// activation with its rate and size): the per-model picture the leader
// plans from, gathered once per cycle instead of gossiped by every member
// every round. nil when a member does not answer (no decision on half a
// picture).
func (rb *rebalancer) pull() *loadView {
	l := rb.l
	t := l.topo.Load()
	addrs := t.byKind[KindModel]
	loads := make([]*wire.Load, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		if addr == l.self {
			loads[i] = l.fullLoad()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := l.ask(placerAt(addr), &wire.LoadsRequest{Full: true}, l.cfg.FailureDetection, t, addr)
			if r, ok := res.(*wire.LoadsResponse); ok && err == nil && len(r.Loads) == 1 && r.Loads[0].Full {
				loads[i] = r.Loads[0]
			}
		}()
	}
	wg.Wait()
	for i, ld := range loads {
		if ld == nil {
			l.logger.Debug("placement: rebalancer: no full load", slog.String("member", addrs[i]))
			return nil
		}
	}
	return newLoadView(loads)
}

// members is the model-hosting members with a known load, their Rate the
// sum of their activations' rates; nil if a member's load is unknown.
func (rb *rebalancer) members(v *loadView) []placement.Member {
	var members []placement.Member
	for _, addr := range rb.l.topo.Load().byKind[KindModel] {
		ld, ok := v.byAddr[addr]
		if !ok {
			return nil // no decision on half a picture
		}
		m := placement.Member{ID: addr, Budget: ld.Budget, Active: max(ld.Active, ld.Pinned), Models: int(ld.Activations)}
		if m.Budget <= 0 {
			m.Budget = unlimited
		}
		if ld.Full {
			for _, h := range ld.Hosted {
				m.Rate += h.Rate
			}
		} else {
			m.Rate = ld.Rate // gossiped (pullDonors): Hosted is a summary
		}
		members = append(members, m)
	}
	return members
}

// plan runs one planner cycle and starts the moves.
func (rb *rebalancer) plan(v *loadView) {
	l := rb.l
	members := rb.members(v)
	if len(members) < 2 {
		return
	}
	var items []placement.Item
	for i, m := range members {
		for _, h := range v.byAddr[m.ID].Hosted {
			items = append(items, placement.Item{Identity: h.Identity, Member: i, Bytes: h.Bytes, Rate: h.Rate,
				// A replicated model stays put: its replicas spread it.
				Frozen: ReplicaOf(h.Identity) > 0 || rb.table[ModelOf(h.Identity)] > 0})
		}
	}
	before := placement.Balance(members)
	moves := rb.planner.Cycle(members, items)
	if len(moves) == 0 {
		return
	}
	after := placement.Balance(members)
	l.count(func(s *Stats) { s.Plans++; s.MovesPlanned += int64(len(moves)) })
	l.logger.Info("placement: rebalance plan",
		slog.Int("moves", len(moves)),
		slog.String("volume max/mean", fmt.Sprintf("%.3f -> %.3f", before.Volume, after.Volume)),
		slog.String("memory max/mean", fmt.Sprintf("%.3f -> %.3f", before.Memory, after.Memory)))
	rb.busy.Store(true)
	rb.wg.Add(1)
	go func() {
		defer rb.wg.Done()
		defer rb.busy.Store(false)
		var wg sync.WaitGroup
		for _, mv := range moves {
			wg.Add(1)
			go func() {
				defer wg.Done()
				to := members[mv.To].ID
				tt := l.topo.Load()
				owner := tt.owner(mv.Identity, KindModel)
				if owner == "" {
					return
				}
				res, err := l.ask(placerAt(owner), &wire.MoveRequest{Identity: mv.Identity, To: to}, l.cfg.LoadTimeout, tt, owner)
				r, _ := res.(*wire.MoveResponse)
				switch {
				case err != nil:
					l.logger.Warn("placement: move", slog.String("identity", mv.Identity), slog.String("to", to), slog.Any("error", err))
				case r == nil || !r.Ok:
					msg := ""
					if r != nil {
						msg = r.Message
					}
					l.logger.Info("placement: move not made", slog.String("identity", mv.Identity), slog.String("to", to), slog.String("why", msg))
				}
			}()
		}
		wg.Wait()
	}()
}
