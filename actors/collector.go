package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/manta-ml/manta/actors/strategy"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/internal/backoff"
	"github.com/manta-ml/manta/internal/keyed"
	"github.com/manta-ml/manta/modelhost"
)

// DefaultLateGrace is how long a collector that has answered stays, past the
// request's deadline, to hear the calls still outstanding and count them as
// late results.
const DefaultLateGrace = time.Second

// maxCallTries bounds how often one model call is sent: a call whose
// activation disappears (a DeadLetterResponse) or whose identity cannot be
// resolved is tried again, with a backoff, at most this many times in all.
const maxCallTries = 3

// CollectorConfig configures the collectors of one actor system.
type CollectorConfig struct {
	// Resolve returns the PID of a model identity's activation, activating
	// it if needed (required). It may block (a cluster lookup): collectors
	// call it off their own goroutine.
	Resolve func(identity string) (*actor.PID, error)
	// Forget, when set, drops a cached PID that turned out to be dead, so
	// that the next Resolve looks the identity up again.
	Forget func(identity string, pid *actor.PID)
	// Stats receives every collector's counters (default: a new Stats).
	Stats *strategy.Stats
	// LateGrace: see DefaultLateGrace (default when zero).
	LateGrace time.Duration
	// MaxCalls bounds the calls of one request (default
	// strategy.DefaultMaxCalls).
	MaxCalls int
	// Logger receives collector failures (nil: quiet).
	Logger *slog.Logger
}

// Collectors spawns collector actors on one actor system (docs/ARCHITECTURE.md
// "Collector actor") and routes the model actors' answers to them. Build one
// per client or member and call Spawn once per speculative request. It is
// safe for concurrent use.
//
// A collector runs one strategy.Session on its actor goroutine: it sends the
// request to the model actors the strategy launches (itself the sender, one
// key per call), owns one timer (time.AfterFunc sending itself a message, not
// protoactor's ReceiveTimeout), feeds results and timer ticks to the Session,
// answers its requester once with an *api.PredictResponse naming the
// strategy, the winning models and versions and the calls made, and stops.
// Having answered, it waits for the calls still outstanding until the
// deadline plus LateGrace, so their results are dropped and counted as late
// in Stats; results arriving after that are not counted.
type Collectors struct {
	system   *actor.ActorSystem
	cfg      CollectorConfig
	stats    *strategy.Stats
	replyPID *actor.PID
	calls    keyed.Table[*callRec]
	active   atomic.Int64
	spawned  atomic.Int64
	sweeper  *keyed.Sweeper[*callRec] // runs while calls are outstanding
}

// NewCollectors registers the collectors' reply process on system.
func NewCollectors(system *actor.ActorSystem, cfg CollectorConfig) (*Collectors, error) {
	if system == nil {
		return nil, errors.New("actors: collectors: nil actor system")
	}
	if cfg.Resolve == nil {
		return nil, errors.New("actors: collectors: nil Resolve")
	}
	if cfg.LateGrace <= 0 {
		cfg.LateGrace = DefaultLateGrace
	}
	if cfg.MaxCalls <= 0 {
		cfg.MaxCalls = strategy.DefaultMaxCalls
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cs := &Collectors{system: system, cfg: cfg, stats: cfg.Stats}
	cs.sweeper = keyed.NewSweeper(&cs.calls, sweepEvery, cs.checkLost, system.IsStopped)
	if cs.stats == nil {
		cs.stats = strategy.NewStats()
	}
	pid, ok := system.ProcessRegistry.Add(collectorReplies{cs}, "manta-collector-replies-"+system.ProcessRegistry.NextId())
	if !ok {
		return nil, errors.New("actors: collectors: reply process name taken")
	}
	cs.replyPID = pid
	return cs, nil
}

// Stats returns the per-strategy counters of every collector spawned here.
func (cs *Collectors) Stats() *strategy.Stats { return cs.stats }

// Active is the number of collectors alive (answering, or waiting for late
// results).
func (cs *Collectors) Active() int { return int(cs.active.Load()) }

// Spawned is the number of collectors spawned so far.
func (cs *Collectors) Spawned() int64 { return cs.spawned.Load() }

// Speculation is one speculative request, as a collector serves it.
type Speculation struct {
	// Strategy decides the request; it was built for this request alone
	// (strategy.New).
	Strategy strategy.Strategy
	// Request carries what every model receives: payload, content type,
	// request id, meta and the deadline (Unix ns; 0: strategy.DefaultTimeout).
	// ModelId and Version are ignored.
	Request *api.PredictRequest
	// Params are the strategy params (as given to its factory).
	Params map[string]string
	// Candidates are the models the strategy may call, with their live
	// latency stats and manifest quality, in the caller's order.
	Candidates []strategy.Candidate
	// ReplyTo receives the one *api.PredictResponse (required).
	ReplyTo *actor.PID
}

// Spawn starts the collector of one speculative request. Errors are bad
// arguments; everything after the spawn ends in the answer to ReplyTo.
func (cs *Collectors) Spawn(sp Speculation) (*actor.PID, error) {
	if sp.Strategy == nil || sp.Request == nil || sp.ReplyTo == nil {
		return nil, errors.New("actors: collector: Strategy, Request and ReplyTo are required")
	}
	c := &collector{cs: cs, sp: sp}
	props := actor.PropsFromProducer(func() actor.Actor { return c }, actor.WithDispatcher(mailboxes))
	cs.active.Add(1)
	cs.spawned.Add(1)
	pid, err := cs.system.Root.SpawnNamed(props, "collector"+cs.system.ProcessRegistry.NextId())
	if err != nil {
		cs.active.Add(-1)
		return nil, fmt.Errorf("actors: spawn collector: %w", err)
	}
	return pid, nil
}

// Messages of a collector (never cross a process).
type (
	// callReply is a model actor's answer to one call, routed by key.
	callReply struct {
		rec *callRec
		msg any
	}
	// callFailed: a call could not be sent.
	callFailed struct {
		rec *callRec
		err error
	}
	// callLost: the call's local activation stopped without answering it
	// (protoactor drops what is left in a stopped actor's mailbox).
	callLost struct {
		rec    *callRec
		target *actor.PID
	}
	// collectorWake is the collector's one timer firing.
	collectorWake struct{ gen uint64 }
)

// callRec is one model call of a collector.
type callRec struct {
	key       uint32
	collector *actor.PID
	identity  string
	req       *api.PredictRequest
	deadline  time.Time
	// target is the activation the call was sent to (set by the sending
	// goroutine, read by the collector on a DeadLetterResponse).
	target atomic.Pointer[actor.PID]
	sentAt atomic.Int64 // Unix ns of the last send
	// tries counts the sends (by the sending goroutines); replied belongs
	// to the collector's goroutine.
	tries   atomic.Int32
	replied bool
}

// replyInfo is what the answer takes from a model's successful result
// beside its output.
type replyInfo struct {
	contentType string
	servedBy    string
}

type collector struct {
	cs   *Collectors
	sp   Speculation
	se   *strategy.Session
	self *actor.PID

	calls   []*callRec
	reqs    map[string]*api.PredictRequest // per model id
	info    map[string]replyInfo           // per candidate identity
	replied int

	answered    bool
	lingerUntil time.Time
	timer       *time.Timer
	gen         uint64
	stopped     bool
}

func (c *collector) Receive(ctx actor.Context) {
	defer func() {
		if v := recover(); v != nil {
			c.cs.cfg.Logger.Error("collector panicked", slog.Any("panic", v), slog.String("stack", firstLines(debug.Stack(), 24)))
			c.answerErr(ctx, fmt.Errorf("%w: collector panicked: %v", api.ErrInternal, v))
			c.stop(ctx)
		}
	}()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		c.start(ctx)
	case *callReply:
		c.onReply(ctx, m)
	case *callFailed:
		c.onResult(ctx, m.rec, nil, m.err)
	case *callLost:
		c.retry(ctx, m.rec, m.target)
	case *collectorWake:
		if m.gen != c.gen {
			return // a timer re-armed since
		}
		if c.answered {
			c.stop(ctx) // the wait for late results is over
			return
		}
		c.do(ctx, c.se.OnTimer(time.Now()))
	case *actor.Stopped:
		c.cleanup()
	}
}

func (c *collector) start(ctx actor.Context) {
	c.self = ctx.Self()
	r := c.sp.Request
	req := &strategy.Request{ID: r.RequestId, Payload: r.Payload, ContentType: r.ContentType, Params: c.sp.Params}
	if r.Deadline > 0 {
		req.Deadline = time.Unix(0, r.Deadline)
	}
	c.se = strategy.NewSession(c.sp.Strategy, req, c.sp.Candidates, strategy.WithMaxCalls(c.cs.cfg.MaxCalls))
	c.do(ctx, c.se.Start(time.Now()))
}

// do performs the Session's actions in order.
func (c *collector) do(ctx actor.Context, acts []strategy.Action) {
	for _, a := range acts {
		switch a.Kind {
		case strategy.ActLaunch:
			c.launch(a.Model)
		case strategy.ActCancel:
			// Model actors cannot take a request back: the Session drops
			// the canceled calls' results as late.
		case strategy.ActWake:
			c.arm(a.At)
		case strategy.ActFinish:
			c.finish(ctx, a.Response)
		}
	}
}

func (c *collector) launch(identity string) {
	rec := &callRec{collector: c.self, identity: identity, req: c.request(identity), deadline: c.se.Deadline()}
	c.cs.calls.AddWith(func(k uint32) *callRec { rec.key = k; return rec }) // key set before the sweeper can see rec
	c.cs.watch()
	c.calls = append(c.calls, rec)
	mailboxes.Schedule(func() { c.cs.send(rec, 0) })
}

// request is the PredictRequest of one model, shared by its calls (model
// actors only read it).
func (c *collector) request(identity string) *api.PredictRequest {
	id := cluster.ModelOf(identity)
	if r, ok := c.reqs[id]; ok {
		return r
	}
	if c.reqs == nil {
		c.reqs = map[string]*api.PredictRequest{}
	}
	b := c.sp.Request
	r := &api.PredictRequest{ModelId: id, RequestId: b.RequestId, Payload: b.Payload, ContentType: b.ContentType,
		Deadline: c.se.Deadline().UnixNano(), Meta: b.Meta}
	c.reqs[id] = r
	return r
}

// arm (re)arms the one timer to fire at t.
func (c *collector) arm(t time.Time) {
	if c.timer != nil {
		c.timer.Stop()
	}
	c.gen++
	gen, self, root := c.gen, c.self, c.cs.system.Root
	c.timer = time.AfterFunc(time.Until(t), func() { root.Send(self, &collectorWake{gen: gen}) })
}

func (c *collector) onReply(ctx actor.Context, m *callReply) {
	rec := m.rec
	if rec.replied {
		return
	}
	switch msg := m.msg.(type) {
	case *api.PredictResponse:
		c.onResult(ctx, rec, msg, nil)
	case *actor.DeadLetterResponse:
		// The activation is gone (idle, evicted, moved): look it up again.
		c.retry(ctx, rec, rec.target.Swap(nil))
	default:
		c.onResult(ctx, rec, nil, fmt.Errorf("%w: %s answered with a %T", api.ErrInternal, rec.identity, m.msg))
	}
}

// retry sends a call whose activation is gone (old, when known) again,
// while tries and time remain; else the call fails with overloaded.
func (c *collector) retry(ctx actor.Context, rec *callRec, old *actor.PID) {
	if rec.replied {
		return
	}
	if old != nil && c.cs.cfg.Forget != nil {
		c.cs.cfg.Forget(rec.identity, old)
	}
	if int(rec.tries.Load()) < maxCallTries && time.Now().Before(rec.deadline) && !c.answered {
		wait := callRetry(int(rec.tries.Load()))
		mailboxes.Schedule(func() { c.cs.send(rec, wait) })
		return
	}
	c.onResult(ctx, rec, nil, fmt.Errorf("%w: %s: activation kept disappearing", api.ErrOverloaded, rec.identity))
}

// onResult feeds the result of one call to the Session.
func (c *collector) onResult(ctx actor.Context, rec *callRec, resp *api.PredictResponse, err error) {
	if rec.replied {
		return
	}
	rec.replied = true
	c.replied++
	c.cs.calls.Remove(rec.key)
	r := strategy.Result{Model: rec.identity, Err: err}
	if resp != nil {
		r.Version = resp.ModelVersion
		if r.Err = resp.Error.Err(); r.Err == nil {
			r.Output = resp.Output
			if c.info == nil {
				c.info = map[string]replyInfo{}
			}
			c.info[rec.identity] = replyInfo{contentType: resp.ContentType, servedBy: resp.ServedBy}
		}
	}
	c.do(ctx, c.se.OnResult(time.Now(), r))
	if c.answered && c.replied == len(c.calls) {
		c.stop(ctx) // nothing more can come
	}
}

// finish answers the requester and starts the wait for late results.
func (c *collector) finish(ctx actor.Context, r *strategy.Response) {
	if c.answered {
		return
	}
	c.cs.stats.Record(r)
	out := &api.PredictResponse{
		RequestId:  c.sp.Request.RequestId,
		ModelId:    c.sp.Request.ModelId,
		Duration:   int64(r.Elapsed()),
		Strategy:   r.Strategy,
		Models:     r.Models,
		Versions:   r.Versions,
		Calls:      int32(r.Calls),
		Hedges:     int32(r.Hedges),
		Fallback:   r.Fallback,
		Confidence: r.Confidence,
	}
	if r.Err != nil {
		out.Error = api.ErrorFrom(r.Err)
	} else {
		out.Output = r.Output
		out.ContentType = modelhost.ContentTypeJSON
		if len(r.Models) > 0 {
			out.ModelId = r.Models[0]
			if i := c.info[r.Models[0]]; len(r.Models) == 1 && i.contentType != "" {
				out.ContentType = i.contentType
			}
			out.ServedBy = c.info[r.Models[0]].servedBy
		}
		if len(r.Versions) > 0 {
			out.ModelVersion = r.Versions[0]
		}
	}
	c.answer(ctx, out)
	if c.replied == len(c.calls) {
		c.stop(ctx)
		return
	}
	until := c.se.Deadline()
	if now := time.Now(); now.After(until) {
		until = now
	}
	c.lingerUntil = until.Add(c.cs.cfg.LateGrace)
	c.arm(c.lingerUntil)
}

func (c *collector) answer(ctx actor.Context, resp *api.PredictResponse) {
	if c.answered {
		return
	}
	c.answered = true
	ctx.Send(c.sp.ReplyTo, resp)
}

// answerErr answers with err if the request was not answered yet (a panic
// in the collector itself).
func (c *collector) answerErr(ctx actor.Context, err error) {
	if c.answered {
		return
	}
	name := ""
	if c.se != nil {
		name = c.se.Name()
		c.cs.stats.Record(&strategy.Response{Strategy: name, Err: err})
	}
	c.answer(ctx, &api.PredictResponse{RequestId: c.sp.Request.RequestId, ModelId: c.sp.Request.ModelId,
		Strategy: name, Error: api.ErrorFrom(err)})
}

func (c *collector) stop(ctx actor.Context) {
	if c.stopped {
		return
	}
	c.stopped = true
	ctx.Stop(c.self)
}

// cleanup runs once the actor stopped: late results are counted, keys of
// calls that never answered are released.
func (c *collector) cleanup() {
	if c.timer != nil {
		c.timer.Stop()
	}
	for _, rec := range c.calls {
		if !rec.replied {
			c.cs.calls.Remove(rec.key)
		}
	}
	if c.se != nil {
		c.cs.stats.AddLate(c.se.Name(), c.se.Late())
	}
	c.cs.active.Add(-1)
}

// callRetry is the wait before try n+1 of a call: 5 ms, 10 ms, 20 ms... up
// to 320 ms, jittered.
func callRetry(tries int) time.Duration {
	return backoff.Delay(5*time.Millisecond, 320*time.Millisecond, tries)
}

// send resolves the call's model after wait and sends it the request, the
// collectors' reply process being the sender (tagged with the call's key).
// It runs off the collector's goroutine (on the pool of reused goroutines
// the model actors' mailboxes use): a cluster lookup may block, the
// collector must not.
func (cs *Collectors) send(rec *callRec, wait time.Duration) {
	for {
		if wait > 0 {
			if time.Now().Add(wait).After(rec.deadline) {
				cs.system.Root.Send(rec.collector, &callFailed{rec: rec,
					err: fmt.Errorf("%w: %s: no activation before the deadline", api.ErrOverloaded, rec.identity)})
				return
			}
			t := time.NewTimer(wait)
			<-t.C
		}
		tries := int(rec.tries.Add(1))
		pid, err := cs.cfg.Resolve(rec.identity)
		if err == nil && pid != nil {
			rec.sentAt.Store(time.Now().UnixNano())
			rec.target.Store(pid)
			sender := &actor.PID{Address: cs.replyPID.Address, Id: cs.replyPID.Id, RequestId: rec.key}
			cs.system.Root.RequestWithCustomSender(pid, rec.req, sender)
			return
		}
		if err == nil {
			err = errors.New("no activation")
		}
		if tries >= maxCallTries {
			cs.system.Root.Send(rec.collector, &callFailed{rec: rec, err: fmt.Errorf("%w: %s: %v", api.ErrOverloaded, rec.identity, err)})
			return
		}
		wait = callRetry(tries)
	}
}

// Lost calls: a call whose local activation is gone for lostAfter without
// an answer is sent again; the sweeper looks every sweepEvery.
const (
	lostAfter  = 250 * time.Millisecond
	sweepEvery = 50 * time.Millisecond
)

// watch makes sure the sweeper runs while calls are outstanding.
func (cs *Collectors) watch() { cs.sweeper.Wake() }

// checkLost is the sweeper's visit of one outstanding call: a call sent to
// a local activation that stopped before it read it (protoactor drops what
// is left in a stopped actor's mailbox, answering nobody) has its
// collector send it again, as the SDK's sweeper does for plain requests.
func (cs *Collectors) checkLost(now time.Time, rec *callRec) {
	tgt := rec.target.Load()
	if tgt == nil || tgt.Address != cs.system.Address() || now.UnixNano()-rec.sentAt.Load() < int64(lostAfter) {
		return
	}
	if _, alive := cs.system.ProcessRegistry.GetLocal(tgt.Id); alive {
		return
	}
	if rec.target.CompareAndSwap(tgt, nil) {
		cs.system.Root.Send(rec.collector, &callLost{rec: rec, target: tgt})
	}
}

// collectorReplies is the one process model actors answer collectors
// through: the PID's RequestId names the call, which names its collector.
type collectorReplies struct{ cs *Collectors }

func (p collectorReplies) SendUserMessage(pid *actor.PID, message any) {
	rec, _ := p.cs.calls.Get(pid.RequestId)
	if rec == nil {
		return // the collector stopped: a result after its wait for late ones
	}
	if env, ok := message.(*actor.MessageEnvelope); ok {
		message = env.Message
	}
	p.cs.system.Root.Send(rec.collector, &callReply{rec: rec, msg: message})
}

func (p collectorReplies) SendSystemMessage(*actor.PID, any) {}

func (p collectorReplies) Stop(*actor.PID) {}

// Interface guards.
var (
	_ actor.Actor   = (*collector)(nil)
	_ actor.Process = collectorReplies{}
)
