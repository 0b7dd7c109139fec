package cluster

import (
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/manta-ml/manta/cluster/internal/wire"
)

// Messages the placement actor sends itself (never cross a process).
type (
	topologyChanged struct {
		t    *topology
		left []*pcluster.Member
	}
	estimated struct {
		identity string
		attempt  int
		bytes    int64
		err      error
	}
	activated struct {
		identity string
		attempt  int
		target   string
		resp     *wire.ActivateResponse
		err      error
	}
	moved struct {
		identity string
		attempt  int
		target   string
		resp     *wire.ActivateResponse
		err      error
		reply    *actor.PID
	}
	warmed struct {
		identity string
		pid      *actor.PID
		err      error
	}
	placerTick struct{}
)

// placer is a member's placement actor: the directory of the identities
// this member owns (rendezvous) and the activator of the activations placed
// on it (directory.go, activator.go; dirsync.go keeps them in step). All
// its state is its own: it runs on one goroutine at a time.
type placer struct {
	l    *Lookup
	self *actor.PID
	rng  *rand.Rand

	topo *topology
	// directory
	dir          map[string]*dirEntry
	held         []heldLookup
	announced    map[uint64]map[string]bool // topology hash -> addresses that re-announced
	syncHash     uint64
	syncUntil    time.Time
	suspects     map[string]time.Time // members that did not answer, until
	recent       map[string][]recentPlacement
	estimates    map[string]cachedEstimate
	pendingMoves []pendingMove
	// activator
	local    map[string]*localAct
	byPID    map[string]string // pid id -> identity
	ticker   *time.Ticker
	tickDone chan struct{} // ends the ticker's goroutine
	// committed is the sum of the local activations' bytes.
	committed int64
	// order holds the local activations for the anti-entropy round robin
	// (cursor is the next to announce); fresh the ones started in the
	// last freshFor, oldest first, announced on every tick.
	order  []*localAct
	cursor int
	fresh  []*localAct
	// pending holds the round robin's announcements per directory owner
	// until the owner's batch is aeFlush old (or fresh announcements go
	// to it anyway): one message per owner every few seconds instead of
	// one per owner on every tick.
	pending map[string]*pendingAnnounce
}

// tickEvery is the placer's tick: suspects expire, held lookups are
// retried, and a slice of the anti-entropy round goes out.
const tickEvery = 250 * time.Millisecond

func newPlacer(l *Lookup) *placer {
	return &placer{
		l:         l,
		rng:       rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)),
		topo:      newTopology(nil),
		dir:       map[string]*dirEntry{},
		announced: map[uint64]map[string]bool{},
		suspects:  map[string]time.Time{},
		recent:    map[string][]recentPlacement{},
		estimates: map[string]cachedEstimate{},
		local:     map[string]*localAct{},
		byPID:     map[string]string{},
	}
}

func (p *placer) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.self = ctx.Self()
		p.ticker = time.NewTicker(tickEvery)
		p.tickDone = make(chan struct{})
		self, sys, tick, done := p.self, ctx.ActorSystem(), p.ticker, p.tickDone
		go func() {
			for {
				select {
				case <-tick.C:
					sys.Root.Send(self, &placerTick{})
				case <-done: // Ticker.Stop does not close tick.C
					return
				}
			}
		}()
	case *actor.Stopping:
		if p.ticker != nil {
			p.ticker.Stop()
			close(p.tickDone)
		}
		for _, la := range p.local {
			if la.cancelWarm != nil {
				la.cancelWarm()
			}
		}
	// directory
	case *wire.LookupRequest:
		p.onLookup(ctx, m, ctx.Sender())
	case *estimated:
		p.onEstimated(ctx, m)
	case *activated:
		p.onActivated(ctx, m)
	case *wire.Announce:
		p.onAnnounce(ctx, m)
	case *wire.Terminated:
		p.onDirTerminated(m)
	case *wire.MoveRequest:
		p.onMove(ctx, m)
	case *moved:
		p.onMoved(ctx, m)
	case *wire.ReplicasRequest:
		ctx.Respond(p.l.replicas.Load())
	case *wire.LoadsRequest:
		if m.Full {
			ctx.Respond(&wire.LoadsResponse{Loads: []*wire.Load{p.l.fullLoad()}})
			return
		}
		ctx.Respond(p.l.loadsResponse())
	// activator
	case *wire.ActivateRequest:
		p.onActivate(ctx, m)
	case *warmed:
		p.onWarmed(ctx, m)
	case *actor.Terminated:
		p.onChildTerminated(ctx, m.Who)
	case *wire.Stop:
		p.onStop(ctx, m)
	// both
	case *topologyChanged:
		p.onTopology(ctx, m)
	case *placerTick:
		p.onTick(ctx)
	}
}

func pidOf(p *wire.Pid) *actor.PID {
	if p == nil {
		return nil
	}
	return actor.NewPID(p.Address, p.Id)
}

func wirePID(p *actor.PID) *wire.Pid {
	if p == nil {
		return nil
	}
	return &wire.Pid{Address: p.Address, Id: p.Id}
}

func placerAt(addr string) *actor.PID { return actor.NewPID(addr, placerName) }

func (p *placer) onTick(ctx actor.Context) {
	now := time.Now()
	for addr, until := range p.suspects {
		if now.After(until) {
			delete(p.suspects, addr)
		}
	}
	for id, c := range p.estimates {
		if now.Sub(c.at) > time.Minute {
			delete(p.estimates, id)
		}
	}
	horizon := now.Add(-10 * time.Second)
	for addr, rs := range p.recent {
		keep := rs[:0]
		for _, r := range rs {
			if r.at.After(horizon) {
				keep = append(keep, r)
			}
		}
		if len(keep) == 0 {
			delete(p.recent, addr)
		} else {
			p.recent[addr] = keep
		}
	}
	p.antiEntropy(ctx, now)
	p.releaseHeld(ctx)
}
