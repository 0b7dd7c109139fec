package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster/internal/wire"
	"github.com/manta-ml/manta/cluster/placement"
)

// The placer as directory: lookups of the identities this member owns,
// their estimates, the placement decision and the activation it asks for.

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

type heldLookup struct {
	req    *wire.LookupRequest
	sender *actor.PID
}

type recentPlacement struct {
	bytes int64
	at    time.Time
}

type cachedEstimate struct {
	bytes int64
	at    time.Time
}

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
