package cluster

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/manta-ml/manta/cluster/internal/wire"
)

// The placer keeping directories true: announcements and their adoption,
// moves, topology changes and the anti-entropy round.

// pendingAnnounce is one owner's batch of periodic announcements, for the
// topology with hash topo.
type pendingAnnounce struct {
	topo  uint64
	since time.Time
	acts  []*localAct
}

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
