package cluster

import (
	"log/slog"
	"math"
	"sort"
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
	for _, a := range v.hosts[baseID(identity)] {
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
			b := baseID(h.Identity)
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
			ld := l.ownLoad()
			if last == nil || changed(last, ld) || time.Since(lastSent) > 5*time.Second {
				l.cluster.Gossip.SetState(loadKey, ld)
				last, lastSent = ld, time.Now()
			}
			l.readGossip(ld)
		case <-reb.C:
			if !l.client && !l.cfg.Rebalance.Disabled && l.topo.Load().leader == l.self {
				rb.cycle()
			}
		}
	}
}

// ownLoad is this member's load now.
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
	for _, a := range *l.local.Load() {
		h := &wire.Hosted{Identity: a.Identity, Bytes: a.Bytes, SinceUnixMs: a.SinceUnixMs}
		if m, ok := src.Models[baseID(a.Identity)]; ok {
			h.Rate = m.Rate
			if m.Bytes > 0 {
				h.Bytes = m.Bytes
			}
		}
		ld.Active += a.Bytes
		ld.Hosted = append(ld.Hosted, h)
	}
	return ld
}

// changed reports whether b differs from a beyond noise (rates within
// 5%).
func changed(a, b *wire.Load) bool {
	if a.Budget != b.Budget || a.Used != b.Used || a.Pinned != b.Pinned || a.Active != b.Active ||
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

// readGossip refreshes the load view and the replica table from gossip.
func (l *Lookup) readGossip(own *wire.Load) {
	t := l.topo.Load()
	states, err := l.cluster.Gossip.GetState(loadKey)
	if err != nil {
		l.logger.Debug("placement: read gossip", slog.Any("error", err))
		return
	}
	loads := []*wire.Load{own}
	for id, kv := range states {
		if id == l.system.ID || kv == nil || kv.Value == nil {
			continue
		}
		var ld wire.Load
		if err := kv.Value.UnmarshalTo(&ld); err != nil {
			continue
		}
		if t.alive(ld.Address) {
			loads = append(loads, &ld)
		}
	}
	sort.Slice(loads, func(i, j int) bool { return loads[i].Address < loads[j].Address })
	l.loads.Store(newLoadView(loads))

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
