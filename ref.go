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

	pid    *actor.PID // this Ref as a process
	target atomic.Pointer[actor.PID]
	tries  int32

	once  sync.Once
	done  chan struct{}
	resp  any
	err   error
	timer *time.Timer
	stopC func() bool
}

func (c *Client) newRef(ctx context.Context, identity string, msg any, deadline time.Time) *Ref {
	r := &Ref{c: c, identity: identity, msg: msg, start: time.Now(), deadline: deadline, done: make(chan struct{})}
	if c.closed.Load() {
		r.finish(nil, fmt.Errorf("%w: client closed", ErrInternal))
		return r
	}
	pid, ok := c.system.ProcessRegistry.Add(refProcess{r}, "manta-ref"+c.system.ProcessRegistry.NextId())
	if !ok {
		r.finish(nil, fmt.Errorf("%w: cannot register reply process", ErrInternal))
		return r
	}
	r.pid = pid
	// Every Ref ends: at its deadline (plus a grace for the answer in
	// flight) it completes with deadline_exceeded.
	r.timer = time.AfterFunc(time.Until(deadline)+c.grace, func() {
		r.finish(nil, fmt.Errorf("%w: no answer from %s by the deadline", ErrDeadlineExceeded, identity))
	})
	if ctx.Done() != nil {
		r.stopC = context.AfterFunc(ctx, func() {
			err := ctx.Err()
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w: %v", ErrDeadlineExceeded, err)
			}
			r.finish(nil, err)
		})
	}
	c.track(r)
	return r
}

// send resolves the target activation and sends; on failure it retries with
// a real backoff until the deadline.
func (r *Ref) send() {
	for {
		pid, err := r.c.resolve(r.identity)
		if err == nil {
			r.target.Store(pid)
			r.c.system.Root.RequestWithCustomSender(pid, r.msg, r.pid)
			return
		}
		if !r.backoff() {
			r.finish(nil, fmt.Errorf("%w: %s: %v", ErrOverloaded, r.identity, err))
			return
		}
	}
}

// backoff sleeps before the next try: 5 ms doubling to 500 ms, never past
// the deadline. It reports false when no try is left.
func (r *Ref) backoff() bool {
	n := atomic.AddInt32(&r.tries, 1)
	if n > 20 {
		return false
	}
	d := 5 * time.Millisecond << min(n-1, 7)
	if d > 500*time.Millisecond {
		d = 500 * time.Millisecond
	}
	if time.Now().Add(d).After(r.deadline) {
		return false
	}
	select {
	case <-time.After(d):
		return true
	case <-r.done:
		return false
	}
}

// retry is called when the activation turned out to be gone.
func (r *Ref) retry() {
	if t := r.target.Load(); t != nil {
		r.c.forget(r.identity, t)
	}
	if r.backoff() {
		r.send()
		return
	}
	r.finish(nil, fmt.Errorf("%w: %s: activation kept disappearing", ErrOverloaded, r.identity))
}

func (r *Ref) finish(resp any, err error) {
	r.once.Do(func() {
		r.resp, r.err = resp, err
		if r.timer != nil {
			r.timer.Stop()
		}
		if r.stopC != nil {
			r.stopC()
		}
		if r.pid != nil {
			r.c.system.ProcessRegistry.Remove(r.pid)
			r.c.untrack(r)
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
// stays pending until its own deadline); the error then wraps ctx.Err().
// Model errors wrap the sentinels (ErrNotFound, ErrBadInput, ...).
func (r *Ref) Get(ctx context.Context) (*Result, error) {
	select {
	case <-r.done:
	case <-ctx.Done():
		err := ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: %v", ErrDeadlineExceeded, err)
		}
		return nil, err
	}
	if r.err != nil {
		return nil, r.err
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
	}
	if err := resp.Error.Err(); err != nil {
		return res, err
	}
	return res, nil
}

// Response waits and returns the raw response message.
func (r *Ref) response(ctx context.Context) (any, error) {
	select {
	case <-r.done:
		return r.resp, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// refProcess is the Ref as a protoactor process: the model actor answers
// it like a future.
type refProcess struct{ r *Ref }

func (p refProcess) SendUserMessage(_ *actor.PID, message any) {
	if env, ok := message.(*actor.MessageEnvelope); ok {
		message = env.Message
	}
	switch m := message.(type) {
	case *actor.DeadLetterResponse:
		go p.r.retry()
	case *api.PredictResponse:
		p.r.finish(m, nil)
	default:
		p.r.finish(m, nil)
	}
}

func (p refProcess) SendSystemMessage(*actor.PID, any) {}

func (p refProcess) Stop(*actor.PID) {
	p.r.finish(nil, fmt.Errorf("%w: request stopped", ErrInternal))
}

// GetAll waits for every Ref and returns the results in input order. The
// first error is returned, with the results gathered so far.
func GetAll(ctx context.Context, refs []*Ref) ([]*Result, error) {
	out := make([]*Result, len(refs))
	var first error
	for i, r := range refs {
		res, err := r.Get(ctx)
		out[i] = res
		if err != nil && first == nil {
			first = fmt.Errorf("ref %d: %w", i, err)
		}
	}
	return out, first
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
			err = ctx.Err()
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
