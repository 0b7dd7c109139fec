package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/manta-ml/manta/cluster/internal/wire"
)

// The placer as activator: the activations placed on this member, their
// warm-up, their end and the books the gossip reads.

// localAct is one activation spawned on this member.
type localAct struct {
	identity, kind string
	pid            *actor.PID
	bytes          int64
	since          int64
	// warm requests wait for the model to load (a move)
	warmWaiters []*actor.PID
	cancelWarm  context.CancelFunc
	// idx is la's place in placer.order (the anti-entropy round robin);
	// owner is its directory owner in the topology with hash ownerOf.
	idx     int
	owner   string
	ownerOf uint64
	// announcedFresh is how many of the freshAt announcements went out.
	announcedFresh int
}

// addLocal records an activation spawned here: the activator's books,
// the anti-entropy round and the Lookup's counters, in O(1).
func (p *placer) addLocal(la *localAct) {
	p.local[la.identity] = la
	p.byPID[la.pid.Id] = la.identity
	p.committed += la.bytes
	la.idx = len(p.order)
	p.order = append(p.order, la)
	p.fresh = append(p.fresh, la)
	p.l.noteLocal(p.activation(la), +1)
}

// removeLocal forgets an activation that stopped, in O(1).
func (p *placer) removeLocal(la *localAct) {
	delete(p.local, la.identity)
	p.committed -= la.bytes
	if i := la.idx; i < len(p.order) && p.order[i] == la {
		last := len(p.order) - 1
		p.order[i] = p.order[last]
		p.order[i].idx = i
		p.order[last] = nil
		p.order = p.order[:last]
	}
	p.l.noteLocal(p.activation(la), -1)
}

// ownerOf is la's directory owner in the current topology (cached: the
// rendezvous hash costs one hash per member).
func (p *placer) ownerOf(la *localAct) string {
	if la.ownerOf != p.topo.hash || la.owner == "" {
		la.owner, la.ownerOf = p.topo.owner(la.identity, la.kind), p.topo.hash
	}
	return la.owner
}

func (p *placer) onActivate(ctx actor.Context, req *wire.ActivateRequest) {
	sender := ctx.Sender()
	if la := p.local[req.Identity]; la != nil {
		if req.Warm && p.l.source != nil && !p.l.source.Loaded(ModelOf(req.Identity)) {
			la.warmWaiters = append(la.warmWaiters, sender)
			return
		}
		ctx.Respond(&wire.ActivateResponse{Pid: wirePID(la.pid), SinceUnixMs: la.since})
		return
	}
	if src := p.l.source; src != nil && req.Bytes > 0 {
		ld := src.Load()
		if ld.Budget > 0 {
			room := ld.Budget - max(p.committed, ld.Pinned)
			switch {
			case req.Bytes <= room:
			case req.Full && req.Bytes <= ld.Budget:
				// every member is full of activations: take it, and ask
				// the idle ones here to release their models
				if r, ok := src.(Reliever); ok {
					r.Relieve(req.Bytes - room)
				}
			default:
				ctx.Respond(&wire.ActivateResponse{Refused: true, Room: room,
					Message: fmt.Sprintf("%s needs %d bytes, %d free", req.Identity, req.Bytes, room)})
				return
			}
		}
	}
	kind, ok := p.l.cluster.TryGetClusterKind(req.Kind)
	if !ok {
		ctx.Respond(&wire.ActivateResponse{Refused: true, Message: "kind " + req.Kind + " is not hosted here"})
		return
	}
	ci := pcluster.NewClusterIdentity(req.Identity, req.Kind)
	pid, err := ctx.SpawnNamed(pcluster.WithClusterIdentity(kind.Props, ci), req.Identity+ctx.ActorSystem().ProcessRegistry.NextId())
	if err != nil {
		ctx.Respond(&wire.ActivateResponse{Refused: true, Message: err.Error()})
		return
	}
	kind.Inc()
	la := &localAct{identity: req.Identity, kind: req.Kind, pid: pid, bytes: req.Bytes, since: time.Now().UnixMilli()}
	p.addLocal(la)
	p.l.count(func(s *Stats) { s.Activated++ })
	// The directory that asked may not be the owner (views differ during
	// a topology change): tell the owner too, so it finds a duplicate.
	if owner := p.topo.owner(req.Identity, req.Kind); owner != "" && sender != nil && owner != sender.Address {
		ctx.Send(placerAt(owner), &wire.Announce{Topology: p.topo.hash, From: p.l.self,
			Activations: []*wire.Activation{p.activation(la)}})
	}
	if req.Warm && p.l.source != nil {
		la.warmWaiters = append(la.warmWaiters, sender)
		p.watchWarm(ctx, la)
		return
	}
	ctx.Respond(&wire.ActivateResponse{Pid: wirePID(pid), SinceUnixMs: la.since})
}

// watchWarm polls the cache until la's model is loaded (a model actor
// loads on activation), then answers the warm waiters.
func (p *placer) watchWarm(ctx actor.Context, la *localAct) {
	c, cancel := context.WithTimeout(context.Background(), p.l.cfg.LoadTimeout)
	la.cancelWarm = cancel
	self, sys, src, id, identity, pid := p.self, ctx.ActorSystem(), p.l.source, ModelOf(la.identity), la.identity, la.pid
	go func() {
		defer cancel()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for !src.Loaded(id) {
			select {
			case <-c.Done():
				sys.Root.Send(self, &warmed{identity: identity, pid: pid, err: fmt.Errorf("%s did not load: %w", identity, c.Err())})
				return
			case <-t.C:
			}
		}
		sys.Root.Send(self, &warmed{identity: identity, pid: pid})
	}()
}

func (p *placer) onWarmed(ctx actor.Context, m *warmed) {
	la := p.local[m.identity]
	if la == nil || !la.pid.Equal(m.pid) {
		return
	}
	la.cancelWarm = nil
	for _, w := range la.warmWaiters {
		if m.err != nil {
			ctx.Send(w, &wire.ActivateResponse{Refused: true, Message: m.err.Error()})
		} else {
			ctx.Send(w, &wire.ActivateResponse{Pid: wirePID(la.pid), SinceUnixMs: la.since})
		}
	}
	la.warmWaiters = nil
}

func (p *placer) activation(la *localAct) *wire.Activation {
	return &wire.Activation{Identity: la.identity, Pid: wirePID(la.pid), Bytes: la.bytes, SinceUnixMs: la.since,
		Member: p.l.system.ID}
}

func (p *placer) onChildTerminated(ctx actor.Context, who *actor.PID) {
	identity, ok := p.byPID[who.Id]
	if !ok {
		return
	}
	delete(p.byPID, who.Id)
	la := p.local[identity]
	if la == nil || !la.pid.Equal(who) {
		return
	}
	p.removeLocal(la)
	if la.cancelWarm != nil {
		la.cancelWarm()
	}
	for _, w := range la.warmWaiters {
		ctx.Send(w, &wire.ActivateResponse{Refused: true, Message: identity + " stopped before it loaded"})
	}
	if k, ok := p.l.cluster.TryGetClusterKind(la.kind); ok {
		k.Dec()
	}
	p.l.cluster.PidCache.RemoveByValue(identity, la.kind, who)
	if owner := p.ownerOf(la); owner != "" {
		ctx.Send(placerAt(owner), &wire.Terminated{Identity: identity, Pid: wirePID(who)})
	}
}

func (p *placer) onStop(ctx actor.Context, m *wire.Stop) {
	la := p.local[m.Identity]
	if la == nil || !la.pid.Equal(pidOf(m.Pid)) {
		return
	}
	p.l.logger.Info("placement: stopping activation", slog.String("identity", m.Identity), slog.String("reason", m.Reason))
	ctx.Poison(la.pid)
}
