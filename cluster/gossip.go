package cluster

import (
	"log/slog"
	"math"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/manta-ml/manta/cluster/internal/wire"
)

// loadView is the members' loads as last read from gossip.
type loadView struct {
	at     time.Time
	byAddr map[string]*wire.Load
	rates  map[string]float64  // identity -> requests/s on its host
	hosts  map[string][]string // model id -> addresses hosting it or a replica
	where  map[string]string   // identity -> address
	bytes  map[string]int64    // model id -> bytes of an activation
}

// replicaHosts lists the members hosting other replicas of identity's
// model (to be avoided when placing identity).
func (v *loadView) replicaHosts(identity string) []string {
	var out []string
	for _, a := range v.hosts[ModelOf(identity)] {
		if v.where[identity] != a {
			out = append(out, a)
		}
	}
	return out
}

func newLoadView(loads []*wire.Load) *loadView {
	v := &loadView{at: time.Now(), byAddr: map[string]*wire.Load{}, rates: map[string]float64{},
		hosts: map[string][]string{}, where: map[string]string{}, bytes: map[string]int64{}}
	for _, ld := range loads {
		v.byAddr[ld.Address] = ld
		for _, h := range ld.Hosted {
			v.rates[h.Identity] = h.Rate
			v.where[h.Identity] = ld.Address
			b := ModelOf(h.Identity)
			v.hosts[b] = append(v.hosts[b], ld.Address)
			v.bytes[b] = max(v.bytes[b], h.Bytes)
		}
	}
	return v
}

// begin starts the background loops: gossip of loads, the replica table,
// the rebalancer. It runs after the member (or client) has started, so
// the gossiper is ready.
func (l *Lookup) begin() {
	l.wg.Add(1)
	go l.loops()
}

func (l *Lookup) loops() {
	defer l.wg.Done()
	load := time.NewTicker(l.cfg.LoadInterval)
	defer load.Stop()
	reb := time.NewTicker(l.cfg.Rebalance.Interval)
	defer reb.Stop()
	var (
		last     *wire.Load
		lastSent time.Time
		rb       = newRebalancer(l)
		polled   time.Time
		summed   time.Time
	)
	for {
		select {
		case <-l.stop:
			return
		case <-load.C:
			if l.client {
				if time.Since(polled) >= time.Second {
					polled = time.Now()
					l.pollReplicas()
				}
				continue
			}
			if time.Since(summed) >= l.summaryEvery() {
				summed = time.Now()
				l.summarize()
			}
			ld := l.ownLoad()
			if last == nil || changed(last, ld) || time.Since(lastSent) > 5*time.Second {
				l.cluster.Gossip.SetState(loadKey, ld)
				last, lastSent = ld, time.Now()
			}
			l.readGossip(ld)
		case <-reb.C:
			// The cycle (a pull of members' loads, a plan) runs on a
			// goroutine of its own, one at a time: on this loop it held
			// back the leader's own gossip for as long as the pull took,
			// so under a cold burst every directory saw the leader's
			// stale, low figures and placed on it (a third more
			// activations than the others at 16 members × 10^5).
			if !l.client && !l.cfg.Rebalance.Disabled && l.topo.Load().leader == l.self && rb.cycling.CompareAndSwap(false, true) {
				l.wg.Add(1)
				go func() {
					defer l.wg.Done()
					defer rb.cycling.Store(false)
					rb.cycle()
				}()
			}
		}
	}
}

// summaryTopK is how many of a member's hottest models' activations its
// gossiped load names (beside every replica activation it hosts).
const summaryTopK = 32

// summaryEvery is how often the gossiped summary is rebuilt: the
// rebalancer's interval, the slowest timer that may walk a member's
// models.
func (l *Lookup) summaryEvery() time.Duration { return l.cfg.Rebalance.Interval }

// noteLocal is the placer's: an activation started (+1) or stopped (-1)
// here.
func (l *Lookup) noteLocal(a *wire.Activation, d int) {
	replica := strings.IndexByte(a.Identity, '@') >= 0
	if d > 0 {
		l.hosted.Store(a.Identity, a)
		if replica {
			l.replicaHosted.Store(a.Identity, a)
		}
	} else {
		// The placer is the only writer and holds one activation per
		// identity: the entry is this one.
		l.hosted.Delete(a.Identity)
		if replica {
			l.replicaHosted.Delete(a.Identity)
		}
	}
	l.nLocal.Add(int64(d))
	l.localBytes.Add(int64(d) * a.Bytes)
}

// modelLoads asks the Source for its per-model figures (a walk over the
// member's models: called once per summary interval and when the
// leader pulls).
func (l *Lookup) modelLoads() map[string]ModelLoad {
	switch src := l.source.(type) {
	case nil:
		return nil
	case ModelLoader:
		return src.ModelLoads()
	default:
		return src.Load().Models
	}
}

// hostedOf is a local activation with the rates and sizes of models.
func hostedOf(a *wire.Activation, models map[string]ModelLoad) *wire.Hosted {
	h := &wire.Hosted{Identity: a.Identity, Bytes: a.Bytes, SinceUnixMs: a.SinceUnixMs}
	if m, ok := models[ModelOf(a.Identity)]; ok {
		h.Rate = m.Rate
		if m.Bytes > 0 {
			h.Bytes = m.Bytes
		}
	}
	return h
}

// summarize rebuilds the bounded summary: the activations here of the
// summaryTopK models with the highest rate, and every replica activation
// (their count is bounded by the hot models times MaxReplicas).
func (l *Lookup) summarize() {
	models := l.modelLoads()
	type hot struct {
		id   string
		rate float64
	}
	var hots []hot
	for id, m := range models {
		if m.Rate > 0 {
			hots = append(hots, hot{id, m.Rate})
		}
	}
	sort.Slice(hots, func(i, j int) bool {
		if hots[i].rate != hots[j].rate {
			return hots[i].rate > hots[j].rate
		}
		return hots[i].id < hots[j].id
	})
	if len(hots) > summaryTopK {
		hots = hots[:summaryTopK]
	}
	seen := map[string]bool{}
	var out []*wire.Hosted
	for _, h := range hots {
		if v, ok := l.hosted.Load(h.id); ok {
			out = append(out, hostedOf(v.(*wire.Activation), models))
			seen[h.id] = true
		}
	}
	l.replicaHosted.Range(func(_, v any) bool {
		a := v.(*wire.Activation)
		if !seen[a.Identity] {
			out = append(out, hostedOf(a, models))
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Identity < out[j].Identity })
	l.summary.Store(&out)
}

// ownLoad is this member's load now: its figures and counters in O(1),
// and the summary of its activations (rebuilt by summarize).
func (l *Lookup) ownLoad() *wire.Load {
	ld := &wire.Load{MemberId: l.system.ID, Address: l.self, AtUnixMs: time.Now().UnixMilli(), Http: l.http()}
	var src SourceLoad
	if l.source != nil {
		src = l.source.Load()
	}
	ld.Budget, ld.Used, ld.Pinned = src.Budget, src.Used, src.Pinned
	ld.ModelsLoaded, ld.Rate = int32(src.ModelsLoaded), src.Rate
	st := l.Stats()
	ld.Counters = &wire.Counters{Placed: st.Placed, Refused: st.Refused, TooLarge: st.TooLarge, Duplicates: st.Duplicates,
		Adopted: st.Adopted, Activated: st.Activated, Plans: st.Plans, MovesPlanned: st.MovesPlanned, Moves: st.Moves,
		MoveFailures: st.MoveFailures, ReplicasAdded: st.ReplicasAdded, ReplicasGone: st.ReplicasGone, Lookups: st.Lookups}
	ld.Activations = int32(l.nLocal.Load())
	ld.Active = l.localBytes.Load()
	ld.Hosted = *l.summary.Load()
	return ld
}

// fullLoad is this member's load listing every activation (the answer to
// the leader's LoadsRequest{full}): a walk over the member's activations
// and models, made only when the rebalancer plans.
func (l *Lookup) fullLoad() *wire.Load {
	ld := l.ownLoad()
	models := l.modelLoads()
	ld.Hosted = nil
	ld.Full = true
	l.hosted.Range(func(_, v any) bool {
		ld.Hosted = append(ld.Hosted, hostedOf(v.(*wire.Activation), models))
		return true
	})
	sort.Slice(ld.Hosted, func(i, j int) bool { return ld.Hosted[i].Identity < ld.Hosted[j].Identity })
	var rate float64
	for _, h := range ld.Hosted {
		rate += h.Rate
	}
	if rate > 0 {
		ld.Rate = rate
	}
	return ld
}

// changed reports whether b differs from a beyond noise (rates within
// 5%).
func changed(a, b *wire.Load) bool {
	if a.Budget != b.Budget || a.Used != b.Used || a.Pinned != b.Pinned || a.Active != b.Active || a.Activations != b.Activations ||
		!proto.Equal(a.Counters, b.Counters) ||
		a.ModelsLoaded != b.ModelsLoaded || len(a.Hosted) != len(b.Hosted) || a.Http != b.Http || differ(a.Rate, b.Rate) {
		return true
	}
	for i := range a.Hosted {
		x, y := a.Hosted[i], b.Hosted[i]
		if x.Identity != y.Identity || x.Bytes != y.Bytes || differ(x.Rate, y.Rate) {
			return true
		}
	}
	return false
}

func differ(a, b float64) bool {
	return math.Abs(a-b) > 0.05*math.Max(math.Abs(a), math.Abs(b))+0.01
}

// gossipEntry is a member's gossiped load as parsed, and the sequence
// number of the gossip state it was parsed from.
type gossipEntry struct {
	seq int64
	ld  *wire.Load
}

// readGossip refreshes the load view and the replica table from gossip.
// A member's load is parsed only when its gossip sequence number moved;
// when no member's did, the topology is the same and this member's own
// load did not change beyond noise, the view's maps are kept and only
// its own entry is replaced: an idle cluster's round costs the gossip
// read and nothing per model.
func (l *Lookup) readGossip(own *wire.Load) {
	t := l.topo.Load()
	states, err := l.cluster.Gossip.GetState(loadKey)
	if err != nil {
		l.logger.Debug("placement: read gossip", slog.Any("error", err))
		return
	}
	if l.gossipSeen == nil {
		l.gossipSeen = map[string]gossipEntry{}
	}
	fresh := false
	loads := []*wire.Load{own}
	for id, kv := range states {
		if id == l.system.ID || kv == nil || kv.Value == nil {
			continue
		}
		e, ok := l.gossipSeen[id]
		if !ok || e.seq != kv.SequenceNumber {
			var ld wire.Load
			if err := kv.Value.UnmarshalTo(&ld); err != nil {
				continue
			}
			e = gossipEntry{seq: kv.SequenceNumber, ld: &ld}
			l.gossipSeen[id] = e
			fresh = true
		}
		if t.alive(e.ld.Address) {
			loads = append(loads, e.ld)
		}
	}
	for id := range l.gossipSeen {
		if _, ok := states[id]; !ok {
			delete(l.gossipSeen, id)
			fresh = true
		}
	}
	cur := l.loads.Load()
	if !fresh && cur != nil && t == l.lastTopo && l.lastOwn != nil && !changed(l.lastOwn, own) {
		v := *cur
		v.at = time.Now()
		v.byAddr = make(map[string]*wire.Load, len(cur.byAddr))
		for a, ld := range cur.byAddr {
			v.byAddr[a] = ld
		}
		v.byAddr[own.Address] = own
		l.loads.Store(&v)
	} else {
		sort.Slice(loads, func(i, j int) bool { return loads[i].Address < loads[j].Address })
		l.loads.Store(newLoadView(loads))
		l.lastOwn, l.lastTopo = own, t
	}

	reps, err := l.cluster.Gossip.GetState(replicasKey)
	if err != nil {
		return
	}
	leaderID := ""
	if m, ok := t.members[t.leader]; ok {
		leaderID = m.Id
	}
	if kv, ok := reps[leaderID]; ok && kv != nil && kv.Value != nil && t.leader != l.self {
		var r wire.Replicas
		cur := l.replicas.Load()
		if err := kv.Value.UnmarshalTo(&r); err == nil && (r.Version > cur.Version || r.Leader != cur.Leader) {
			l.replicas.Store(&r)
		}
	}
}

// pollReplicas is the replica table for a client (no gossip): asked of
// the leader.
func (l *Lookup) pollReplicas() {
	t := l.topo.Load()
	if t.leader == "" {
		return
	}
	res, err := l.ask(placerAt(t.leader), &wire.ReplicasRequest{}, l.cfg.FailureDetection, t, t.leader)
	if r, ok := res.(*wire.Replicas); ok && err == nil && r.Replicas != nil {
		l.replicas.Store(r)
	}
}

// publishReplicas is the leader's: store and gossip the table.
func (l *Lookup) publishReplicas(table map[string]int32) {
	cur := l.replicas.Load()
	r := &wire.Replicas{Replicas: table, Version: cur.Version + 1, Leader: l.self}
	l.replicas.Store(r)
	l.cluster.Gossip.SetState(replicasKey, r)
}

func (l *Lookup) loadsResponse() *wire.LoadsResponse {
	out := &wire.LoadsResponse{Replicas: l.replicas.Load()}
	if v := l.loads.Load(); v != nil {
		for _, ld := range v.byAddr {
			out.Loads = append(out.Loads, ld)
		}
	} else if !l.client {
		out.Loads = append(out.Loads, l.ownLoad())
	}
	sort.Slice(out.Loads, func(i, j int) bool { return out.Loads[i].Address < out.Loads[j].Address })
	return out
}

// http is this member's HTTP address, when the SDK told us (SetHTTP).
func (l *Lookup) http() string {
	if p := l.httpAddr.Load(); p != nil {
		return *p
	}
	return ""
}
