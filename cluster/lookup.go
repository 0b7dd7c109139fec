package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster/internal/wire"
	"github.com/manta-ml/manta/cluster/placement"
	"github.com/manta-ml/manta/internal/backoff"
)

// placerName is the name of every member's placement actor: the directory
// for the identities it owns and the activator of the ones placed on it.
const placerName = "manta-placement"

// Gossip keys.
const (
	loadKey     = "manta.load"
	replicasKey = "manta.replicas"
)

// Lookup is Manta's IdentityLookup (docs/ARCHITECTURE.md §3–4). The
// rendezvous owner of an identity (protoactor's rule, among the members
// hosting its kind) is only its directory: on the first lookup the
// directory estimates the model's memory (Source.Estimate), chooses the
// member by placement.Choose over the gossiped loads of the members that
// can fit it, asks that member's activator to spawn it, records the
// placement and answers every lookup of the identity with it. Concurrent
// first lookups from different members all reach the one directory, so
// they cause one activation. A model that fits nowhere is refused with
// too_large naming the largest free budget.
//
// No wait on another member lasts longer than FailureDetection: a
// directory or activator that does not answer is skipped (suspected) and
// the lookup tries again, against the new owner once the topology has
// changed. A topology change stops no activation: entries on members that
// left are dropped (the next lookup activates the model elsewhere), and
// every member re-announces its live activations to their (possibly new)
// directory owners; a directory that learns of two activations of one
// identity keeps the one it knew (unless the other is clearly older) and
// stops the other. A new owner holds first
// activations until every member has re-announced (at most HandOffGrace).
//
// The member with the lowest id also runs the rebalancer and decides
// hot-model replicas (see RebalanceConfig).
type Lookup struct {
	cfg    PlacementConfig
	source Source
	logger *slog.Logger

	cluster *pcluster.Cluster
	system  *actor.ActorSystem
	client  bool
	self    string // this member's address
	placer  *actor.PID
	topoSub *eventstream.Subscription
	endSub  *eventstream.Subscription

	// provider is the provider's last topology; suspected the members
	// whose connection broke, left out of it until then (onEndpointTerminated).
	suspMu    sync.Mutex
	provider  *pcluster.ClusterTopology
	suspected map[string]time.Time

	topo  atomic.Pointer[topology]
	loads atomic.Pointer[loadView]
	// gossipSeen, lastOwn and lastTopo are readGossip's (the gossip
	// loop's goroutine only): each member's load as last parsed, by its
	// gossip sequence number, so that a round in which nothing changed
	// parses nothing and builds no view.
	gossipSeen map[string]gossipEntry
	lastOwn    *wire.Load
	lastTopo   *topology
	replicas   atomic.Pointer[wire.Replicas]
	// The activator's books as the gossip loop reads them, kept by the
	// placer in O(1) per change: every local activation by identity, the
	// replica ones (id@k) apart, their count and bytes.
	hosted        sync.Map // identity -> *wire.Activation
	replicaHosted sync.Map // identity -> *wire.Activation, replicas only
	nLocal        atomic.Int64
	localBytes    atomic.Int64
	// summary is the bounded part of the gossiped load (top-K hottest
	// activations and the replicas), rebuilt once per summary interval.
	summary  atomic.Pointer[[]*wire.Hosted]
	inflight sync.Map // identity -> *atomic.Int64 (Route)
	given    sync.Map // identity -> given (the last PID Get returned)
	httpAddr atomic.Pointer[string]

	stats    Stats
	statsMu  sync.Mutex
	rngMu    sync.Mutex
	rng      *rand.Rand
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// Stats count what a member's placement did (since it started).
type Stats struct {
	Lookups       int64 `json:"lookups"`        // directory lookups answered
	Suspected     int64 `json:"suspected"`      // members left out at once when their connection broke
	Placed        int64 `json:"placed"`         // activations placed by this directory
	Refused       int64 `json:"refused"`        // activations a member refused (no room), placed elsewhere
	TooLarge      int64 `json:"too_large"`      // lookups answered too_large
	Duplicates    int64 `json:"duplicates"`     // duplicate activations found and stopped
	Adopted       int64 `json:"adopted"`        // entries learnt from re-announcements
	Activated     int64 `json:"activated"`      // activations spawned on this member
	Plans         int64 `json:"plans"`          // rebalancer cycles that planned moves
	MovesPlanned  int64 `json:"moves_planned"`  // moves this leader planned
	Moves         int64 `json:"moves"`          // moves completed by this directory
	MoveFailures  int64 `json:"move_failures"`  // moves that did not complete
	ReplicasAdded int64 `json:"replicas_added"` // replicas this leader added
	ReplicasGone  int64 `json:"replicas_gone"`  // replicas this leader removed
	QuietCycles   int64 `json:"quiet_cycles"`   // rebalancer cycles skipped: nothing to do by the gossiped loads
	SelfLeft      int64 `json:"self_left"`      // this member saw itself leave the provider's list (it is then blocked by the others)
	PartialPulls  int64 `json:"partial_pulls"`  // rebalancer cycles that pulled only the most loaded members' full loads (memory alone out of balance)
}

func (l *Lookup) count(f func(*Stats)) {
	l.statsMu.Lock()
	f(&l.stats)
	l.statsMu.Unlock()
}

// Stats returns a snapshot of the counters.
func (l *Lookup) Stats() Stats {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	return l.stats
}

// NewLookup returns Manta's IdentityLookup. source may be nil (see
// Source); logger may be nil (quiet).
func NewLookup(cfg PlacementConfig, source Source, logger *slog.Logger) *Lookup {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Lookup{
		cfg:    cfg.withDefaults(),
		source: source,
		logger: logger,
		rng:    rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x6d616e7461)),
		stop:   make(chan struct{}),
	}
}

// topology is one view of the cluster's members.
type topology struct {
	hash    uint64
	members map[string]*pcluster.Member // by address
	byKind  map[string][]string         // kind -> sorted addresses
	leader  string                      // address of the member with the lowest id
	changed chan struct{}               // closed when a newer topology replaces this one
}

func newTopology(t *pcluster.ClusterTopology) *topology {
	tp := &topology{members: map[string]*pcluster.Member{}, byKind: map[string][]string{}, changed: make(chan struct{})}
	if t == nil {
		return tp
	}
	tp.hash = t.TopologyHash
	lowest := ""
	for _, m := range t.Members {
		a := m.Address()
		tp.members[a] = m
		for _, k := range m.Kinds {
			tp.byKind[k] = append(tp.byKind[k], a)
		}
		if len(m.Kinds) > 0 && (lowest == "" || m.Id < lowest) {
			lowest, tp.leader = m.Id, a
		}
	}
	for k := range tp.byKind {
		sort.Strings(tp.byKind[k])
	}
	return tp
}

func (t *topology) owner(identity, kind string) string {
	return placement.Owner(identity, t.byKind[kind])
}

func (t *topology) alive(addr string) bool {
	_, ok := t.members[addr]
	return ok
}

// Setup implements pcluster.IdentityLookup.
func (l *Lookup) Setup(c *pcluster.Cluster, kinds []string, isClient bool) {
	l.cluster, l.system, l.client = c, c.ActorSystem, isClient
	l.self = c.ActorSystem.Address()
	l.topo.Store(newTopology(nil))
	l.replicas.Store(&wire.Replicas{Replicas: map[string]int32{}})
	empty := []*wire.Hosted{}
	l.summary.Store(&empty)
	if !isClient {
		p := newPlacer(l)
		pid, err := l.system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return p }), placerName)
		if err != nil {
			l.logger.Error("placement: spawn placement actor", slog.Any("error", err))
		}
		l.placer = pid
	}
	l.topoSub = l.system.EventStream.Subscribe(func(ev any) {
		if t, ok := ev.(*pcluster.ClusterTopology); ok {
			l.onTopology(t)
		}
	})
	l.endSub = l.system.EventStream.Subscribe(func(ev any) {
		if e, ok := ev.(*remote.EndpointTerminatedEvent); ok {
			go l.onEndpointTerminated(e.Address) // not on the publisher's goroutine
		}
	})
}

// SetHTTP records this member's HTTP address, gossiped with its load (for
// status pages and `manta where`).
func (l *Lookup) SetHTTP(addr string) { l.httpAddr.Store(&addr) }

// onTopology runs on the publisher's goroutine (protoactor's member list,
// under its lock): record and hand on, nothing slow.
func (l *Lookup) onTopology(t *pcluster.ClusterTopology) {
	l.suspMu.Lock()
	l.provider = t
	l.suspMu.Unlock()
	for _, m := range t.Left {
		if m.Address() == l.self && !l.client {
			// Proto.Actor blocks a member that leaves, on every member and
			// for good: this one's registration lapsed (a stall longer than
			// the provider's lease), and the others will not take it back.
			l.logger.Error("placement: this member left the cluster provider's list (its registration lapsed); the other members have blocked it for good: restart this member, and raise the lease (--etcd-ttl) if it stalls this long",
				slog.String("member", l.self))
			l.count(func(s *Stats) { s.SelfLeft++ })
		}
	}
	// A member listed as joining whose port refuses connections is a dead
	// process whose registration has not lapsed yet (a lease of EtcdTTL):
	// a member that starts then never had a connection to it break, so it
	// would keep the dead member in its view while the others left it out
	// (their views disagreeing on directory owners: doubled activations
	// for seconds after a restart, seen in the soak). One connect each, in
	// parallel, at most 300 ms.
	var dead []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range t.Joined {
		addr := m.Address()
		if addr == l.self {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					mu.Lock()
					dead = append(dead, addr)
					mu.Unlock()
				}
				return
			}
			c.Close()
		}()
	}
	wg.Wait()
	if len(dead) > 0 {
		l.suspMu.Lock()
		if l.suspected == nil {
			l.suspected = map[string]time.Time{}
		}
		for _, addr := range dead {
			l.suspected[addr] = time.Now().Add(l.suspectFor())
		}
		l.suspMu.Unlock()
		for _, addr := range dead {
			l.logger.Warn("placement: a listed member's port refuses connections (a dead process whose registration has not lapsed): routing around it", slog.String("member", addr))
			l.count(func(s *Stats) { s.Suspected++ })
			l.expireSuspect(addr)
		}
	}
	l.republish(t.Left)
}

// suspectFor is how long a member whose connection broke is left out of
// the topology without the provider confirming it left: then it is taken
// back (the provider still lists it: the break was not its death).
func (l *Lookup) suspectFor() time.Duration { return 2 * l.cfg.FailureDetection }

// onEndpointTerminated is protoactor's news that the connection to a
// member broke. A member killed outright has its TCP connections reset by
// the kernel at once, seconds before the provider's failure detection
// (etcd's lease) notices, and its port refuses new connections: when a
// connect confirms it, the member is left out of this member's topology
// now, so lookups go to the identities' new directory owners,
// its activations are placed elsewhere and requests sent to it are sent
// again. The provider confirms (the same members, the same hash: no second
// change), or, if the member is still listed after suspectFor, it is taken
// back.
func (l *Lookup) onEndpointTerminated(addr string) {
	l.suspMu.Lock()
	listed := false
	if l.provider != nil {
		for _, m := range l.provider.Members {
			if m.Address() == addr {
				listed = true
			}
		}
	}
	if !listed || addr == l.self {
		l.suspMu.Unlock()
		return
	}
	l.suspMu.Unlock()
	// A broken stream is not a death: under load a connect can fail or a
	// stream reset while the member lives (leaving it out then splits the
	// views and doubles activations). A killed process's port refuses a
	// new connection at once; only that confirms the suspicion. A host
	// that does not answer at all is left to the provider.
	if !refusesConnections(addr) {
		return
	}
	l.suspMu.Lock()
	if l.suspected == nil {
		l.suspected = map[string]time.Time{}
	}
	if until, ok := l.suspected[addr]; ok && time.Now().Before(until) {
		l.suspMu.Unlock()
		return
	}
	l.suspected[addr] = time.Now().Add(l.suspectFor())
	l.suspMu.Unlock()
	l.logger.Warn("placement: a member's connection broke and its port refuses connections: routing around it until the provider confirms", slog.String("member", addr))
	l.count(func(s *Stats) { s.Suspected++ })
	l.republish(nil)
	l.expireSuspect(addr)
}

// expireSuspect ends addr's suspicion after suspectFor, unless the
// provider still lists the member and its port still refuses connections
// (the provider's lease has not run out yet: EtcdTTL may be longer than
// suspectFor): then the suspicion is renewed, so a dead member is never
// taken back into the topology before the provider drops it.
func (l *Lookup) expireSuspect(addr string) {
	time.AfterFunc(l.suspectFor()+10*time.Millisecond, func() {
		select {
		case <-l.stop:
			return
		default:
		}
		l.suspMu.Lock()
		listed := false
		if l.provider != nil {
			for _, m := range l.provider.Members {
				if m.Address() == addr {
					listed = true
				}
			}
		}
		l.suspMu.Unlock()
		if listed && refusesConnections(addr) {
			l.suspMu.Lock()
			if l.suspected == nil {
				l.suspected = map[string]time.Time{}
			}
			l.suspected[addr] = time.Now().Add(l.suspectFor())
			l.suspMu.Unlock()
			l.expireSuspect(addr)
			return
		}
		l.republish(nil)
	})
}

// refusesConnections reports whether the process listening at addr is
// gone: a connect is refused. A process being killed closes its
// connections and its listening socket one after the other, so a connect
// in between is accepted and then reset: such a connection is read from
// briefly (a live server waits for the client to speak: the read times
// out) and the connect tried again.
func refusesConnections(addr string) bool {
	for range 4 {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return errors.Is(err, syscall.ECONNREFUSED)
		}
		_ = c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false // alive: it waits for us to speak
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// republish derives this member's topology from the provider's last one
// without the members suspected now, and hands it on when it differs.
// The hash of a derived topology is the provider's rule over the members
// kept, so the provider's confirmation is no second change.
func (l *Lookup) republish(left []*pcluster.Member) {
	l.suspMu.Lock()
	defer l.suspMu.Unlock()
	t := l.provider
	if t == nil {
		return
	}
	now := time.Now()
	kept := make([]*pcluster.Member, 0, len(t.Members))
	var dropped []*pcluster.Member
	for _, m := range t.Members {
		if until, ok := l.suspected[m.Address()]; ok && now.Before(until) {
			dropped = append(dropped, m)
			continue
		}
		kept = append(kept, m)
	}
	for addr, until := range l.suspected {
		if !now.Before(until) {
			delete(l.suspected, addr)
		}
	}
	eff := t
	if len(dropped) > 0 {
		hashOf := append([]*pcluster.Member(nil), kept...)
		eff = &pcluster.ClusterTopology{Members: kept, TopologyHash: pcluster.TopologyHash(hashOf),
			Left: append(append([]*pcluster.Member(nil), left...), dropped...)}
	}
	nt := newTopology(eff)
	old := l.topo.Load()
	if old.hash == nt.hash && len(old.members) == len(nt.members) && len(left) == 0 {
		return
	}
	l.topo.Store(nt)
	close(old.changed)
	if l.placer != nil {
		l.system.Root.Send(l.placer, &topologyChanged{t: nt, left: eff.Left})
	}
}

// Shutdown implements pcluster.IdentityLookup.
func (l *Lookup) Shutdown() {
	l.stopOnce.Do(func() {
		close(l.stop)
		if l.topoSub != nil {
			l.system.EventStream.Unsubscribe(l.topoSub)
		}
		if l.endSub != nil {
			l.system.EventStream.Unsubscribe(l.endSub)
		}
		if l.placer != nil {
			l.system.Root.Stop(l.placer)
		}
	})
	l.wg.Wait()
}

// RemovePid implements pcluster.IdentityLookup: the caller found pid dead.
func (l *Lookup) RemovePid(ci *pcluster.ClusterIdentity, pid *actor.PID) {
	l.cluster.PidCache.RemoveByValue(ci.Identity, ci.Kind, pid)
}

// Alive reports whether addr is this process or a current member: a
// caller whose request went to a member that is no longer alive should
// resolve the identity again rather than wait.
func (l *Lookup) Alive(addr string) bool {
	return addr == l.self || l.topo.Load().alive(addr)
}

// ErrNoMembers is returned by lookups while no member hosts the kind.
var ErrNoMembers = errors.New("cluster: no member hosts this kind (yet)")

// Get implements pcluster.IdentityLookup. It returns nil when no answer
// came within the cluster's request timeout. For a model that cannot be
// placed (too_large) or does not exist (not_found) it returns the PID of a
// local one-shot process that answers the first request sent to it with
// that error (api.PredictResponse, ModelStats or ReloadResponse), so every
// caller sees the error its request would have got from a model actor.
//
// Callers cache the PID and come back only when it failed them (or for a
// first request), so a PID this process was given recently for the
// identity is passed along as a suspect: the directory checks with the
// member hosting it (the activator answers with its live activation, or
// makes a new one) instead of handing out a dead PID again.
func (l *Lookup) Get(ci *pcluster.ClusterIdentity) *actor.PID {
	req := &wire.LookupRequest{Identity: ci.Identity, Kind: ci.Kind}
	if v, ok := l.given.Load(ci.Identity); ok {
		if g := v.(given); time.Since(g.at) < givenTTL {
			req.Suspect = wirePID(g.pid)
		}
	}
	resp, err := l.resolve(req)
	if err != nil || resp == nil {
		return nil
	}
	if resp.Code != 0 {
		return l.refusal(ci.Identity, api.ErrorCode(resp.Code), resp.Message)
	}
	if resp.Pid == nil {
		return nil
	}
	pid := actor.NewPID(resp.Pid.Address, resp.Pid.Id)
	l.given.Store(ci.Identity, given{pid: pid, at: time.Now()})
	return pid
}

// given is a PID Get returned, and when.
type given struct {
	pid *actor.PID
	at  time.Time
}

// givenTTL is how long a PID handed out counts as a suspect when the
// caller comes back for the identity.
const givenTTL = time.Minute

// Resolve asks identity's directory for its activation; noActivate only
// asks (Where). It retries, against the new owner after a topology
// change, until the cluster's request timeout; no single wait lasts
// longer than FailureDetection.
func (l *Lookup) Resolve(identity, kind string, noActivate bool) (*wire.LookupResponse, error) {
	return l.resolve(&wire.LookupRequest{Identity: identity, Kind: kind, NoActivate: noActivate})
}

func (l *Lookup) resolve(req *wire.LookupRequest) (*wire.LookupResponse, error) {
	identity, kind := req.Identity, req.Kind
	timeout := l.cluster.Config.RequestTimeoutTime
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	tries := 0
	var lastErr error
	for {
		t := l.topo.Load()
		owner := t.owner(identity, kind)
		left := time.Until(deadline)
		if left <= 0 {
			if lastErr == nil {
				lastErr = fmt.Errorf("cluster: lookup %s: %w", identity, actor.ErrTimeout)
			}
			return nil, lastErr
		}
		if owner == "" {
			lastErr = fmt.Errorf("cluster: lookup %s: %w", identity, ErrNoMembers)
			waitChange(t.changed, min(left, l.cfg.FailureDetection), l.stop)
			continue
		}
		wait := min(left, l.cfg.FailureDetection)
		res, err := l.ask(actor.NewPID(owner, placerName), req, wait, t, owner)
		if err == nil {
			r, ok := res.(*wire.LookupResponse)
			switch {
			case !ok:
				err = fmt.Errorf("cluster: lookup %s: unexpected answer %T", identity, res)
			case r.Code == int32(api.ErrorCode_ERROR_CODE_OVERLOADED):
				err = fmt.Errorf("cluster: lookup %s: %s", identity, r.Message)
			default:
				return r, nil
			}
		}
		lastErr = err
		select {
		case <-t.changed: // try the new owner at once
		default:
			if !sleep(min(backoff.Delay(10*time.Millisecond, 500*time.Millisecond, tries), time.Until(deadline)), l.stop) {
				return nil, lastErr
			}
			tries++
		}
	}
}

// ask sends msg to pid and waits for the answer at most wait, or until the
// topology changes without pid's member in it.
func (l *Lookup) ask(pid *actor.PID, msg any, wait time.Duration, t *topology, member string) (any, error) {
	f := l.system.Root.RequestFuture(pid, msg, wait)
	type result struct {
		v   any
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f.Result()
		ch <- result{v, err}
	}()
	changed := t.changed
	for {
		select {
		case r := <-ch:
			if _, ok := r.v.(*actor.DeadLetterResponse); ok && r.err == nil {
				r.err = fmt.Errorf("cluster: %s: %w", member, actor.ErrDeadLetter)
			}
			return r.v, r.err
		case <-changed:
			nt := l.topo.Load()
			if member != l.self && !nt.alive(member) {
				return nil, fmt.Errorf("cluster: member %s left", member)
			}
			changed = nt.changed
		case <-l.stop:
			return nil, errors.New("cluster: shutting down")
		}
	}
}

func waitChange(ch <-chan struct{}, d time.Duration, stop <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-stop:
	}
}

// sleep waits d; false if stop closed first.
func sleep(d time.Duration, stop <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// refusal registers a one-shot local process that answers the first
// request it gets with code (and stops existing), or disappears after a
// minute if none comes.
func (l *Lookup) refusal(identity string, code api.ErrorCode, msg string) *actor.PID {
	p := &refusal{system: l.system, identity: identity, err: &api.Error{Code: code, Message: msg}}
	pid, ok := l.system.ProcessRegistry.Add(p, "manta-refusal-"+l.system.ProcessRegistry.NextId())
	if !ok {
		return nil
	}
	p.pid = pid
	p.timer = time.AfterFunc(time.Minute, p.remove)
	return pid
}

type refusal struct {
	system   *actor.ActorSystem
	identity string
	err      *api.Error
	pid      *actor.PID
	timer    *time.Timer
	once     sync.Once
}

func (r *refusal) remove() {
	r.once.Do(func() { r.system.ProcessRegistry.Remove(r.pid) })
}

func (r *refusal) SendUserMessage(_ *actor.PID, message any) {
	_, msg, sender := actor.UnwrapEnvelope(message)
	if sender == nil {
		return
	}
	id := ModelOf(r.identity)
	var out any
	switch m := msg.(type) {
	case *api.PredictRequest:
		out = &api.PredictResponse{RequestId: m.RequestId, ModelId: id, Error: r.err}
	case *api.ModelStatsRequest:
		out = &api.ModelStats{ModelId: id, Error: r.err}
	case *api.ReloadRequest:
		out = &api.ReloadResponse{ModelId: id, Error: r.err}
	case *api.FeedbackRequest:
		out = &api.FeedbackResponse{ModelId: id, Error: r.err}
	case *api.QualityRequest:
		out = &api.QualityReport{ModelId: id, Error: r.err}
	case *api.CanaryRequest:
		out = &api.CanaryResponse{ModelId: id, Error: r.err}
	default:
		out = &actor.DeadLetterResponse{Target: r.pid}
	}
	r.timer.Stop()
	r.remove()
	r.system.Root.Send(sender, out)
}

func (r *refusal) SendSystemMessage(*actor.PID, any) {}
func (r *refusal) Stop(*actor.PID)                   { r.timer.Stop(); r.remove() }

// Route picks the identity to call for model id: id itself, or one of its
// replicas id@1..id@k (k from the rebalancer's table) by power of two
// choices on the requests this process has outstanding on each. Call done
// when the request ends.
func (l *Lookup) Route(id string) (identity string, done func()) {
	k := int(l.replicas.Load().Replicas[id])
	if k <= 0 {
		return id, noop // the common case costs a map read
	}
	l.rngMu.Lock()
	a, b := l.rng.IntN(k+1), l.rng.IntN(k)
	l.rngMu.Unlock()
	if b >= a {
		b++
	}
	ia, ib := ReplicaIdentity(id, a), ReplicaIdentity(id, b)
	if l.outstanding(ib).Load() < l.outstanding(ia).Load() {
		ia = ib
	}
	identity = ia
	c := l.outstanding(identity)
	c.Add(1)
	var once sync.Once
	return identity, func() { once.Do(func() { c.Add(-1) }) }
}

func noop() {}

func (l *Lookup) outstanding(identity string) *atomic.Int64 {
	if v, ok := l.inflight.Load(identity); ok {
		return v.(*atomic.Int64)
	}
	v, _ := l.inflight.LoadOrStore(identity, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// Replicas returns the extra replicas of model id in the table this
// process last saw.
func (l *Lookup) Replicas(id string) int { return int(l.replicas.Load().Replicas[id]) }

var _ pcluster.IdentityLookup = (*Lookup)(nil)
