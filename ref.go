package manta

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/backoff"
)

// Result is the answer of one prediction.
type Result struct {
	RequestID   string
	Output      []byte
	ContentType string
	// Model and Version name what produced Output (audit).
	Model    string
	Version  string
	ServedBy string
	// Latency is measured by the caller, from Predict to the answer;
	// ServerTime is the part spent in the member (queue, batch, predict).
	Latency    time.Duration
	ServerTime time.Duration
	BatchSize  int

	// Speculative requests (Client.Speculate) also name the Strategy that
	// decided and every model and version (same order) that produced
	// Output; Model and Version are the first of them. Calls is how many
	// model calls were made, Hedges how many of those were second calls,
	// Fallback whether the strategy answered by its fallback path, and
	// Confidence its confidence in the output (0 when it gives none).
	Strategy   string
	Models     []string
	Versions   []string
	Calls      int
	Hedges     int
	Fallback   bool
	Confidence float64
}

// Ref is a future: the pending answer of Predict. Get waits for it; Done is
// closed when it is ready. A Ref always completes: with the answer, an
// error, or ErrDeadlineExceeded at its deadline.
type Ref struct {
	c        *Client
	identity string
	msg      any
	start    time.Time
	deadline time.Time
	// ctxDeadline: deadline is the Predict ctx's, so a deadline_exceeded
	// outcome means that ctx expired (deadlineErr).
	ctxDeadline bool
	key         uint32

	sender *actor.PID // the client's reply process, tagged with key
	target atomic.Pointer[actor.PID]
	tries  int32

	once  sync.Once
	done  chan struct{}
	resp  any
	err   error
	stopC atomic.Pointer[func() bool] // stops the ctx watch (context.AfterFunc)
	// release ends the request's count in replica routing (callRouted).
	release atomic.Pointer[func()]
}

// setRelease makes finish call f (at once if the Ref has ended already);
// f runs exactly once.
func (r *Ref) setRelease(f func()) {
	r.release.Store(&f)
	if r.Ready() {
		if g := r.release.Swap(nil); g != nil {
			(*g)()
		}
	}
}

func (c *Client) newRef(ctx context.Context, identity string, msg any, now, deadline time.Time) *Ref {
	r := &Ref{c: c, identity: identity, msg: msg, start: now, deadline: deadline, done: make(chan struct{})}
	if d, ok := ctx.Deadline(); ok && !d.After(deadline) {
		r.ctxDeadline = true
	}
	if c.closed.Load() {
		r.finish(nil, fmt.Errorf("%w: client closed", ErrInternal))
		return r
	}
	// Every Ref ends: the sweeper completes it with deadline_exceeded once
	// its deadline (plus a grace for an answer in flight) has passed.
	// The key and sender are set before the Ref is visible to the reply
	// process, the sweeper and Close.
	c.pending.AddWith(func(k uint32) *Ref {
		r.key = k
		r.sender = &actor.PID{Address: c.replyPID.Address, Id: c.replyPID.Id, RequestId: k}
		return r
	})
	c.sweeper.Wake()
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { r.finish(nil, ctxErr(ctx)) })
		r.stopC.Store(&stop)
		if r.Ready() { // finished meanwhile: finish may have missed the watch
			if f := r.stopC.Swap(nil); f != nil {
				(*f)()
			}
		}
	}
	return r
}

// dispatch sends the request without blocking the caller (Predict returns at
// once, as documented): with the PID of the target activation known, it is
// an enqueue on this goroutine (the hot path: no goroutine, no
// allocation); otherwise the resolution (a directory round trip that may
// read the store and activate the model, with its backoff tries) runs on a
// goroutine of its own, so a fan-out over cold models resolves them all at
// once rather than one after another. The Ref delivers the outcome.
func (r *Ref) dispatch() {
	if r.sender == nil || r.Ready() {
		return
	}
	if pid, ok := r.c.cachedPID(r.identity); ok {
		r.target.Store(pid)
		r.c.system.Root.RequestWithCustomSender(pid, r.msg, r.sender)
		return
	}
	go r.send()
}

// send resolves the target activation and sends; on failure it retries with
// a real backoff until the deadline.
func (r *Ref) send() {
	for {
		pid, err := r.c.resolve(r.identity)
		if err == nil {
			r.target.Store(pid)
			r.c.system.Root.RequestWithCustomSender(pid, r.msg, r.sender)
			return
		}
		if !r.backoff() {
			r.finish(nil, fmt.Errorf("%w: %s: %v", ErrOverloaded, r.identity, err))
			return
		}
	}
}

// backoff sleeps before the next try: 5 ms doubling to 500 ms (jittered), never past
// the deadline. It reports false when no try is left.
func (r *Ref) backoff() bool {
	n := atomic.AddInt32(&r.tries, 1)
	if n > 20 {
		return false
	}
	d := backoff.Delay(5*time.Millisecond, 500*time.Millisecond, int(n-1))
	if time.Now().Add(d).After(r.deadline) {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.done:
		return false
	}
}

// retry is called when the activation gone (the target the request was
// last sent to) turned out to be gone.
func (r *Ref) retry(gone *actor.PID) {
	r.c.forget(r.identity, gone)
	if r.backoff() {
		r.send()
		return
	}
	r.finish(nil, fmt.Errorf("%w: %s: activation kept disappearing", ErrOverloaded, r.identity))
}

func (r *Ref) finish(resp any, err error) {
	r.once.Do(func() {
		r.resp, r.err = resp, err
		if f := r.stopC.Swap(nil); f != nil {
			(*f)()
		}
		if r.sender != nil {
			r.c.pending.Remove(r.key)
		}
		if f := r.release.Swap(nil); f != nil {
			(*f)()
		}
		close(r.done)
	})
}

// Done is closed when the answer (or an error) is ready.
func (r *Ref) Done() <-chan struct{} { return r.done }

// Ready reports whether Get would return without waiting.
func (r *Ref) Ready() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Get waits for the answer. Cancelling ctx stops the wait (the Ref itself
// stays pending until its own deadline); the error then wraps ctx.Err():
// errors.Is(err, context.Canceled), or for an expired ctx both
// errors.Is(err, context.DeadlineExceeded) and errors.Is(err,
// ErrDeadlineExceeded). A Ref whose Predict ctx ended completes with the
// same error. Model errors wrap the sentinels (ErrNotFound, ErrBadInput,
// ...).
func (r *Ref) Get(ctx context.Context) (*Result, error) {
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, ctxErr(ctx)
	}
	if r.err != nil {
		return nil, r.deadlineErr(r.err)
	}
	resp, ok := r.resp.(*api.PredictResponse)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected answer %T", ErrInternal, r.resp)
	}
	res := &Result{
		RequestID:   resp.RequestId,
		Output:      resp.Output,
		ContentType: resp.ContentType,
		Model:       resp.ModelId,
		Version:     resp.ModelVersion,
		ServedBy:    resp.ServedBy,
		ServerTime:  time.Duration(resp.Duration),
		BatchSize:   int(resp.BatchSize),
		Strategy:    resp.Strategy,
		Models:      resp.Models,
		Versions:    resp.Versions,
		Calls:       int(resp.Calls),
		Hedges:      int(resp.Hedges),
		Fallback:    resp.Fallback,
		Confidence:  resp.Confidence,
	}
	if err := resp.Error.Err(); err != nil {
		return res, r.deadlineErr(err)
	}
	return res, nil
}

// deadlineErr makes the deadline_exceeded outcome of a Ref whose deadline
// was its ctx's match context.DeadlineExceeded too: that ctx expired,
// whichever told first (the ctx watch, the member that found the
// deadline passed, or the sweeper).
func (r *Ref) deadlineErr(err error) error {
	if r.ctxDeadline && errors.Is(err, ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		return ctxDeadlineError{err}
	}
	return err
}

// ctxDeadlineError is a deadline_exceeded error that is also
// context.DeadlineExceeded; its message is the original's.
type ctxDeadlineError struct{ err error }

func (e ctxDeadlineError) Error() string   { return e.err.Error() }
func (e ctxDeadlineError) Unwrap() []error { return []error{e.err, context.DeadlineExceeded} }

// Response waits and returns the raw response message.
func (r *Ref) response(ctx context.Context) (any, error) {
	select {
	case <-r.done:
		return r.resp, r.deadlineErr(r.err)
	case <-ctx.Done():
		return nil, ctxErr(ctx)
	}
}

// ctxErr is the error of a wait that ctx ended: it wraps ctx.Err() (so
// errors.Is finds context.Canceled or context.DeadlineExceeded) and, for an
// expired ctx, ErrDeadlineExceeded too (the code deadline_exceeded).
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrDeadlineExceeded, err)
	}
	return err
}

// replyProcess is the client's one reply process: model actors answer it
// like a future, and the PID's RequestId says which Ref the answer is for.
// (One registered process per request cost an eighth of the CPU.)
type replyProcess struct{ c *Client }

func (p replyProcess) SendUserMessage(pid *actor.PID, message any) {
	r, _ := p.c.pending.Get(pid.RequestId)
	if r == nil {
		return // late answer: the Ref already ended
	}
	if env, ok := message.(*actor.MessageEnvelope); ok {
		message = env.Message
	}
	switch m := message.(type) {
	case *actor.DeadLetterResponse:
		// One retry per send: the answer names the activation it bounced
		// from; only the first news of the current target's loss resends
		// (the sweeper may have noticed it too, and a copy of an earlier
		// send may bounce late). Two retries of one send would fork the
		// request and spend its tries twice as fast.
		t := r.target.Load()
		if t == nil || (m.Target != nil && (m.Target.Id != t.Id || m.Target.Address != t.Address)) {
			return
		}
		if r.target.CompareAndSwap(t, nil) {
			go r.retry(t)
		}
	default:
		r.finish(m, nil)
	}
}

func (p replyProcess) SendSystemMessage(*actor.PID, any) {}

func (p replyProcess) Stop(*actor.PID) {}

// GetAll waits for every Ref and returns the results in input order (nil
// for a Ref that failed without a result). The error joins (errors.Join)
// one error per failed Ref, "ref <index>: <its error>", so errors.Is finds
// every sentinel among them; it is nil when every Ref succeeded.
func GetAll(ctx context.Context, refs []*Ref) ([]*Result, error) {
	out := make([]*Result, len(refs))
	var errs []error
	for i, r := range refs {
		res, err := r.Get(ctx)
		out[i] = res
		if err != nil {
			errs = append(errs, fmt.Errorf("ref %d: %w", i, err))
		}
	}
	return out, errors.Join(errs...)
}

// Wait returns as soon as n of refs are ready (like ray.wait): ready holds
// the first n to complete, in completion order, pending the rest in input
// order. n is clamped to len(refs). Cancelling ctx returns what is ready so
// far with ctx's error.
func Wait(ctx context.Context, refs []*Ref, n int) (ready, pending []*Ref, err error) {
	if n > len(refs) {
		n = len(refs)
	}
	if n < 0 {
		n = 0
	}
	doneCh := make(chan int, len(refs))
	stop := make(chan struct{})
	defer close(stop)
	taken := make([]bool, len(refs))
	for i, r := range refs {
		if r.Ready() {
			doneCh <- i
			continue
		}
		go func(i int, r *Ref) {
			select {
			case <-r.done:
				doneCh <- i
			case <-stop:
			}
		}(i, r)
	}
	for len(ready) < n {
		select {
		case i := <-doneCh:
			taken[i] = true
			ready = append(ready, refs[i])
		case <-ctx.Done():
			err = ctxErr(ctx)
			n = len(ready)
		}
	}
	for i, r := range refs {
		if !taken[i] {
			pending = append(pending, r)
		}
	}
	return ready, pending, err
}
