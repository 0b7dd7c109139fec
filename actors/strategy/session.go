package strategy

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"time"

	"github.com/manta-ml/manta/api"
)

// DefaultTimeout is the deadline a Session gives a request that has none.
const DefaultTimeout = 10 * time.Second

// DefaultMaxCalls bounds the calls one request may launch (see WithMaxCalls):
// a runaway strategy cannot flood the models.
const DefaultMaxCalls = 64

// maxEvents bounds the events delivered to one strategy: a strategy asking to
// be woken "now" forever ends with an internal error instead of spinning.
const maxEvents = 10000

// ActionKind says what a Session asks its driver to do.
type ActionKind int

const (
	// ActLaunch: send the request to Action.Model now.
	ActLaunch ActionKind = iota + 1
	// ActCancel: cancel (or stop waiting for) the calls of Action.Model
	// launched before this action (a Launch of the same model may follow in
	// the same batch). Their results, if they still come, are dropped as
	// late.
	ActCancel
	// ActWake: (re)arm the driver's single timer to Action.At and call
	// OnTimer then. A later Wake replaces an earlier one.
	ActWake
	// ActFinish: answer the request with Action.Response. Always the last
	// action of a Session, and given exactly once.
	ActFinish
)

func (k ActionKind) String() string {
	switch k {
	case ActLaunch:
		return "launch"
	case ActCancel:
		return "cancel"
	case ActWake:
		return "wake"
	case ActFinish:
		return "finish"
	}
	return "unknown"
}

// Action is one thing the driver of a Session must do.
type Action struct {
	Kind ActionKind
	// Model is set for ActLaunch and ActCancel.
	Model string
	// At is the time of the action: when the launch was decided, or when
	// to wake.
	At time.Time
	// Hedge is set on an ActLaunch of a model that was already launched.
	Hedge bool
	// Response is set for ActFinish.
	Response *Response
}

func (a Action) String() string {
	switch a.Kind {
	case ActLaunch, ActCancel:
		return fmt.Sprintf("%s %s @%s", a.Kind, a.Model, a.At.Format(time.StampMicro))
	case ActWake:
		return fmt.Sprintf("wake @%s", a.At.Format(time.StampMicro))
	case ActFinish:
		return "finish " + a.Response.String()
	}
	return a.Kind.String()
}

// Response is the answer of one speculative request.
type Response struct {
	RequestID string
	// Strategy is the name of the strategy that decided.
	Strategy string
	// Output is the answer (nil when Err is set), produced by Models at
	// Versions (same order; several for a vote or an average).
	Output     []byte
	Models     []string
	Versions   []string
	Confidence float64
	// Err is nil on success; otherwise it wraps an api sentinel:
	// api.ErrDeadlineExceeded when the strategy did not answer by the
	// deadline, api.ErrInternal when it panicked or misbehaved,
	// api.ErrBadInput for a request without candidates, or the models' own
	// errors.
	Err error
	// Fallback is set when the strategy answered by a fallback path.
	Fallback bool
	// Calls is how many calls were launched (hedges included), Hedges how
	// many of them were a second call of an already launched model.
	Calls  int
	Hedges int
	// Start is when the request started, At when it was answered.
	Start, At time.Time
}

// Elapsed is the time from start to answer.
func (r *Response) Elapsed() time.Duration { return r.At.Sub(r.Start) }

func (r *Response) String() string {
	if r.Err != nil {
		return fmt.Sprintf("%s error=%v calls=%d", r.Strategy, r.Err, r.Calls)
	}
	return fmt.Sprintf("%s models=%v output=%s calls=%d", r.Strategy, r.Models, r.Output, r.Calls)
}

// SessionOption configures a Session.
type SessionOption func(*Session)

// WithMaxCalls bounds the calls a request may launch (default
// DefaultMaxCalls); launches beyond it are dropped.
func WithMaxCalls(n int) SessionOption {
	return func(s *Session) {
		if n > 0 {
			s.maxCalls = n
		}
	}
}

type scheduled struct {
	model string
	at    time.Time
}

// Session drives one Strategy through one request. It is the whole logic of
// a collector, without the clock, the timers or the network: its driver (the
// collector actor, the lab's virtual clock, strategytest's fake clock) calls
// Start once, then OnResult for every result, OnTimer when the timer it was
// asked to arm (ActWake) fires, and performs the Actions each call returns.
//
// A Session guarantees that:
//   - the request is answered exactly once (one ActFinish, the last action);
//   - it is answered by the deadline: if the strategy has not decided when
//     OnTimer or OnResult sees the deadline passed (or OnDeadline is called),
//     the strategy gets an EventDeadline and, if it still does not decide,
//     the request fails with api.ErrDeadlineExceeded;
//   - when nothing more can happen (every call returned, nothing scheduled,
//     no wake-up asked) the strategy gets its EventDeadline at once instead
//     of waiting;
//   - results after the answer, of canceled calls, or of models never
//     launched are dropped and counted (Late);
//   - a strategy that panics, launches a model that is not a candidate or
//     loops fails the request with an error wrapping api.ErrInternal;
//   - a request with no candidates fails with api.ErrBadInput.
//
// A Session is not safe for concurrent use: its driver serializes calls (an
// actor does so naturally).
type Session struct {
	strat    Strategy
	name     string
	req      Request
	cands    []Candidate
	maxCalls int

	started, done bool
	resp          *Response
	start         time.Time
	deadline      time.Time

	calls    []Call
	results  []Result
	sched    []scheduled // sorted by at
	wakes    []time.Time // sorted
	lastWake time.Time
	late     int
	dropped  int
	events   int
}

// NewSession prepares a Session of s for req over cands. Nothing happens
// until Start.
func NewSession(s Strategy, req *Request, cands []Candidate, opts ...SessionOption) *Session {
	se := &Session{strat: s, cands: append([]Candidate(nil), cands...), maxCalls: DefaultMaxCalls}
	if req != nil {
		se.req = *req
	}
	se.name = se.safeName()
	for _, o := range opts {
		o(se)
	}
	return se
}

func (s *Session) safeName() (name string) {
	if s.strat == nil {
		return "<nil>"
	}
	defer func() {
		if recover() != nil {
			name = fmt.Sprintf("%T", s.strat)
		}
	}()
	return s.strat.Name()
}

// Name is the strategy's name.
func (s *Session) Name() string { return s.name }

// Deadline is the request's deadline (as tightened by the plan once Start
// returned). Drivers pass it on to the model calls.
func (s *Session) Deadline() time.Time { return s.deadline }

// Done reports whether the request was answered.
func (s *Session) Done() bool { return s.done }

// Response is the answer, or nil before it.
func (s *Session) Response() *Response { return s.resp }

// Late is how many results were dropped: after the answer, after the
// deadline, of canceled calls or of calls never launched.
func (s *Session) Late() int { return s.late }

// Dropped is how many launches were refused by the WithMaxCalls bound.
func (s *Session) Dropped() int { return s.dropped }

// Start starts the request at now: it asks the strategy for its plan and
// returns the first actions. Calling it twice does nothing.
func (s *Session) Start(now time.Time) []Action {
	if s.started {
		return nil
	}
	s.started = true
	s.start = now
	s.req.Now = now
	s.deadline = s.req.Deadline
	if s.deadline.IsZero() {
		s.deadline = now.Add(DefaultTimeout)
		s.req.Deadline = s.deadline
	}
	var out []Action
	if s.strat == nil {
		return s.finishErr(now, &StrategyError{Strategy: s.name, Op: "Start", Reason: "nil strategy"}, out)
	}
	if len(s.cands) == 0 {
		return s.finishErr(now, fmt.Errorf("%w: strategy %q: no candidate models", api.ErrBadInput, s.name), out)
	}
	plan, err := s.callStart()
	if err == nil {
		err = plan.Err
	}
	if err != nil {
		return s.finishErr(now, err, out)
	}
	if !plan.Deadline.IsZero() && plan.Deadline.Before(s.deadline) {
		s.deadline = plan.Deadline
	}
	if err := s.launch(now, plan.Launches, &out); err != nil {
		return s.finishErr(now, err, out)
	}
	s.addWake(plan.WakeAt)
	return s.settle(now, out)
}

// OnResult feeds the result of one call arriving at now.
func (s *Session) OnResult(now time.Time, r Result) []Action {
	if !s.started || s.done {
		s.late++
		return nil
	}
	if now.After(s.deadline) {
		s.late++
		var out []Action
		return s.deadlineEvent(now, false, out)
	}
	i := -1
	for j, c := range s.calls {
		if c.Model == r.Model && c.Outstanding() {
			i = j
			break
		}
	}
	if i < 0 {
		s.late++
		return nil
	}
	s.calls[i].Returned = true
	if r.At.IsZero() {
		r.At = now
	}
	if r.Latency <= 0 {
		r.Latency = now.Sub(s.calls[i].At)
	}
	s.results = append(s.results, r)
	var out []Action
	d, err := s.callOnEvent(Event{Kind: EventResult, Now: now, Result: r}, now)
	if err != nil {
		return s.finishErr(now, err, out)
	}
	if s.apply(now, d, &out) {
		return out
	}
	return s.settle(now, out)
}

// OnTimer is called when the timer armed by ActWake fires. Early or extra
// calls are harmless: the Session fires what is due and re-arms.
func (s *Session) OnTimer(now time.Time) []Action {
	if !s.started || s.done {
		return nil
	}
	s.lastWake = time.Time{}
	return s.settle(now, nil)
}

// OnDeadline ends the request now as if its deadline had come (for a driver
// that enforces the deadline by its own means, such as a context). The
// strategy gets an EventDeadline and may still answer.
func (s *Session) OnDeadline(now time.Time) []Action {
	if !s.started || s.done {
		return nil
	}
	return s.deadlineEvent(now, false, nil)
}

// settle fires everything due at now, delivers the deadline when it has come
// or when nothing more can happen, and arms the timer for the next thing.
func (s *Session) settle(now time.Time, out []Action) []Action {
	for !s.done {
		if !now.Before(s.deadline) {
			return s.deadlineEvent(now, false, out)
		}
		for len(s.sched) > 0 && !s.sched[0].at.After(now) {
			l := s.sched[0]
			s.sched = s.sched[1:]
			s.launchNow(now, l.model, &out)
		}
		due := false
		for len(s.wakes) > 0 && !s.wakes[0].After(now) {
			s.wakes = s.wakes[1:]
			due = true
		}
		if due {
			d, err := s.callOnEvent(Event{Kind: EventTimer, Now: now}, now)
			if err != nil {
				return s.finishErr(now, err, out)
			}
			if s.apply(now, d, &out) {
				return out
			}
			continue
		}
		if s.pending() == 0 && len(s.sched) == 0 && len(s.wakes) == 0 {
			return s.deadlineEvent(now, true, out)
		}
		next := s.deadline
		if len(s.sched) > 0 && s.sched[0].at.Before(next) {
			next = s.sched[0].at
		}
		if len(s.wakes) > 0 && s.wakes[0].Before(next) {
			next = s.wakes[0]
		}
		if !next.Equal(s.lastWake) {
			s.lastWake = next
			out = append(out, Action{Kind: ActWake, At: next})
		}
		return out
	}
	return out
}

// deadlineEvent gives the strategy its last word. idle is set when the event
// comes early because nothing more can happen.
func (s *Session) deadlineEvent(now time.Time, idle bool, out []Action) []Action {
	d, err := s.callOnEvent(Event{Kind: EventDeadline, Now: now}, now)
	if err != nil {
		return s.finishErr(now, err, out)
	}
	if d.Done {
		return s.finish(now, d, out)
	}
	switch {
	case !idle:
		err = fmt.Errorf("%w: strategy %q gave no answer by the deadline (%d calls, %d results)",
			api.ErrDeadlineExceeded, s.name, len(s.calls), len(s.results))
	case len(s.results) > 0 && s.lastError() != nil && s.successes() == 0:
		err = fmt.Errorf("strategy %q: every call failed, last: %w", s.name, s.lastError())
	default:
		err = &StrategyError{Strategy: s.name, Op: "OnEvent(deadline)",
			Reason: fmt.Sprintf("no answer with nothing left to wait for (%d calls, %d results)", len(s.calls), len(s.results))}
	}
	return s.finishErr(now, err, out)
}

// apply performs a decision; it reports whether the request is finished.
func (s *Session) apply(now time.Time, d Decision, out *[]Action) bool {
	if d.Done {
		*out = s.finish(now, d, *out)
		return true
	}
	for _, m := range d.Cancel {
		s.cancel(m, out)
	}
	if err := s.launch(now, d.Launch, out); err != nil {
		*out = s.finishErr(now, err, *out)
		return true
	}
	s.addWake(d.WakeAt)
	return false
}

func (s *Session) launch(now time.Time, ls []Launch, out *[]Action) error {
	for _, l := range ls {
		if !s.isCandidate(l.Model) {
			return &StrategyError{Strategy: s.name, Op: "launch", Reason: fmt.Sprintf("launched %q, which is not a candidate", l.Model)}
		}
	}
	for _, l := range ls {
		if l.After <= 0 {
			s.launchNow(now, l.Model, out)
			continue
		}
		at := now.Add(l.After)
		if !at.Before(s.deadline) {
			continue // it could never count
		}
		i := sort.Search(len(s.sched), func(i int) bool { return s.sched[i].at.After(at) })
		s.sched = append(s.sched, scheduled{})
		copy(s.sched[i+1:], s.sched[i:])
		s.sched[i] = scheduled{model: l.Model, at: at}
	}
	return nil
}

func (s *Session) launchNow(now time.Time, model string, out *[]Action) {
	if len(s.calls) >= s.maxCalls {
		s.dropped++
		return
	}
	hedge := false
	for _, c := range s.calls {
		if c.Model == model {
			hedge = true
			break
		}
	}
	s.calls = append(s.calls, Call{Model: model, At: now, Hedge: hedge})
	*out = append(*out, Action{Kind: ActLaunch, Model: model, At: now, Hedge: hedge})
}

func (s *Session) cancel(model string, out *[]Action) {
	n := 0
	for i := range s.calls {
		if s.calls[i].Model == model && s.calls[i].Outstanding() {
			s.calls[i].Canceled = true
			n++
		}
	}
	kept := s.sched[:0]
	for _, l := range s.sched {
		if l.model != model {
			kept = append(kept, l)
		}
	}
	s.sched = kept
	if n > 0 {
		*out = append(*out, Action{Kind: ActCancel, Model: model})
	}
}

func (s *Session) addWake(t time.Time) {
	if t.IsZero() || !t.Before(s.deadline) {
		return // the deadline event covers it
	}
	i := sort.Search(len(s.wakes), func(i int) bool { return !s.wakes[i].Before(t) })
	if i < len(s.wakes) && s.wakes[i].Equal(t) {
		return
	}
	s.wakes = append(s.wakes, time.Time{})
	copy(s.wakes[i+1:], s.wakes[i:])
	s.wakes[i] = t
}

func (s *Session) finishErr(now time.Time, err error, out []Action) []Action {
	return s.finish(now, Decision{Done: true, Err: err}, out)
}

func (s *Session) finish(now time.Time, d Decision, out []Action) []Action {
	if s.done {
		return out
	}
	s.done = true
	canceled := map[string]bool{}
	for i := range s.calls {
		c := &s.calls[i]
		if c.Outstanding() {
			c.Canceled = true
			if !canceled[c.Model] {
				canceled[c.Model] = true
				out = append(out, Action{Kind: ActCancel, Model: c.Model, At: now})
			}
		}
	}
	s.sched, s.wakes = nil, nil
	r := &Response{
		RequestID: s.req.ID,
		Strategy:  s.name,
		Fallback:  d.Fallback,
		Calls:     len(s.calls),
		Start:     s.start,
		At:        now,
	}
	for _, c := range s.calls {
		if c.Hedge {
			r.Hedges++
		}
	}
	if d.Err != nil {
		r.Err = d.Err
		r.Fallback = false
	} else {
		r.Output = d.Output
		r.Models = append([]string(nil), d.Models...)
		r.Versions = append([]string(nil), d.Versions...)
		r.Confidence = d.Confidence
	}
	s.resp = r
	return append(out, Action{Kind: ActFinish, At: now, Response: r})
}

func (s *Session) progress(now time.Time) *Progress {
	p := &Progress{
		Request:    &s.req,
		Candidates: s.cands[:len(s.cands):len(s.cands)],
		Start:      s.start,
		Now:        now,
		Deadline:   s.deadline,
		Calls:      append([]Call(nil), s.calls...),
		Results:    s.results[:len(s.results):len(s.results)],
	}
	for _, l := range s.sched {
		p.Scheduled = append(p.Scheduled, Launch{Model: l.model, After: l.at.Sub(now)})
	}
	return p
}

func (s *Session) callStart() (plan Plan, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &StrategyError{Strategy: s.name, Op: "Start", Panic: v, Stack: debug.Stack()}
		}
	}()
	cands := append([]Candidate(nil), s.cands...)
	req := s.req
	return s.strat.Start(&req, cands), nil
}

func (s *Session) callOnEvent(ev Event, now time.Time) (d Decision, err error) {
	s.events++
	if s.events > maxEvents {
		return Decision{}, &StrategyError{Strategy: s.name, Op: "OnEvent(" + ev.Kind.String() + ")",
			Reason: fmt.Sprintf("more than %d events (is it asking to be woken in a loop?)", maxEvents)}
	}
	defer func() {
		if v := recover(); v != nil {
			err = &StrategyError{Strategy: s.name, Op: "OnEvent(" + ev.Kind.String() + ")", Panic: v, Stack: debug.Stack()}
		}
	}()
	return s.strat.OnEvent(ev, s.progress(now)), nil
}

func (s *Session) isCandidate(model string) bool {
	for _, c := range s.cands {
		if c.Model == model {
			return true
		}
	}
	return false
}

func (s *Session) pending() int {
	n := 0
	for _, c := range s.calls {
		if c.Outstanding() {
			n++
		}
	}
	return n
}

func (s *Session) successes() int {
	n := 0
	for _, r := range s.results {
		if r.OK() {
			n++
		}
	}
	return n
}

func (s *Session) lastError() error {
	for i := len(s.results) - 1; i >= 0; i-- {
		if s.results[i].Err != nil {
			return s.results[i].Err
		}
	}
	return nil
}

// IsDeadlineExceeded reports whether a response failed for lack of an answer
// by the deadline.
func IsDeadlineExceeded(r *Response) bool {
	return r != nil && errors.Is(r.Err, api.ErrDeadlineExceeded)
}

// StrategyError is the error of a request whose strategy misbehaved: it
// panicked, launched a model that is not a candidate, asked to be woken in a
// loop, or gave no answer when it had results and nothing left to wait for.
// It wraps api.ErrInternal: the request fails, the collector lives on.
type StrategyError struct {
	Strategy string
	// Op is where: "Start", "OnEvent(result)", "launch", ...
	Op string
	// Panic is the recovered value (nil when it did not panic), Stack the
	// goroutine's stack at the panic.
	Panic  any
	Stack  []byte
	Reason string
}

func (e *StrategyError) Error() string {
	if e.Panic != nil {
		return fmt.Sprintf("%v: strategy %q panicked in %s: %v", api.ErrInternal, e.Strategy, e.Op, e.Panic)
	}
	return fmt.Sprintf("%v: strategy %q: %s: %s", api.ErrInternal, e.Strategy, e.Op, e.Reason)
}

// Unwrap returns api.ErrInternal.
func (e *StrategyError) Unwrap() error { return api.ErrInternal }
