package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/backoff"
	"github.com/manta-ml/manta/internal/redact"
)

// Dispatcher serves one request. The SDK's *manta.Client is one; the router
// depends on nothing else of it. Do never returns nil: a model error is a
// response whose Error is set. It should return by ctx's deadline.
type Dispatcher interface {
	Do(ctx context.Context, req *api.PredictRequest) *api.PredictResponse
}

// Speculator is the optional ability of a Dispatcher to run a speculative
// request (a strategy over several models), found by type assertion. When
// the dispatcher lacks it, entries with a strategy get a bad_input result.
type Speculator interface {
	SpeculateRequest(ctx context.Context, strategy string, models []string, req *api.PredictRequest) *api.PredictResponse
}

// Feedbacker is the optional ability of a Dispatcher to take ground-truth
// labels (the SDK's *manta.Client has it), found by type assertion. When
// the dispatcher has it and Config.FeedbackStream is set, the router
// reads that stream too. An error wrapping not_found or bad_input
// dead-letters the entry (feedback_failed); any other leaves it pending,
// to be served again after MinIdle.
type Feedbacker interface {
	FeedbackRequest(ctx context.Context, req *api.FeedbackRequest) error
}

// Errors of Run.
var (
	ErrClosed  = errors.New("router: closed")
	ErrRunning = errors.New("router: already running")
)

// Option configures New beyond Config.
type Option func(*Router)

// WithClient makes the router use c instead of dialing Config.URL. The
// router does not close it. Several request streams in one XREADGROUP need
// them on one node: use a plain client, not a cluster client, for that.
func WithClient(c redis.UniversalClient) Option {
	return func(r *Router) { r.rdb, r.ownClient = c, false }
}

// maxWriteBatch bounds the results written in one pipeline.
const maxWriteBatch = 512

// Router reads request entries from Redis streams as a member of a consumer
// group, serves them through a Dispatcher and writes the results. See the
// package documentation.
type Router struct {
	cfg       Config
	rdb       redis.UniversalClient
	ownClient bool
	disp      Dispatcher
	spec      Speculator
	fb        Feedbacker
	streams   []string // the request streams, and the feedback stream when read
	log       *slog.Logger
	isRequest map[string]bool // request stream names
	readArgs  []string        // XREADGROUP STREAMS arguments: names then ">"s
	readLeast int             // slots a read waits for: min(BatchSize, InFlight/4)

	slots    chan struct{} // one token per entry read and not yet acknowledged
	out      chan *job     // finished entries, to the writer
	work     chan task     // entries to serve, to idle workers
	workers  int           // workers started (by the reading goroutines, under mu)
	c        counters
	inflight sync.WaitGroup // entries between read and acknowledgement

	mineMu sync.Mutex
	mine   map[entryKey]struct{} // entries in flight here

	mu         sync.Mutex
	state      int // stateNew, stateRunning, stateDone
	hardCtx    context.Context
	hardCancel context.CancelFunc
	readCancel context.CancelFunc
	done       chan struct{} // closed when Run has returned
	closeOnce  sync.Once
}

const (
	stateNew = iota
	stateRunning
	stateDone
)

// New builds a router; it does not connect (Run does, and keeps retrying
// while Redis is away). cfg is validated.
func New(cfg Config, d Dispatcher, opts ...Option) (*Router, error) {
	if d == nil {
		return nil, errors.New("router: nil dispatcher")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ReclaimInterval == 0 {
		cfg.ReclaimInterval = cfg.MinIdle / 4
	}
	r := &Router{
		cfg:       cfg,
		disp:      d,
		log:       cfg.Logger,
		isRequest: map[string]bool{},
		slots:     make(chan struct{}, cfg.InFlight),
		out:       make(chan *job, cfg.InFlight),
		work:      make(chan task),
		mine:      map[entryKey]struct{}{},
		done:      make(chan struct{}),
	}
	r.readLeast = max(1, min(cfg.BatchSize, cfg.InFlight/4))
	r.spec, _ = d.(Speculator)
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.streams = append(r.streams, cfg.Streams...)
	for _, s := range cfg.Streams {
		r.isRequest[s] = true
	}
	if fb, ok := d.(Feedbacker); ok && cfg.FeedbackStream != "" {
		r.fb = fb
		r.streams = append(r.streams, cfg.FeedbackStream)
	}
	r.readArgs = append(r.readArgs, r.streams...)
	for range r.streams {
		r.readArgs = append(r.readArgs, ">")
	}
	for _, o := range opts {
		o(r)
	}
	if r.rdb == nil {
		opt, err := cfg.RedisOptions()
		if err != nil {
			return nil, err
		}
		if opt.ClientName == "" {
			// For CLIENT LIST; CLIENT SETNAME refuses spaces.
			opt.ClientName = "manta-router-" + strings.Map(func(c rune) rune {
				if c <= ' ' || c > '~' {
					return '_'
				}
				return c
			}, cfg.Consumer)
		}
		r.rdb, r.ownClient = redis.NewClient(opt), true
	}
	return r, nil
}

// Stats returns the router's counters.
func (r *Router) Stats() Stats { return r.c.snapshot() }

// Run consumes entries until Shutdown (then it returns nil) or until ctx
// is cancelled: that is an immediate stop, where entries in flight are
// left unacknowledged, pending for another router to reclaim, and Run
// returns ctx.Err(). Redis being unreachable is not an error: Run retries
// with backoff, and recreates the group if Redis lost it.
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	switch r.state {
	case stateRunning:
		r.mu.Unlock()
		return ErrRunning
	case stateDone:
		r.mu.Unlock()
		return ErrClosed
	}
	r.state = stateRunning
	r.hardCtx, r.hardCancel = context.WithCancel(ctx)
	readCtx, readCancel := context.WithCancel(r.hardCtx)
	r.readCancel = readCancel
	r.mu.Unlock()
	defer close(r.done)
	defer r.hardCancel()

	r.log.Info("router starting", "url", redact.URL(r.cfg.URL), "streams", r.cfg.Streams,
		"group", r.cfg.Group, "consumer", r.cfg.Consumer)

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		r.writeLoop()
	}()

	if r.ensureGroupsRetry(readCtx) {
		var bg sync.WaitGroup
		bg.Add(1)
		go func() {
			defer bg.Done()
			r.reclaimLoop(readCtx)
		}()
		r.readLoop(readCtx)
		bg.Wait()
	}
	close(r.work)     // nothing dispatches any more: workers exit when idle
	r.inflight.Wait() // every entry read is acknowledged or abandoned
	close(r.out)
	<-writerDone

	r.mu.Lock()
	r.state = stateDone
	r.mu.Unlock()
	st := r.Stats()
	r.log.Info("router stopped", "results", st.Results, "dead", st.Dead, "abandoned", st.Abandoned)
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}

// Shutdown stops reading, waits for the entries in flight to be answered
// and acknowledged, and closes the Redis client (unless given by
// WithClient). When ctx ends first, the entries still in flight are left
// unacknowledged, pending for reclaim, and ctx.Err() is returned.
// Nothing is acknowledged that was not answered.
func (r *Router) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	st := r.state
	if st == stateNew {
		r.state = stateDone
	}
	readCancel := r.readCancel
	r.mu.Unlock()

	var err error
	if st != stateNew {
		readCancel()
		select {
		case <-r.done:
		case <-ctx.Done():
			err = ctx.Err()
			r.hardCancel()
			<-r.done
		}
	}
	r.closeOnce.Do(func() {
		if r.ownClient {
			if cerr := r.rdb.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("router: close redis client: %w", cerr)
			}
		}
	})
	return err
}

// Close stops at once: entries in flight are left pending for reclaim.
func (r *Router) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := r.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// ensureGroupsRetry creates the group on every stream, retrying with
// backoff until it succeeds (true) or ctx ends (false).
func (r *Router) ensureGroupsRetry(ctx context.Context) bool {
	bo := backoff.New(r.cfg.RetryMin, r.cfg.RetryMax)
	for {
		err := r.ensureGroups(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.c.redisErrors.Add(1)
		r.log.Warn("router: create consumer group", "err", err)
		if !bo.Wait(ctx) {
			return false
		}
	}
}

// ensureGroups creates the group on every stream (and the stream) where it
// is missing, from the stream's beginning: entries written before any
// router ran, or while Redis had lost the group, are served too.
func (r *Router) ensureGroups(ctx context.Context) error {
	for _, s := range r.streams {
		err := r.rdb.XGroupCreateMkStream(ctx, s, r.cfg.Group, "0").Err()
		switch {
		case err == nil:
			r.c.groupsCreated.Add(1)
			r.log.Info("router: created consumer group", "stream", s, "group", r.cfg.Group)
		case redis.HasErrorPrefix(err, "BUSYGROUP"):
		default:
			return fmt.Errorf("create group %s on %s: %w", r.cfg.Group, s, err)
		}
	}
	return nil
}

// acquire takes between least and n in-flight slots, waiting for the
// first least; it returns 0 when ctx ends (giving back what it took). This
// is the backpressure: no slot, no read. Waiting for a few slots rather
// than one keeps a saturated router from reading one entry per round trip.
func (r *Router) acquire(ctx context.Context, least, n int) int {
	got := 0
	for got < least {
		select {
		case r.slots <- struct{}{}:
			got++
		case <-ctx.Done():
			r.release(got)
			return 0
		}
	}
	for got < n {
		select {
		case r.slots <- struct{}{}:
			got++
		default:
			return got
		}
	}
	return got
}

func (r *Router) release(n int) {
	for range n {
		<-r.slots
	}
}

// readLoop reads new entries until ctx ends. The read itself runs under the
// hard context, so a graceful stop lets the read under way finish (at most
// Config.Block) and serves what it returned.
func (r *Router) readLoop(ctx context.Context) {
	bo := backoff.New(r.cfg.RetryMin, r.cfg.RetryMax)
	for ctx.Err() == nil {
		n := r.acquire(ctx, r.readLeast, r.cfg.BatchSize)
		if n == 0 {
			return
		}
		res, err := r.rdb.XReadGroup(r.hardCtx, &redis.XReadGroupArgs{
			Group:    r.cfg.Group,
			Consumer: r.cfg.Consumer,
			Streams:  r.readArgs,
			Count:    int64(n),
			Block:    r.cfg.Block,
		}).Result()
		got := 0
		var sd *sharedDeadline
		for _, s := range res {
			for _, m := range s.Messages {
				r.c.read.Add(1)
				if !r.start1(s.Stream, m.ID) {
					continue // cannot happen for new entries; its slot goes back below
				}
				if sd == nil {
					sd = r.newSharedDeadline()
				}
				got++
				r.handle(s.Stream, m, false, sd)
			}
		}
		sd.release()
		r.release(n - got)
		switch {
		case err == nil || errors.Is(err, redis.Nil):
			bo.Reset()
		case r.hardCtx.Err() != nil:
			return
		case redis.HasErrorPrefix(err, "NOGROUP"):
			// Redis restarted without persistence: the group is gone.
			r.log.Warn("router: consumer group missing, recreating", "err", err)
			if !r.ensureGroupsRetry(ctx) {
				return
			}
		default:
			r.c.redisErrors.Add(1)
			r.log.Warn("router: read", "err", err)
			if !bo.Wait(ctx) {
				return
			}
		}
	}
}

// handle takes one delivered entry, already started with start1 and
// holding an in-flight slot: a malformed one goes to the writer as a dead
// letter, a good one to a worker.
func (r *Router) handle(stream string, m redis.XMessage, redelivered bool, sd *sharedDeadline) {
	j := &job{stream: stream, msgID: m.ID, fields: m.Values, redelivered: redelivered}
	if r.fb != nil && stream == r.cfg.FeedbackStream {
		r.handleFeedback(j, m)
		return
	}
	e, err := parseEntry(m.Values, r.cfg.MaxPayloadBytes)
	if err == nil {
		err = r.checkReplyTo(&e)
	}
	if err != nil {
		var ee *EntryError
		if !errors.As(err, &ee) {
			ee = &EntryError{Reason: "malformed", Detail: err.Error()}
		}
		j.deadLetter(ee.Reason, ee.Detail)
		r.out <- j
		return
	}
	t := task{j: j, e: e}
	if e.Deadline == 0 {
		sd.refs.Add(1)
		t.sd = sd
	}
	r.dispatch(t)
}

// task is an entry to serve.
type task struct {
	j  *job
	e  Entry
	sd *sharedDeadline // when the entry has the default deadline
	fb *api.FeedbackRequest
}

// sharedDeadline is one context for all the entries of a read batch that
// have the default deadline, which is the same instant for them all: a
// context with a timer per entry was a quarter of the router's CPU time.
// It is cancelled when its last entry is done.
type sharedDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
	at     time.Time
	refs   atomic.Int32
}

// newSharedDeadline starts a shared deadline held once by its creator.
func (r *Router) newSharedDeadline() *sharedDeadline {
	sd := &sharedDeadline{at: time.Now().Add(r.cfg.DefaultDeadline)}
	sd.ctx, sd.cancel = context.WithDeadline(r.hardCtx, sd.at)
	sd.refs.Store(1)
	return sd
}

// release drops one hold (nil: none).
func (sd *sharedDeadline) release() {
	if sd != nil && sd.refs.Add(-1) == 0 {
		sd.cancel()
	}
}

// dispatch hands t to an idle worker, or starts one: workers are long-lived
// (a goroutine per entry would grow a fresh stack for every entry) and at
// most InFlight, since no more entries than that are ever in flight.
func (r *Router) dispatch(t task) {
	select {
	case r.work <- t:
		return
	default:
	}
	r.mu.Lock()
	start := r.workers < r.cfg.InFlight
	if start {
		r.workers++
	}
	r.mu.Unlock()
	if !start {
		r.work <- t
		return
	}
	go r.worker(t)
}

// worker serves first, then whatever comes on r.work until it is closed.
func (r *Router) worker(first task) {
	r.serve(first)
	for t := range r.work {
		r.serve(t)
	}
}

// checkReplyTo applies the router's reply_to rules: default stream, no
// loop into a request stream or the dead stream, the configured prefix.
func (r *Router) checkReplyTo(e *Entry) error {
	switch {
	case e.ReplyTo == "":
		e.ReplyTo = r.cfg.ResultStream
	case r.isRequest[e.ReplyTo] || e.ReplyTo == r.cfg.DeadStream:
		return entryErr(ReasonBadReplyTo, "reply_to %q is a request or dead-letter stream", e.ReplyTo)
	case r.cfg.ReplyToPrefix != "" && !strings.HasPrefix(e.ReplyTo, r.cfg.ReplyToPrefix):
		return entryErr(ReasonBadReplyTo, "reply_to %q does not start with %q", clip(e.ReplyTo), r.cfg.ReplyToPrefix)
	}
	return nil
}

// serve runs one entry through the dispatcher and hands the result to the
// writer. After a hard stop the answer is dropped and the entry left
// pending: a cancelled call is not an answer.
func (r *Router) serve(t task) {
	if t.fb != nil {
		r.serveFeedback(t)
		return
	}
	j, e := t.j, t.e
	start := time.Now()
	var ctx context.Context
	var deadline time.Time
	if t.sd != nil {
		ctx, deadline = t.sd.ctx, t.sd.at
		defer t.sd.release()
	} else {
		d := min(e.Deadline, r.cfg.MaxDeadline)
		var cancel context.CancelFunc
		deadline = start.Add(d)
		ctx, cancel = context.WithDeadline(r.hardCtx, deadline)
		defer cancel()
	}
	req := &api.PredictRequest{
		ModelId:     e.Model,
		RequestId:   e.ID,
		Payload:     e.Payload,
		ContentType: e.ContentType,
		Deadline:    deadline.UnixNano(),
	}
	resp := r.call(ctx, e, req)
	if r.hardCtx.Err() != nil {
		r.abandon(j)
		return
	}
	j.result(r.cfg.Consumer, e, resp, time.Since(start))
	r.out <- j
}

// call invokes the dispatcher, turning a panic or a nil answer into an
// internal error result: a misbehaving model must not take the router down.
func (r *Router) call(ctx context.Context, e Entry, req *api.PredictRequest) (resp *api.PredictResponse) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("router: dispatcher panicked", "model", e.Model, "id", e.ID, "panic", p)
			resp = errorResponse(req, api.ErrorCode_ERROR_CODE_INTERNAL, fmt.Sprintf("dispatcher panicked: %v", p))
		}
	}()
	switch {
	case e.Strategy == "":
		resp = r.disp.Do(ctx, req)
	case r.spec == nil:
		return errorResponse(req, api.ErrorCode_ERROR_CODE_BAD_INPUT, "speculative execution not available")
	default:
		resp = r.spec.SpeculateRequest(ctx, e.Strategy, e.Models, req)
	}
	if resp == nil {
		resp = errorResponse(req, api.ErrorCode_ERROR_CODE_INTERNAL, "dispatcher returned no response")
	}
	return resp
}

func errorResponse(req *api.PredictRequest, code api.ErrorCode, msg string) *api.PredictResponse {
	return &api.PredictResponse{
		RequestId: req.RequestId,
		ModelId:   req.ModelId,
		Error:     &api.Error{Code: code, Message: msg},
	}
}

// abandon leaves an entry pending, unacknowledged, for reclaim.
func (r *Router) abandon(j *job) {
	r.c.abandoned.Add(1)
	r.done1(j)
}

// entryKey names an entry across the request streams.
type entryKey struct{ stream, id string }

// start1 begins one entry's time in flight. It reports false when the
// entry is in flight here already: XAUTOCLAIM hands back this router's own
// entries too when they have been pending longer than MinIdle (a stall, a
// long Redis outage), and serving them twice would only make a duplicate.
func (r *Router) start1(stream, id string) bool {
	k := entryKey{stream, id}
	r.mineMu.Lock()
	_, dup := r.mine[k]
	if !dup {
		r.mine[k] = struct{}{}
	}
	r.mineMu.Unlock()
	if dup {
		return false
	}
	r.c.addInFlight(1)
	r.inflight.Add(1)
	return true
}

// done1 ends one entry's time in flight.
func (r *Router) done1(j *job) {
	r.mineMu.Lock()
	delete(r.mine, entryKey{j.stream, j.msgID})
	r.mineMu.Unlock()
	r.c.addInFlight(-1)
	r.release(1)
	r.inflight.Done()
}
