package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/quality"
)

// Internal messages of the model actor (never cross a process).
type (
	loaded struct {
		lease *modelhost.Lease
		err   error
	}
	flush     struct{}
	idleCheck struct{}
	batchDone struct{ ref *leaseRef }
	reloaded  struct {
		lease   *modelhost.Lease
		err     error
		reply   *actor.PID
		version string // the version the reload tried to load
	}
)

// leaseRef counts the batches running on one loaded version, so an old
// version is released only after its last batch (zero-downtime swap).
type leaseRef struct {
	lease *modelhost.Lease
	// inflight counts the batches running on the version; the worker that
	// ends a batch decrements it itself (the actor may have stopped by
	// then). Once retired (replaced, or the actor stopping), whoever sees
	// it retired with nothing in flight releases the lease, exactly once:
	// pinned memory never outlives the batches that use it.
	inflight atomic.Int32
	retired  atomic.Bool
	once     sync.Once
}

// release gives the lease back to the cache (once).
func (r *leaseRef) release() { r.once.Do(r.lease.Release) }

// retire marks the version replaced and releases it if no batch runs.
func (r *leaseRef) retire() {
	r.retired.Store(true)
	r.maybeRelease()
}

func (r *leaseRef) maybeRelease() {
	if r.retired.Load() && r.inflight.Load() == 0 {
		r.release()
	}
}

type pending struct {
	req     *api.PredictRequest
	sender  *actor.PID
	arrived time.Time
}

type actorState int

const (
	stateLoading actorState = iota
	stateReady
	stateFailed
	stateStopping
)

// modelActor is the grain serving one model (docs/ARCHITECTURE.md §2.1).
type modelActor struct {
	host     *Host
	identity string
	id       string
	self     *actor.PID
	system   *actor.ActorSystem

	state   actorState
	failErr error
	cur     *leaseRef
	queue   []pending

	maxSize     int
	maxWait     time.Duration
	maxInflight int
	inflight    int

	flushScheduled bool
	waitTimer      *time.Timer
	reloading      bool
	reloadReply    *actor.PID // who asked for the reload that runs
	registered     bool
	lastActive     time.Time
	swapTo         string     // drain-then-swap in progress to this version
	swapReply      *actor.PID // who asked for the reload
	swapFrom       string     // the version being replaced
	reloadWaiters  []*actor.PID
	jobs           chan job
	// workers counts the batch workers running; a worker exits when no
	// job waits, so an idle activation holds no goroutine.
	workers   *atomic.Int32
	idleTimer *time.Timer
	// life ends when the actor stops: loads and reloads run under it.
	life *lifetime
	// track is the activation's quality tracker, nil until the model is
	// monitored or gets a label (quality.go); the batch workers read it.
	track atomic.Pointer[quality.Tracker]
	// refAsked lists the versions whose reference file was asked for.
	refAsked map[string]bool
	// canary is a second version served to canaryShare of the requests
	// (canary.go); nil when none.
	canary      *leaseRef
	canaryShare float64
}

// armIdle schedules an idle check. (protoactor's ReceiveTimeout is not used:
// its timer races with the mailbox inside the library.)
func (a *modelActor) armIdle(d time.Duration) {
	if a.host.IdleTimeout <= 0 {
		return
	}
	self, sys := a.self, a.system
	a.idleTimer = time.AfterFunc(d, func() { sys.Root.Send(self, &idleCheck{}) })
}

func (a *modelActor) onIdleCheck(ctx actor.Context) {
	idleFor := time.Since(a.lastActive)
	busy := len(a.queue) > 0 || a.inflight > 0 || a.reloading || a.state == stateLoading
	if !busy && idleFor >= a.host.IdleTimeout {
		a.deactivate(ctx)
		return
	}
	next := a.host.IdleTimeout - idleFor
	if busy || next < time.Millisecond {
		next = a.host.IdleTimeout
	}
	a.armIdle(next)
}

func (a *modelActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *pcluster.ClusterInit:
		a.init(ctx, msg.Identity.Identity)
	case *api.PredictRequest:
		a.onRequest(ctx, msg)
	case *flush:
		a.flushScheduled = false
		a.dispatch(ctx, true)
	case *loaded:
		a.life.received(msg.lease)
		a.onLoaded(ctx, msg)
	case *batchDone:
		a.lastActive = time.Now()
		a.inflight--
		msg.ref.maybeRelease()
		if a.swapTo != "" {
			a.maybeDrainSwap(ctx)
			return
		}
		a.dispatch(ctx, true)
	case *api.ModelStatsRequest:
		st := a.host.Stats.Snapshot(a.id)
		st.ServedBy = a.host.Member
		if a.cur != nil {
			st.Version = a.cur.lease.Manifest().Version
			st.MemoryBytes = a.cur.lease.Model().MemoryBytes()
			if t := a.track.Load(); t != nil {
				st.LiveMeasure, st.LiveQuality, st.LiveJoined, _ = t.Live(st.Version)
			}
		}
		ctx.Respond(st)
	case *api.ReloadRequest:
		a.onReload(ctx)
	case *api.FeedbackRequest:
		a.onFeedback(ctx, msg)
	case *api.QualityRequest:
		a.onQuality(ctx)
	case *api.JoinState:
		a.onJoinState(msg)
	case *referenceLoaded:
		a.onReferenceLoaded(msg)
	case *api.CanaryRequest:
		a.onCanary(ctx, msg)
	case *canaryLoaded:
		a.life.received(msg.lease)
		a.onCanaryLoaded(msg)
	case *reloaded:
		a.life.received(msg.lease)
		a.onReloaded(ctx, msg)
	case *idleCheck:
		a.onIdleCheck(ctx)
	case *memoryPressure:
		if len(a.queue) == 0 && a.inflight == 0 && !a.reloading && a.state == stateReady {
			a.deactivate(ctx)
		}
	case *actor.Stopping:
		if a.idleTimer != nil {
			a.idleTimer.Stop()
		}
		// A load or reload still running ends now (its store reads and
		// cache acquire see the cancellation); a lease it already got is
		// released by life.
		if a.life != nil {
			a.life.end()
		}
		// Workers finish the jobs they hold and exit on their own.
		// Anything still queued is handed back, never dropped: the caller
		// treats a DeadLetterResponse as "activation gone" and retries.
		a.bounceQueue()
		for _, w := range a.reloadWaiters {
			a.system.Root.Send(w, &actor.DeadLetterResponse{Target: a.self})
		}
		a.reloadWaiters = nil
		// So is whoever asked for the rollout that runs (its answer
		// would come to a stopped actor).
		for _, w := range []*actor.PID{a.reloadReply, a.swapReply} {
			if w != nil {
				a.system.Root.Send(w, &actor.DeadLetterResponse{Target: a.self})
			}
		}
		a.reloadReply, a.swapReply = nil, nil
		if a.cur != nil {
			// released now, or by the worker that ends the last batch
			a.cur.retire()
			a.cur = nil
		}
		a.endCanary()
		a.handOff()
		if a.registered {
			a.host.deactivated(a.identity, a.self)
		}
	}
}

func (a *modelActor) init(ctx actor.Context, identity string) {
	a.life = newLifetime()
	a.identity = identity
	a.id = cluster.ModelOf(identity)
	a.self = ctx.Self()
	a.system = ctx.ActorSystem()
	a.maxInflight = a.host.MaxInflightBatches
	if a.maxInflight <= 0 {
		a.maxInflight = 1
	}
	a.host.activated(a.system, identity, a.self)
	a.registered = true
	a.lastActive = time.Now()
	a.armIdle(a.host.IdleTimeout)
	if err := modelhost.ValidID(a.id); err != nil {
		a.fail(ctx, api.Errorf(api.ErrorCode_ERROR_CODE_NOT_FOUND, "model %q: %v", a.id, err))
		return
	}
	a.load("")
}

// load acquires version (the one to serve when "") on a goroutine and
// hands the outcome to the actor as a loaded message.
func (a *modelActor) load(version string) {
	self, sys, host, id, life := a.self, a.system, a.host, a.id, a.life
	go func() {
		lease, err := acquire(life.ctx, host, id, version)
		life.deliver(sys, self, lease, &loaded{lease: lease, err: err})
	}()
}

// acquire resolves the version to serve (or version) and loads it through
// the member's cache, within Host.LoadTimeout and ctx (the actor's life, or
// a reload's bound). A panicking store or runtime becomes load_failed, and
// so does a load that runs out of time.
func acquire(ctx context.Context, host *Host, id, version string) (lease *modelhost.Lease, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = api.Errorf(api.ErrorCode_ERROR_CODE_LOAD_FAILED, "model %s: load panicked: %v", id, r)
		}
	}()
	limit := host.loadTimeout()
	lctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	lease, err = resolveAndAcquire(lctx, host, id, version)
	if err != nil && ctx.Err() == nil && errors.Is(lctx.Err(), context.DeadlineExceeded) {
		err = api.Errorf(api.ErrorCode_ERROR_CODE_LOAD_FAILED, "model %s: load timed out after %v: %v", id, limit, err)
	}
	return lease, err
}

func resolveAndAcquire(ctx context.Context, host *Host, id, version string) (lease *modelhost.Lease, err error) {
	if version == "" {
		version, err = host.Store.Latest(ctx, id)
		if err != nil {
			return nil, storeErr(fmt.Errorf("model %s: %w", id, err))
		}
	}
	m, err := host.Store.Manifest(ctx, id, version)
	if err != nil {
		return nil, storeErr(fmt.Errorf("model %s v%s: %w", id, version, err))
	}
	return host.Cache.Acquire(ctx, m)
}

// storeErr classifies a store failure that carries no code (the store is
// unreachable, a read failed) as load_failed: the model could not be loaded.
func storeErr(err error) error {
	if api.CodeOf(err) == api.ErrorCode_ERROR_CODE_INTERNAL {
		return fmt.Errorf("%w: %w", api.ErrLoadFailed, err)
	}
	return err
}

func (a *modelActor) onLoaded(ctx actor.Context, msg *loaded) {
	if a.swapFrom != "" {
		// the load of a drain-then-swap rollout
		from, reply := a.swapFrom, a.swapReply
		a.swapFrom, a.swapReply = "", nil
		if msg.err != nil {
			// The new version does not load: go back to the old one.
			r := &api.ReloadResponse{ModelId: a.id, Version: from, Error: api.ErrorFrom(msg.err)}
			if reply != nil {
				a.system.Root.Send(reply, r)
			}
			a.answerReloadWaiters(r)
			a.load(from)
			return
		}
		r := &api.ReloadResponse{ModelId: a.id, Version: msg.lease.Manifest().Version, Changed: true}
		if reply != nil {
			a.system.Root.Send(reply, r)
		}
		a.answerReloadWaiters(r)
	}
	if msg.err != nil {
		a.fail(ctx, msg.err)
		return
	}
	a.cur = &leaseRef{lease: msg.lease}
	if msg.lease.Manifest().Monitor {
		a.tracker()
	}
	a.maybeReference()
	if a.state != stateReady && a.host.OnReady != nil {
		a.host.OnReady(a.identity)
	}
	a.state = stateReady
	b := msg.lease.Manifest().Batch
	a.maxSize = b.MaxSize
	if a.maxSize <= 0 {
		a.maxSize = a.host.DefaultBatch.MaxSize
	}
	if a.maxSize <= 0 {
		a.maxSize = 1
	}
	wait := b.MaxWaitMS
	if wait <= 0 {
		wait = a.host.DefaultBatch.MaxWaitMS
	}
	a.maxWait = time.Duration(wait) * time.Millisecond
	// Reloads that came while the first load ran learn the version served.
	a.answerReloadWaiters(&api.ReloadResponse{ModelId: a.id, Version: msg.lease.Manifest().Version})
	a.dispatch(ctx, true)
}

// fail answers everything queued with err and stops the actor, so a model
// that does not exist (or cannot load) leaves no actor behind; the next
// request activates a fresh one and tries again.
func (a *modelActor) fail(ctx actor.Context, err error) {
	a.state = stateFailed
	a.failErr = err
	for _, p := range a.queue {
		a.respondErr(p, err)
	}
	a.queue = nil
	a.answerReloadWaiters(&api.ReloadResponse{ModelId: a.id, Error: api.ErrorFrom(err)})
	a.host.logger().Debug("model actor failed", slog.String("model", a.id), slog.Any("error", err))
	a.stop(ctx)
}

func (a *modelActor) stop(ctx actor.Context) {
	if cl := pcluster.GetCluster(ctx.ActorSystem()); cl != nil {
		cl.PidCache.RemoveByValue(a.identity, cluster.KindModel, a.self)
	}
	ctx.Poison(a.self)
}

func (a *modelActor) deactivate(ctx actor.Context) {
	a.state = stateStopping
	a.stop(ctx)
}

// bounce tells a caller this activation is going away, so it re-resolves
// the identity and sends again.
func (a *modelActor) bounce(p pending) {
	a.system.Root.Send(p.sender, &actor.DeadLetterResponse{Target: a.self})
}

func (a *modelActor) bounceQueue() {
	for _, p := range a.queue {
		a.bounce(p)
	}
	a.queue = nil
}

func (a *modelActor) onRequest(ctx actor.Context, req *api.PredictRequest) {
	p := pending{req: req, sender: ctx.Sender(), arrived: time.Now()}
	a.lastActive = p.arrived
	if p.sender == nil {
		return // a plain Send has nobody to answer
	}
	switch a.state {
	case stateFailed:
		a.respondErr(p, a.failErr)
		return
	case stateStopping:
		a.bounce(p)
		return
	}
	a.queue = append(a.queue, p)
	if a.state != stateReady {
		return
	}
	if len(a.queue) >= a.maxSize {
		a.dispatch(ctx, true)
		return
	}
	if !a.flushScheduled {
		// Drain the mailbox: everything queued before this flush message
		// joins the batch.
		a.flushScheduled = true
		ctx.Send(a.self, &flush{})
	}
}

// dispatch starts batches while there is room. When the model is busy and
// a batch is not full it waits up to max_wait for it to fill.
func (a *modelActor) dispatch(ctx actor.Context, drained bool) {
	if a.state != stateReady || a.swapTo != "" {
		return
	}
	for len(a.queue) > 0 && a.inflight < a.maxInflight {
		n := len(a.queue)
		if n > a.maxSize {
			n = a.maxSize
		}
		if n < a.maxSize && a.inflight > 0 && a.maxWait > 0 {
			age := time.Since(a.queue[0].arrived)
			if age < a.maxWait {
				if a.waitTimer == nil {
					self, sys := a.self, a.system
					a.waitTimer = time.AfterFunc(a.maxWait-age, func() { sys.Root.Send(self, &flush{}) })
				}
				return
			}
		}
		if a.waitTimer != nil {
			a.waitTimer.Stop()
			a.waitTimer = nil
		}
		batch := make([]pending, n)
		copy(batch, a.queue[:n])
		rest := copy(a.queue, a.queue[n:])
		for i := rest; i < len(a.queue); i++ {
			a.queue[i] = pending{}
		}
		a.queue = a.queue[:rest]
		if a.canary != nil {
			// a canary runs: its share of the batch goes to its version
			var stable, canary []pending
			for _, p := range batch {
				if a.toCanary(p) {
					canary = append(canary, p)
				} else {
					stable = append(stable, p)
				}
			}
			if len(canary) > 0 {
				a.runBatchOn(a.canary, canary)
			}
			if len(stable) == 0 {
				continue
			}
			batch = stable
		}
		a.runBatch(batch)
	}
}

type job struct {
	ref   *leaseRef
	batch []pending
}

// runBatch hands a batch to one of the actor's worker goroutines. Workers
// are long-lived (started on demand, up to maxInflight, ended when the
// actor stops): a goroutine per batch spent a fifth of the CPU growing
// fresh stacks.
func (a *modelActor) runBatch(batch []pending) { a.runBatchOn(a.cur, batch) }

// runBatchOn runs batch on the version ref holds (the one served, or the
// canary's).
func (a *modelActor) runBatchOn(ref *leaseRef, batch []pending) {
	ref.inflight.Add(1)
	a.inflight++
	a.host.batches.Add(1)
	if a.jobs == nil {
		a.jobs = make(chan job, 2*a.maxInflight) // a canary's batch may come on top
		a.workers = new(atomic.Int32)
	}
	a.jobs <- job{ref: ref, batch: batch}
	// Push first, then count: a worker that is leaving decrements before
	// its last look at the channel, so either it sees this job or this
	// count sees it gone.
	if a.workers.Load() < int32(a.inflight) {
		a.workers.Add(1)
		go a.worker(a.jobs, a.workers)
	}
}

// worker runs batches while jobs wait and exits when none does, so a
// model actor between bursts holds no goroutine. (A worker per burst,
// not per batch: a goroutine per batch spent a fifth of the CPU growing
// fresh stacks.)
func (a *modelActor) worker(jobs chan job, workers *atomic.Int32) {
	for {
		select {
		case j := <-jobs:
			a.predict(j.ref, j.batch)
			continue
		default:
		}
		workers.Add(-1)
		select {
		case j := <-jobs:
			workers.Add(1)
			a.predict(j.ref, j.batch)
		default:
			return
		}
	}
}

// predict runs off the actor goroutine so the mailbox keeps accepting.
func (a *modelActor) predict(ref *leaseRef, batch []pending) {
	root := a.system.Root
	now := time.Now()
	m := ref.lease.Manifest()
	inputs := make([]modelhost.Input, 0, len(batch))
	live := make([]pending, 0, len(batch))
	var deadline time.Time
	errs := 0
	for _, p := range batch {
		dl := a.deadlineOf(p)
		if !now.Before(dl) {
			a.respondErr(p, api.Errorf(api.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED, "model %s: deadline passed while queued", a.id))
			errs++
			continue
		}
		if p.req.Version != "" && p.req.Version != m.Version {
			a.respondErr(p, api.Errorf(api.ErrorCode_ERROR_CODE_NOT_FOUND, "model %s: version %s is not served here (serving %s)", a.id, p.req.Version, m.Version))
			errs++
			continue
		}
		if dl.After(deadline) {
			deadline = dl
		}
		inputs = append(inputs, modelhost.Input{Payload: p.req.Payload, ContentType: p.req.ContentType})
		live = append(live, p)
	}
	var durations []int64
	var resps []*api.PredictResponse
	if len(live) > 0 {
		var report *BatchReport
		if a.host.OnBatch != nil {
			report = &BatchReport{Model: a.id, Version: m.Version,
				Durations: make([]time.Duration, 0, len(live)), Codes: make([]string, 0, len(live))}
		}
		pctx, cancel := context.WithDeadline(context.Background(), deadline)
		t0 := time.Now()
		outs, err := a.safePredict(pctx, ref.lease.Model(), inputs)
		predictTime := time.Since(t0)
		expired := pctx.Err() != nil
		cancel()
		if err == nil && len(outs) != len(inputs) {
			err = api.Errorf(api.ErrorCode_ERROR_CODE_INTERNAL, "model %s: runtime returned %d outputs for %d inputs", a.id, len(outs), len(inputs))
		}
		if err != nil && expired && errors.Is(err, context.DeadlineExceeded) {
			err = api.Errorf(api.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED, "model %s: %v", a.id, err)
		}
		end := time.Now()
		durations = make([]int64, len(live))
		resps = make([]*api.PredictResponse, len(live))
		for i, p := range live {
			d := end.Sub(p.arrived)
			durations[i] = int64(d)
			resp := &api.PredictResponse{
				RequestId:    p.req.RequestId,
				ModelId:      a.id,
				ModelVersion: m.Version,
				Duration:     int64(d),
				ServedBy:     a.host.Member,
				BatchSize:    int32(len(live)),
			}
			if err != nil {
				resp.Error = api.ErrorFrom(err)
				errs++
			} else if o := outs[i]; o.Err != nil {
				resp.Error = api.ErrorFrom(o.Err)
				errs++
			} else {
				resp.Output = o.Payload
				resp.ContentType = o.ContentType
				if resp.ContentType == "" {
					resp.ContentType = modelhost.ContentTypeJSON
				}
			}
			resps[i] = resp
			if report != nil {
				report.Durations = append(report.Durations, d)
				report.Codes = append(report.Codes, resp.Error.GetCode().Name())
			}
		}
		if report != nil {
			report.Size = len(live)
			report.Predict = predictTime
			a.host.OnBatch(*report)
		}
	}
	// Stats and metrics first, answers after: a caller whose Get returned
	// finds its request counted.
	a.host.Stats.RecordBatch(a.id, m.Version, durations, errs, ref.lease.Model().MemoryBytes())
	track := a.track.Load() // a monitored activation; else one atomic load per batch
	if track != nil && resps != nil {
		// In the ring before the answers go: a label may follow at once.
		at := time.Now()
		for i, p := range live {
			if r := resps[i]; r.Error == nil {
				track.ObserveAnswer(m.Version, p.req.RequestId, r.Output, at)
			}
		}
	}
	for i, p := range live {
		if resps != nil && resps[i] != nil {
			root.Send(p.sender, resps[i])
		}
	}
	ref.inflight.Add(-1)
	ref.maybeRelease() // the actor may be gone: the lease is released here then
	root.Send(a.self, &batchDone{ref: ref})
	if track != nil && resps != nil {
		// The drift histograms last, after batchDone: no caller waits for
		// the features' parse, and the actor does not count this worker
		// as busy. (Before batchDone, a sequential caller's next request
		// found the batch still in flight and a second worker goroutine
		// was started for it: +15-30% per request. Now the next batch, if
		// it comes this soon, waits in the channel for this worker, whose
		// stack is already grown.) The tracker has its own lock; drift
		// counted here after the actor stopped is at worst lost.
		for i, p := range live {
			if r := resps[i]; r.Error == nil {
				track.ObserveInput(m.Version, p.req.Payload, r.Output)
			}
		}
	}
}

func (a *modelActor) deadlineOf(p pending) time.Time {
	if p.req.Deadline > 0 {
		return time.Unix(0, p.req.Deadline)
	}
	d := a.host.DefaultDeadline
	if d <= 0 {
		d = 30 * time.Second
	}
	return p.arrived.Add(d)
}

// safePredict recovers a panicking model into an internal error for this
// batch; the member keeps serving. The stack goes to the log.
func (a *modelActor) safePredict(ctx context.Context, m modelhost.Model, in []modelhost.Input) (out []modelhost.Output, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = api.Errorf(api.ErrorCode_ERROR_CODE_INTERNAL, "model %s panicked: %v", a.id, r)
			a.host.logger().Error("model panicked", slog.String("model", a.id), slog.Any("panic", r), slog.String("stack", firstLines(debug.Stack(), 24)))
		}
	}()
	return m.Predict(ctx, in)
}

func firstLines(b []byte, n int) string {
	s := string(b)
	for i, c := 0, 0; i < len(s); i++ {
		if s[i] == '\n' {
			c++
			if c == n {
				return s[:i]
			}
		}
	}
	return s
}

func (a *modelActor) respondErr(p pending, err error) {
	a.host.Stats.RecordError(a.id)
	if a.host.OnError != nil {
		a.host.OnError(a.id, api.CodeOf(err).Name())
	}
	resp := &api.PredictResponse{
		RequestId: p.req.RequestId,
		ModelId:   a.id,
		ServedBy:  a.host.Member,
		Error:     api.ErrorFrom(err),
		Duration:  int64(time.Since(p.arrived)),
	}
	if a.cur != nil {
		resp.ModelVersion = a.cur.lease.Manifest().Version
	}
	a.system.Root.Send(p.sender, resp)
}

// onReload re-resolves the version; a new one is loaded beside the old one
// and swapped in by onReloaded.
func (a *modelActor) onReload(ctx actor.Context) {
	sender := ctx.Sender()
	if a.reloading || a.swapTo != "" || a.swapFrom != "" {
		// one rollout at a time: answer when the running one ends
		if sender != nil {
			a.reloadWaiters = append(a.reloadWaiters, sender)
		}
		return
	}
	switch a.state {
	case stateLoading:
		// A fresh activation still loading the version to serve: answer
		// with the load's outcome (onLoaded, or fail), not with "nothing
		// changed" before the store was even read.
		if sender != nil {
			a.reloadWaiters = append(a.reloadWaiters, sender)
		}
		return
	case stateFailed:
		if sender != nil {
			ctx.Respond(&api.ReloadResponse{ModelId: a.id, Error: api.ErrorFrom(a.failErr)})
		}
		return
	}
	if a.state != stateReady {
		if sender != nil {
			v := ""
			if a.cur != nil {
				v = a.cur.lease.Manifest().Version
			}
			ctx.Respond(&api.ReloadResponse{ModelId: a.id, Version: v})
		}
		return
	}
	a.reloading = true
	a.reloadReply = sender
	self, sys, host, id, curVersion, life := a.self, a.system, a.host, a.id, a.cur.lease.Manifest().Version, a.life
	go func() {
		lease, latest, err := reload(life.ctx, host, id, curVersion)
		life.deliver(sys, self, lease, &reloaded{lease: lease, err: err, reply: sender, version: latest})
	}()
}

// reload re-resolves the version of id to serve and, when it is not
// curVersion, loads it beside curVersion: within Host.ReloadTimeout and
// ctx (the actor's life), so a hung store cannot leave the actor reloading
// (never idle, its reload waiters never answered). A reload that runs out
// of time is load_failed and the old version keeps serving. No lease and
// no error: nothing changed.
func reload(ctx context.Context, host *Host, id, curVersion string) (lease *modelhost.Lease, latest string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = api.Errorf(api.ErrorCode_ERROR_CODE_LOAD_FAILED, "model %s: reload panicked: %v", id, r)
		}
	}()
	limit := host.reloadTimeout()
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	latest, err = host.Store.Latest(rctx, id)
	if err == nil && latest == curVersion {
		return nil, latest, nil
	}
	if err == nil {
		// Beside the old version only if it fits next to what is pinned
		// (the old version included); else drain, then swap.
		if m, merr := host.Store.Manifest(rctx, id, latest); merr == nil {
			if need, room := host.Cache.Estimate(m), host.Cache.Room(); need > room {
				err = api.Errorf(api.ErrorCode_ERROR_CODE_OVERLOADED, "model %s: v%s (%d bytes) does not fit beside v%s (%d bytes free)", id, latest, need, curVersion, room)
			}
		}
		if err == nil {
			lease, err = acquire(rctx, host, id, latest)
		}
	}
	if err != nil && ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded) {
		err = api.Errorf(api.ErrorCode_ERROR_CODE_LOAD_FAILED, "model %s: reload timed out after %v: %v", id, limit, err)
	}
	return lease, latest, err
}

func (a *modelActor) onReloaded(ctx actor.Context, msg *reloaded) {
	a.reloading = false
	a.reloadReply = nil
	resp := &api.ReloadResponse{ModelId: a.id}
	switch {
	case msg.err != nil && a.cur != nil && (errors.Is(msg.err, api.ErrOverloaded) || errors.Is(msg.err, api.ErrTooLarge)) && msg.version != "":
		// No room for both versions: drain the running batches, release
		// the old version, then load the new one. Requests wait in the
		// queue meanwhile; none fails.
		a.swapTo = msg.version
		a.swapReply = msg.reply
		a.maybeDrainSwap(ctx)
		return
	case msg.err != nil:
		resp.Error = api.ErrorFrom(msg.err)
	case msg.lease != nil && a.cur != nil:
		old := a.cur
		a.cur = &leaseRef{lease: msg.lease}
		old.retire()
		resp.Changed = true
		if a.canary != nil && a.canary.lease.Manifest().Version == msg.lease.Manifest().Version {
			a.endCanary() // the canary was promoted: everyone gets it now
		}
		if msg.lease.Manifest().Monitor {
			a.tracker()
		}
		a.maybeReference()
	case msg.lease != nil:
		msg.lease.Release()
	}
	if a.cur != nil {
		resp.Version = a.cur.lease.Manifest().Version
	}
	if msg.reply != nil {
		a.system.Root.Send(msg.reply, resp)
	}
	a.answerReloadWaiters(resp)
}

func (a *modelActor) answerReloadWaiters(resp *api.ReloadResponse) {
	for _, w := range a.reloadWaiters {
		a.system.Root.Send(w, resp)
	}
	a.reloadWaiters = nil
}

// maybeDrainSwap completes a drain-then-swap once no batch runs: release
// the old version, then load the new one (onLoaded resumes serving).
func (a *modelActor) maybeDrainSwap(ctx actor.Context) {
	if a.inflight > 0 || a.swapTo == "" {
		return
	}
	to := a.swapTo
	a.swapTo = ""
	a.swapFrom = a.cur.lease.Manifest().Version
	a.cur.retire() // nothing runs: released now
	a.cur = nil
	a.state = stateLoading
	a.load(to)
}
