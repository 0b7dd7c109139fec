package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster/internal/wire"
	"github.com/manta-ml/manta/cluster/placement"
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

// dirEntry is what a directory knows of one identity.
type dirEntry struct {
	identity, kind string
	pid            *actor.PID // nil while activating
	member         string     // address of the activation
	memberID       string
	bytes          int64
	since          int64 // unix ms, on the hosting member

	activating bool
	attempt    int // bumped by every (re)placement; stale results are recognised
	waiters    []*actor.PID
	tried      map[string]bool
	moving     bool
	moveTo     string
	prefer     string // the member the leader chose (a replica)
	full       bool   // placed while every member was full (ActivateRequest.Full)
	// confirmed is when an anti-entropy round last showed confirmedPID
	// (the activation handed out) alive on its member; doubted is since
	// when another activation was announced while doubtedPID was not
	// confirmed.
	confirmed, doubted       time.Time
	confirmedPID, doubtedPID *actor.PID
}

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

type heldLookup struct {
	req    *wire.LookupRequest
	sender *actor.PID
}

// placer is a member's placement actor: the directory of the identities
// this member owns (rendezvous) and the activator of the activations placed
// on it. All its state is its own: it runs on one goroutine at a time.
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

// pendingAnnounce is one owner's batch of periodic announcements, for the
// topology with hash topo.
type pendingAnnounce struct {
	topo  uint64
	since time.Time
	acts  []*localAct
}

// tickEvery is the placer's tick: suspects expire, held lookups are
// retried, and a slice of the anti-entropy round goes out.
const tickEvery = 250 * time.Millisecond

// staleAfter: a directory entry whose activation no anti-entropy round has
// shown for this long yields to a live activation another member announces
// (two periods: the activation handed out, if alive, is announced once in
// each).
func (p *placer) staleAfter() time.Duration { return 2*p.l.cfg.AntiEntropy + time.Second }

// freshFor: activations younger than this are re-announced at the ages in
// freshAt, not only once per anti-entropy period, since duplicates are
// born young (two placements during a hand-off, an answer the directory
// gave up on); a duplicate among them is stopped within a tick or two.
const freshFor = 5 * time.Second

// freshAt are the ages at which a young activation is announced: at
// once, then spaced out (four announcements, not one on every tick: a
// burst of cold activations costs its directories four messages each).
var freshAt = [...]time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 4 * time.Second}

// aeFlush is how long the round robin's announcements to one owner are
// gathered before they go out together.
func (p *placer) aeFlush() time.Duration { return p.l.cfg.AntiEntropy / 5 }

type recentPlacement struct {
	bytes int64
	at    time.Time
}

type cachedEstimate struct {
	bytes int64
	at    time.Time
}

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

// ---- directory ----

func (p *placer) owns(identity, kind string) bool {
	return p.topo.owner(identity, kind) == p.l.self
}

// synced reports whether first activations may proceed: every member has
// re-announced its activations since the last topology change, or the
// hand-off grace has passed.
func (p *placer) synced() bool {
	if time.Now().After(p.syncUntil) {
		return true
	}
	got := p.announced[p.topo.hash]
	for addr, m := range p.topo.members {
		if len(m.Kinds) > 0 && !got[addr] {
			return false
		}
	}
	return true
}

func (p *placer) answer(ctx actor.Context, to *actor.PID, e *dirEntry) {
	if to == nil {
		return
	}
	ctx.Send(to, &wire.LookupResponse{Pid: wirePID(e.pid), Replicas: int32(p.l.Replicas(ModelOf(e.identity))), Member: e.memberID})
}

func (p *placer) fail(ctx actor.Context, e *dirEntry, code api.ErrorCode, msg string) {
	for _, w := range e.waiters {
		ctx.Send(w, &wire.LookupResponse{Code: int32(code), Message: msg})
	}
	e.waiters = nil
	if p.dir[e.identity] == e {
		delete(p.dir, e.identity)
	}
}

func (p *placer) onLookup(ctx actor.Context, req *wire.LookupRequest, sender *actor.PID) {
	p.l.count(func(s *Stats) { s.Lookups++ })
	e := p.dir[req.Identity]
	if e != nil && e.pid != nil && (p.topo.alive(e.member) || e.member == p.l.self) {
		if s := pidOf(req.Suspect); s != nil && s.Equal(e.pid) && !e.moving {
			// The caller found this activation gone, perhaps: ask its
			// member again (idempotent: it answers with its live one, or
			// activates anew).
			target := e.member
			e.pid, e.activating, e.waiters, e.tried = nil, true, []*actor.PID{sender}, map[string]bool{target: true}
			e.attempt++
			p.activateOn(ctx, e, target, false)
			return
		}
		p.answer(ctx, sender, e)
		return
	}
	if req.NoActivate {
		ctx.Send(sender, &wire.LookupResponse{})
		return
	}
	if e != nil && e.activating {
		e.waiters = append(e.waiters, sender)
		return
	}
	if !p.synced() {
		p.held = append(p.held, heldLookup{req: req, sender: sender})
		return
	}
	e = &dirEntry{identity: req.Identity, kind: req.Kind, activating: true, waiters: []*actor.PID{sender}, tried: map[string]bool{},
		prefer: req.Prefer}
	p.dir[req.Identity] = e
	p.estimate(ctx, e)
}

// estimate finds e's memory estimate (cached for a minute) off the actor.
func (p *placer) estimate(ctx actor.Context, e *dirEntry) {
	e.attempt++
	if e.kind != KindModel || p.l.source == nil {
		p.place(ctx, e)
		return
	}
	id := ModelOf(e.identity)
	if c, ok := p.estimates[id]; ok && time.Since(c.at) < time.Minute {
		e.bytes = c.bytes
		p.place(ctx, e)
		return
	}
	self, sys, src, attempt, identity, wait := p.self, ctx.ActorSystem(), p.l.source, e.attempt, e.identity, p.l.cfg.FailureDetection
	go func() {
		c, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		n, err := src.Estimate(c, id)
		sys.Root.Send(self, &estimated{identity: identity, attempt: attempt, bytes: n, err: err})
	}()
}

func (p *placer) onEstimated(ctx actor.Context, m *estimated) {
	e := p.dir[m.identity]
	if e == nil || !e.activating || e.attempt != m.attempt {
		return
	}
	if m.err != nil {
		if errors.Is(m.err, api.ErrNotFound) {
			p.fail(ctx, e, api.ErrorCode_ERROR_CODE_NOT_FOUND, m.err.Error())
			return
		}
		// Size unknown (a store hiccup): place by the other figures; the
		// model actor reports what it finds.
		p.l.logger.Debug("placement: estimate", slog.String("identity", m.identity), slog.Any("error", m.err))
	} else {
		e.bytes = m.bytes
		p.estimates[ModelOf(m.identity)] = cachedEstimate{bytes: m.bytes, at: time.Now()}
	}
	p.place(ctx, e)
}

// view is the members as placement sees them: this member's own figures
// now, the others' gossiped loads plus (when guess) what this directory
// placed on them since their last gossip round; without suspects and the
// members in skip.
func (p *placer) view(kind string, skip map[string]bool, guess bool) []placement.Member {
	lv := p.l.loads.Load()
	var out []placement.Member
	now := time.Now()
	for _, addr := range p.topo.byKind[kind] {
		if skip[addr] {
			continue
		}
		if until, ok := p.suspects[addr]; ok && now.Before(until) {
			continue
		}
		m := placement.Member{ID: addr, Budget: unlimited}
		if addr == p.l.self {
			if src := p.l.source; src != nil {
				ld := src.Load()
				if ld.Budget > 0 {
					m.Budget = ld.Budget
				}
				m.Active = max(p.committed, ld.Pinned)
				m.Rate = ld.Rate
			}
			m.Models = len(p.local)
			out = append(out, m)
			continue
		}
		var at time.Time
		if lv != nil {
			if ld, ok := lv.byAddr[addr]; ok {
				if ld.Budget > 0 {
					m.Budget = ld.Budget
				}
				m.Active = max(ld.Active, ld.Pinned)
				m.Models = int(ld.Activations)
				m.Rate = ld.Rate
				at = time.UnixMilli(ld.AtUnixMs)
			}
		}
		if guess {
			for _, r := range p.recent[addr] {
				if r.at.After(at) {
					m.Active += r.bytes
					m.Models++
				}
			}
		}
		out = append(out, m)
	}
	return out
}

// unlimited is the budget of a member that reports none.
const unlimited = int64(1) << 60

func (p *placer) place(ctx actor.Context, e *dirEntry) {
	e.full = false
	members := p.view(e.kind, e.tried, true)
	x := placement.Model{Identity: e.identity, Bytes: e.bytes, Cold: true}
	lv := p.l.loads.Load()
	if lv != nil {
		if r, ok := lv.rates[e.identity]; ok {
			x.Rate, x.Cold = r, false
		}
		x.Avoid = lv.replicaHosts(e.identity)
	}
	if len(members) == 0 && len(e.tried) > 0 {
		// Every member was tried once: try the answering ones afresh.
		e.tried = map[string]bool{}
		members = p.view(e.kind, nil, true)
	}
	if e.prefer != "" && !e.tried[e.prefer] {
		for _, m := range members {
			if m.ID == e.prefer && m.Room() >= x.Bytes {
				p.placeOn(ctx, e, m.ID)
				return
			}
		}
	}
	i, err := placement.Choose(members, x, p.l.cfg.Weights, p.l.cfg.Sample, p.rng)
	if err != nil {
		// The guesses of recent placements may be what fills the members:
		// only the members' own figures may refuse a model.
		members = p.view(e.kind, e.tried, false)
		i, err = placement.Choose(members, x, p.l.cfg.Weights, p.l.cfg.Sample, p.rng)
	}
	if err != nil {
		var nr *placement.NoRoomError
		if errors.As(err, &nr) && nr.Member != "" {
			// No member has room beside its activations. Idle activations
			// can let go of their models, so the model goes to the member
			// with the most room among those whose budget can hold it;
			// only a model larger than every budget is too_large.
			best, bestBudget, bestBudgetAt := -1, int64(-1), ""
			for j, m := range members {
				if m.Budget > bestBudget {
					bestBudget, bestBudgetAt = m.Budget, m.ID
				}
				if m.Budget >= x.Bytes && (best < 0 || m.Room() > members[best].Room()) {
					best = j
				}
			}
			if best >= 0 {
				e.full = true
				p.placeOn(ctx, e, members[best].ID)
				return
			}
			p.l.count(func(s *Stats) { s.TooLarge++ })
			p.fail(ctx, e, api.ErrorCode_ERROR_CODE_TOO_LARGE, fmt.Sprintf(
				"model %s needs %d bytes; the largest member budget in the cluster is %d bytes (member %s)",
				ModelOf(e.identity), nr.Need, bestBudget, bestBudgetAt))
			return
		}
		p.fail(ctx, e, api.ErrorCode_ERROR_CODE_OVERLOADED, fmt.Sprintf("no member can host %s now", e.identity))
		return
	}
	p.placeOn(ctx, e, members[i].ID)
}

func (p *placer) placeOn(ctx actor.Context, e *dirEntry, target string) {
	p.recent[target] = append(p.recent[target], recentPlacement{bytes: e.bytes, at: time.Now()})
	e.tried[target] = true
	p.activateOn(ctx, e, target, false)
}

// activateOn asks target's activator to spawn e (off the actor goroutine,
// waiting at most ActivateTimeout, or LoadTimeout for a warm move; ask
// ends the wait as soon as target leaves this member's topology).
func (p *placer) activateOn(ctx actor.Context, e *dirEntry, target string, warm bool) {
	req := &wire.ActivateRequest{Identity: e.identity, Kind: e.kind, Bytes: e.bytes, Warm: warm, Full: e.full && !warm}
	wait := p.l.cfg.ActivateTimeout
	if warm {
		wait = p.l.cfg.LoadTimeout
	}
	self, sys, attempt, identity, l := p.self, ctx.ActorSystem(), e.attempt, e.identity, p.l
	go func() {
		res, err := l.ask(placerAt(target), req, wait, l.topo.Load(), target)
		resp, _ := res.(*wire.ActivateResponse)
		if err == nil && resp == nil {
			err = fmt.Errorf("activator %s: unexpected answer %T", target, res)
		}
		if warm {
			sys.Root.Send(self, &moved{identity: identity, attempt: attempt, target: target, resp: resp, err: err})
			return
		}
		sys.Root.Send(self, &activated{identity: identity, attempt: attempt, target: target, resp: resp, err: err})
	}()
}

func (p *placer) onActivated(ctx actor.Context, m *activated) {
	e := p.dir[m.identity]
	ok := m.err == nil && !m.resp.Refused && m.resp.Pid != nil
	if e == nil || !e.activating || e.attempt != m.attempt {
		// Stale: the entry was settled another way meanwhile.
		if ok {
			pid := pidOf(m.resp.Pid)
			switch {
			case e == nil && p.owns(m.identity, KindModel) || e == nil && p.topo.owner(m.identity, KindModel) == "":
				p.dir[m.identity] = &dirEntry{identity: m.identity, kind: KindModel, pid: pid, member: m.target,
					memberID: p.memberID(m.target), since: m.resp.SinceUnixMs}
			case e != nil && e.pid == nil && e.activating && !e.moving:
				// An answer that came after this directory gave up on it
				// (a busy activator) while the retry is still under way:
				// the late activation exists and serves, so it is taken
				// and the retry's activation is stopped when it lands
				// (the case below). Otherwise both would live until
				// anti-entropy found the pair.
				e.pid, e.member, e.memberID, e.since = pid, m.target, p.memberID(m.target), m.resp.SinceUnixMs
				e.activating, e.tried = false, nil
				e.attempt++
				e.confirm()
				delete(p.suspects, m.target) // it answered after all
				p.l.count(func(s *Stats) { s.Placed++ })
				for _, w := range e.waiters {
					p.answer(ctx, w, e)
				}
				e.waiters = nil
			case e != nil && e.pid != nil && !e.pid.Equal(pid):
				p.stopDuplicate(ctx, m.identity, pid, "a newer activation lost to an existing one")
			}
		}
		return
	}
	switch {
	case m.err != nil:
		p.l.logger.Debug("placement: activator did not answer", slog.String("member", m.target), slog.Any("error", m.err))
		p.suspects[m.target] = time.Now().Add(2 * p.l.cfg.FailureDetection)
		p.estimateRetry(ctx, e)
	case m.resp.Refused:
		p.l.count(func(s *Stats) { s.Refused++ })
		p.estimateRetry(ctx, e)
	default:
		e.pid, e.member, e.memberID = pidOf(m.resp.Pid), m.target, p.memberID(m.target)
		e.since, e.activating, e.tried = m.resp.SinceUnixMs, false, nil
		e.confirm()
		p.l.count(func(s *Stats) { s.Placed++ })
		for _, w := range e.waiters {
			p.answer(ctx, w, e)
		}
		e.waiters = nil
		// Kept even if this member is not the owner in its own view (views
		// differ while a topology change spreads): the activator told the
		// owner in its view, and the next topology change sorts it out.
	}
}

// estimateRetry places e again (the estimate is cached) unless every
// member has been tried.
func (p *placer) estimateRetry(ctx actor.Context, e *dirEntry) {
	if len(p.view(e.kind, e.tried, false)) == 0 {
		p.fail(ctx, e, api.ErrorCode_ERROR_CODE_OVERLOADED,
			fmt.Sprintf("no member could activate %s (all refused or did not answer)", e.identity))
		return
	}
	e.attempt++
	p.place(ctx, e)
}

func (p *placer) memberID(addr string) string {
	if m, ok := p.topo.members[addr]; ok {
		return m.Id
	}
	return ""
}

func (p *placer) stopDuplicate(ctx actor.Context, identity string, pid *actor.PID, why string) {
	p.l.count(func(s *Stats) { s.Duplicates++ })
	p.l.logger.Info("placement: stopping duplicate activation", slog.String("identity", identity), slog.String("pid", pid.String()), slog.String("reason", why))
	ctx.Send(placerAt(pid.Address), &wire.Stop{Identity: identity, Pid: wirePID(pid), Reason: why})
}

// keepIncumbent reports whether a directory that knows one activation
// (since incSince) and hears of another (since newSince) keeps the one it
// knows: unless the other is clearly older (by more than clock skew), as
// the older is more likely loaded and callers were given the one it knows.
func keepIncumbent(incSince, newSince int64) bool {
	const skew = 2000 // ms
	return incSince == 0 || newSince == 0 || newSince >= incSince-skew
}

func (p *placer) onAnnounce(ctx actor.Context, a *wire.Announce) {
	if a.Periodic {
		// Anti-entropy: only a directory that sees the same members and
		// owns the identity decides; views that differ are sorted out by
		// the re-announcements of the topology change under way.
		if a.Topology != p.topo.hash {
			return
		}
		for _, act := range a.Activations {
			if p.owns(act.Identity, KindModel) {
				p.adoptPeriodic(ctx, act)
			}
		}
		return
	}
	if a.Complete {
		got := p.announced[a.Topology]
		if got == nil {
			got = map[string]bool{}
			p.announced[a.Topology] = got
		}
		got[a.From] = true
	}
	for _, act := range a.Activations {
		p.adopt(ctx, act)
	}
	p.releaseHeld(ctx)
}

// adopt records an announced activation, resolving a duplicate.
func (p *placer) adopt(ctx actor.Context, act *wire.Activation) {
	pid := pidOf(act.Pid)
	if pid == nil || !p.topo.alive(pid.Address) && pid.Address != p.l.self {
		return
	}
	e := p.dir[act.Identity]
	switch {
	case e == nil:
		p.dir[act.Identity] = &dirEntry{identity: act.Identity, kind: KindModel, pid: pid, member: pid.Address,
			memberID: act.Member, bytes: act.Bytes, since: act.SinceUnixMs}
		p.l.count(func(s *Stats) { s.Adopted++ })
	case e.pid == nil:
		// Activating here while another member already hosts it: take
		// that one; the activation in flight is stopped when it lands.
		e.pid, e.member, e.memberID, e.bytes, e.since = pid, pid.Address, act.Member, act.Bytes, act.SinceUnixMs
		e.activating, e.tried = false, nil
		e.attempt++
		for _, w := range e.waiters {
			p.answer(ctx, w, e)
		}
		e.waiters = nil
		p.l.count(func(s *Stats) { s.Adopted++ })
	case e.pid.Equal(pid):
		e.bytes, e.since = act.Bytes, act.SinceUnixMs
	default:
		if keepIncumbent(e.since, act.SinceUnixMs) {
			p.stopDuplicate(ctx, act.Identity, pid, "duplicate found at hand-off")
			return
		}
		p.stopDuplicate(ctx, act.Identity, e.pid, "duplicate found at hand-off")
		e.pid, e.member, e.memberID, e.bytes, e.since = pid, pid.Address, act.Member, act.Bytes, act.SinceUnixMs
		if e.moving {
			e.moving = false
			e.attempt++
		}
	}
	// An announcement by its activator confirms the activation handed out.
	if e := p.dir[act.Identity]; e != nil && e.pid.Equal(pid) {
		e.confirm()
	}
}

// confirm records that the entry's activation was just shown alive (its
// activator answered or announced it).
func (e *dirEntry) confirm() { e.confirmed, e.confirmedPID = time.Now(), e.pid }

// adoptPeriodic takes an activation from an anti-entropy round: unknown
// ones are recorded (or settle an activation under way), and one that
// differs from the activation the directory knows is a duplicate and is
// stopped: the directory keeps the one it has been handing out. The
// target of a move under way is not a duplicate.
func (p *placer) adoptPeriodic(ctx actor.Context, act *wire.Activation) {
	pid := pidOf(act.Pid)
	if pid == nil || !p.topo.alive(pid.Address) && pid.Address != p.l.self {
		return
	}
	e := p.dir[act.Identity]
	now := time.Now()
	switch {
	case e == nil || e.pid == nil || e.pid.Equal(pid):
		p.adopt(ctx, act)
	case e.moving && pid.Address == e.moveTo:
		// the new home of a make-before-break move: onMoved switches
	case e.pid.Equal(e.confirmedPID) && now.Sub(e.confirmed) <= p.staleAfter():
		// the activation handed out is alive: this one is a duplicate
		p.stopDuplicate(ctx, act.Identity, pid, "duplicate found by anti-entropy")
	default:
		// No recent news of the activation handed out: wait up to
		// staleAfter for it; if none comes, it is gone (it stopped and
		// its Terminated was lost) and this live one replaces it.
		if !e.pid.Equal(e.doubtedPID) {
			e.doubted, e.doubtedPID = now, e.pid
		}
		if now.Sub(e.doubted) > p.staleAfter() && !e.moving {
			e.pid, e.member, e.memberID, e.bytes, e.since = pid, pid.Address, act.Member, act.Bytes, act.SinceUnixMs
			e.confirm()
			p.l.count(func(s *Stats) { s.Adopted++ })
		}
	}
}

func (p *placer) releaseHeld(ctx actor.Context) {
	if len(p.held) == 0 || !p.synced() {
		return
	}
	held := p.held
	p.held = nil
	for _, h := range held {
		p.onLookup(ctx, h.req, h.sender)
	}
}

func (p *placer) onDirTerminated(m *wire.Terminated) {
	e := p.dir[m.Identity]
	if e != nil && e.pid != nil && e.pid.Equal(pidOf(m.Pid)) && !e.activating {
		delete(p.dir, m.Identity)
	}
}

// onMove is a rebalancer's move: activate on m.To and wait for the load,
// switch the entry, then stop the old activation.
func (p *placer) onMove(ctx actor.Context, m *wire.MoveRequest) {
	e := p.dir[m.Identity]
	switch {
	case e == nil || e.pid == nil:
		ctx.Respond(&wire.MoveResponse{Message: "not active"})
		return
	case e.moving:
		ctx.Respond(&wire.MoveResponse{Message: "moving already"})
		return
	case e.member == m.To:
		ctx.Respond(&wire.MoveResponse{Ok: true, Pid: wirePID(e.pid)})
		return
	case !p.topo.alive(m.To):
		ctx.Respond(&wire.MoveResponse{Message: "target is not a member"})
		return
	}
	e.moving, e.moveTo = true, m.To
	e.attempt++
	p.pendingMoves = append(p.pendingMoves, pendingMove{identity: m.Identity, attempt: e.attempt, reply: ctx.Sender()})
	p.activateOn(ctx, e, m.To, true)
}

func (p *placer) onMoved(ctx actor.Context, m *moved) {
	var reply *actor.PID
	for i, pm := range p.pendingMoves {
		if pm.identity == m.identity && pm.attempt == m.attempt {
			reply = pm.reply
			p.pendingMoves = append(p.pendingMoves[:i], p.pendingMoves[i+1:]...)
			break
		}
	}
	respond := func(r *wire.MoveResponse) {
		if reply != nil {
			ctx.Send(reply, r)
		}
	}
	e := p.dir[m.identity]
	ok := m.err == nil && m.resp != nil && !m.resp.Refused && m.resp.Pid != nil
	if e == nil || !e.moving || e.attempt != m.attempt {
		if ok && (e == nil || e.pid == nil || !e.pid.Equal(pidOf(m.resp.Pid))) {
			p.stopDuplicate(ctx, m.identity, pidOf(m.resp.Pid), "move overtaken")
		}
		p.l.count(func(s *Stats) { s.MoveFailures++ })
		respond(&wire.MoveResponse{Message: "move overtaken"})
		return
	}
	e.moving, e.moveTo = false, ""
	if !ok {
		msg := "refused"
		if m.err != nil {
			msg = m.err.Error()
		} else if m.resp.Message != "" {
			msg = m.resp.Message
		}
		p.l.count(func(s *Stats) { s.MoveFailures++ })
		respond(&wire.MoveResponse{Message: msg})
		return
	}
	old := e.pid
	e.pid, e.member, e.memberID, e.since = pidOf(m.resp.Pid), m.target, p.memberID(m.target), m.resp.SinceUnixMs
	e.confirm()
	ctx.Send(placerAt(old.Address), &wire.Stop{Identity: m.identity, Pid: wirePID(old), Reason: "moved to " + m.target})
	p.l.count(func(s *Stats) { s.Moves++ })
	p.l.logger.Info("placement: moved", slog.String("identity", m.identity), slog.String("from", old.Address), slog.String("to", m.target))
	respond(&wire.MoveResponse{Ok: true, Pid: m.resp.Pid})
}

type pendingMove struct {
	identity string
	attempt  int
	reply    *actor.PID
}

// ---- activator ----

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

// ---- both ----

func (p *placer) onTopology(ctx actor.Context, m *topologyChanged) {
	old := p.topo
	p.topo = m.t
	if m.t.hash != old.hash {
		p.syncHash = m.t.hash
		p.syncUntil = time.Now().Add(p.l.cfg.HandOffGrace)
	}
	// Directory: entries on members that left are gone; entries this
	// member no longer owns move to their new owners, who learn them from
	// the activators' re-announcements.
	for id, e := range p.dir {
		switch {
		case e.activating:
			continue // settles in onActivated (the ask aborts if its target left)
		case e.moving && !m.t.alive(e.moveTo):
			e.moving, e.moveTo = false, ""
			e.attempt++
		}
		if e.pid != nil && !m.t.alive(e.member) && e.member != p.l.self {
			delete(p.dir, id)
			continue
		}
		if !p.owns(id, e.kind) && !e.moving {
			delete(p.dir, id)
		}
	}
	for addr := range p.suspects {
		if !m.t.alive(addr) {
			delete(p.suspects, addr)
		}
	}
	// Activator: announce the live activations whose directory owner
	// changed to their new owner (with rendezvous ownership only the
	// identities of the members that left or joined move; the others'
	// owners keep their entries), and tell every member that this is all
	// (complete), so a new owner knows when it has heard from everyone.
	// Anti-entropy covers an announcement lost on the way.
	byOwner := map[string][]*wire.Activation{}
	for _, la := range p.order {
		before := la.owner
		if la.ownerOf != old.hash || before == "" {
			before = old.owner(la.identity, la.kind)
		}
		o := p.ownerOf(la)
		if o != "" && (o != before || !old.alive(before)) {
			byOwner[o] = append(byOwner[o], p.activation(la))
		}
	}
	for addr, mem := range m.t.members {
		if len(mem.Kinds) == 0 {
			continue
		}
		ctx.Send(placerAt(addr), &wire.Announce{Topology: m.t.hash, From: p.l.self, Activations: byOwner[addr], Complete: true})
	}
	for h := range p.announced {
		if h != m.t.hash && h != old.hash {
			delete(p.announced, h)
		}
	}
	p.releaseHeld(ctx)
}

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

// antiEntropy is one tick of the activator's anti-entropy: the
// activations started in the last freshFor whose next freshAt age has
// come, and the next slice of the round robin over all of them (sized so
// that every activation goes once per AntiEntropy period), each to its
// directory owner in this member's view. The round robin's announcements
// are gathered per owner and sent when the owner's batch is aeFlush old
// (or with fresh ones going to that owner): a member sends each owner a
// message every few seconds, not on every tick. Its cost per tick is the
// fresh activations plus activations × tick / period: it never walks all
// of them at once.
func (p *placer) antiEntropy(ctx actor.Context, now time.Time) {
	if len(p.local) == 0 {
		p.fresh = p.fresh[:0]
		clear(p.pending)
		return
	}
	if p.pending == nil {
		p.pending = map[string]*pendingAnnounce{}
	}
	byOwner := map[string][]*wire.Activation{}
	cutoff := now.Add(-freshFor).UnixMilli()
	drop := 0
	for drop < len(p.fresh) && p.fresh[drop].since < cutoff {
		drop++
	}
	if drop > 0 {
		p.fresh = append(p.fresh[:0], p.fresh[drop:]...)
	}
	announced := make(map[*localAct]bool, len(p.fresh))
	nowMs := now.UnixMilli()
	for _, la := range p.fresh {
		if p.local[la.identity] != la {
			continue
		}
		announced[la] = true
		if la.announcedFresh >= len(freshAt) || time.Duration(nowMs-la.since)*time.Millisecond < freshAt[la.announcedFresh] {
			continue
		}
		la.announcedFresh++
		for la.announcedFresh < len(freshAt) && time.Duration(nowMs-la.since)*time.Millisecond >= freshAt[la.announcedFresh] {
			la.announcedFresh++ // a late tick: one announcement covers the ages passed
		}
		if o := p.ownerOf(la); o != "" {
			byOwner[o] = append(byOwner[o], p.activation(la))
		}
	}
	n := len(p.order)
	slice := (n*int(tickEvery) + int(p.l.cfg.AntiEntropy) - 1) / int(p.l.cfg.AntiEntropy)
	for i := 0; i < slice && n > 0; i++ {
		if p.cursor >= n {
			p.cursor = 0
		}
		la := p.order[p.cursor]
		p.cursor++
		if announced[la] {
			continue
		}
		o := p.ownerOf(la)
		if o == "" {
			continue
		}
		b := p.pending[o]
		if b == nil || b.topo != p.topo.hash {
			b = &pendingAnnounce{topo: p.topo.hash, since: now}
			p.pending[o] = b
		}
		b.acts = append(b.acts, la)
	}
	flush := p.aeFlush()
	for o, b := range p.pending {
		if b.topo != p.topo.hash || !p.topo.alive(o) {
			delete(p.pending, o) // owners moved: the next round tells the new ones
			continue
		}
		if _, going := byOwner[o]; going || now.Sub(b.since) >= flush {
			for _, la := range b.acts {
				if p.local[la.identity] == la { // not stopped meanwhile
					byOwner[o] = append(byOwner[o], p.activation(la))
				}
			}
			delete(p.pending, o)
		}
	}
	for addr, acts := range byOwner {
		ctx.Send(placerAt(addr), &wire.Announce{Topology: p.topo.hash, From: p.l.self, Activations: acts, Periodic: true})
	}
}
