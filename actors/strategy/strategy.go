package strategy

import (
	"fmt"
	"strings"
	"time"

	"github.com/manta-ml/manta/api"
)

// Strategy decides, event by event, how one speculative request is served:
// which models to call and when, and which answer to give.
//
// A Strategy value serves exactly one request: the registry's factory is
// called once per request, so a strategy may keep per-request state in its
// fields. Its methods are called from one goroutine, one at a time, and must
// not block: the caller (a Session) owns clocks, timers, sending and
// cancellation. A strategy never sleeps and never reads the wall clock; it uses
// Request.Now, Event.Now and Progress.Now, which is what makes it testable on a
// fake clock.
type Strategy interface {
	// Name is the name the strategy is registered under.
	Name() string
	// Start plans the first calls. It sees the candidates the caller chose
	// (never none: a Session answers bad_input without calling Start; in
	// the caller's order: by convention the preferred model first) and
	// may launch any of them now or after a delay, tighten the deadline and
	// ask to be woken.
	Start(req *Request, cands []Candidate) Plan
	// OnEvent is called when a result arrives, a requested wake-up fires or
	// the deadline is reached, and decides: finish (Decision.Done), launch
	// more, cancel pending calls, ask to be woken, or nothing (the zero
	// Decision waits). p is read-only and valid only during the call.
	OnEvent(ev Event, p *Progress) Decision
}

// Request is the speculative request as a strategy sees it.
type Request struct {
	// ID is the caller's request id (for logs; strategies need not use it).
	ID string
	// Payload is the input every model receives, with its ContentType
	// ("application/json" when empty).
	Payload     []byte
	ContentType string
	// Deadline is when the request must be answered. A Session fills a zero
	// Deadline with Now+DefaultTimeout.
	Deadline time.Time
	// Params are the strategy params the request named; the same map was
	// given to the factory.
	Params map[string]string
	// Now is the time the request started (the Session's clock).
	Now time.Time
}

// Latency is a model's live latency statistics, as the model actor measured
// them. Count is how many calls they summarize; zero means "no data yet", in
// which case the durations are zero and strategies fall back to their params.
type Latency struct {
	P50, P95, P99 time.Duration
	Count         int64
}

// Candidate is a model the request may call.
type Candidate struct {
	// Model is the model id (or "id@k" for a replica).
	Model string
	// Version is the version the caller expects to serve (may be empty; the
	// Result names the version that actually answered).
	Version string
	// Latency holds the live latency stats of the model.
	Latency Latency
	// Quality is the model's quality value when HasQuality is set: its
	// manifest's, or its live one (LiveQuality).
	// HigherIsBetter says how to compare it (accuracy: true; an error metric
	// such as mae_minutes: false).
	Quality        float64
	HasQuality     bool
	HigherIsBetter bool
	// LiveQuality says Quality is the model's live quality (its primary
	// measure, QualityMeasure: mae or accuracy, over its last window of
	// joined labels, docs/ARCHITECTURE.md §2.4) rather than its
	// manifest's: the SDK uses it once the model has enough joined labels
	// (quality.Config.MinLabels).
	LiveQuality    bool
	QualityMeasure string
}

// HigherIsBetter guesses, from a manifest quality metric's name, whether a
// higher value is better: false for errors and losses (names containing mae,
// mse, rmse, mape, error, loss, latency or ending in _minutes / _seconds /
// _ms), true otherwise (accuracy, auc, f1, precision, recall, r2, ...).
func HigherIsBetter(metric string) bool {
	m := strings.ToLower(metric)
	for _, w := range []string{"mae", "mse", "rmse", "mape", "error", "loss", "latency", "_minutes", "_seconds", "_ms"} {
		if strings.Contains(m, w) {
			return false
		}
	}
	return true
}

// Better reports whether c has a better quality than d. A candidate with a
// quality is better than one without; two without compare equal (false).
func (c Candidate) Better(d Candidate) bool {
	switch {
	case !c.HasQuality:
		return false
	case !d.HasQuality:
		return true
	case c.HigherIsBetter:
		return c.Quality > d.Quality
	default:
		return c.Quality < d.Quality
	}
}

// Launch asks for one call of Model, After the time of the decision (zero:
// now). Launching a model that already has a call outstanding makes a hedge:
// a second, independent call.
type Launch struct {
	Model string
	After time.Duration
}

// Plan is what Start decides.
type Plan struct {
	// Launches are the calls to make, now or later.
	Launches []Launch
	// Deadline, when not zero and earlier than the request's, tightens it.
	// It can never extend the request's deadline.
	Deadline time.Time
	// WakeAt, when not zero, asks for an EventTimer at that time.
	WakeAt time.Time
	// Err, when set, fails the request at once (for instance a param naming
	// a model that is not a candidate: wrap api.ErrBadInput).
	Err error
}

// EventKind says what happened.
type EventKind int

const (
	// EventResult: a call returned (Event.Result holds it, success or error).
	EventResult EventKind = iota + 1
	// EventTimer: a time the strategy asked for (WakeAt) has come.
	EventTimer
	// EventDeadline: the deadline is reached, or nothing more can happen
	// (no call outstanding, no launch scheduled, no wake-up asked). The
	// strategy should answer with what it has; if it does not, the request
	// fails with api.ErrDeadlineExceeded.
	EventDeadline
)

func (k EventKind) String() string {
	switch k {
	case EventResult:
		return "result"
	case EventTimer:
		return "timer"
	case EventDeadline:
		return "deadline"
	}
	return "unknown"
}

// Event is one thing a strategy reacts to.
type Event struct {
	Kind EventKind
	// Now is the time of the event.
	Now time.Time
	// Result is set for EventResult.
	Result Result
}

// Result is what one call returned.
type Result struct {
	Model   string
	Version string
	Output  []byte
	// Err is nil on success; otherwise it wraps one of the api sentinels
	// (api.ErrOverloaded, api.ErrBadInput, ...), checked with errors.Is.
	Err error
	// Latency is how long the call took.
	Latency time.Duration
	// At is when the result arrived.
	At time.Time
}

// OK reports whether the call succeeded.
func (r Result) OK() bool { return r.Err == nil }

// Decision is what OnEvent decides. The zero Decision waits.
type Decision struct {
	// Done finishes the request with Output (produced by Models at
	// Versions, in the same order) or, when Err is set, with Err.
	Done       bool
	Output     []byte
	Models     []string
	Versions   []string
	Confidence float64
	Err        error
	// Fallback marks an answer given by a fallback rather than the
	// strategy's preferred path (counted in Stats).
	Fallback bool

	// Launch makes more calls, now or later (ignored when Done).
	Launch []Launch
	// Cancel drops the outstanding calls and scheduled launches of these
	// models; their results, if they still come, are dropped.
	Cancel []string
	// WakeAt, when not zero, asks for an EventTimer at that time.
	WakeAt time.Time
}

// Wait is the Decision that does nothing yet.
func Wait() Decision { return Decision{} }

// WakeAt waits and asks for an EventTimer at t.
func WakeAt(t time.Time) Decision { return Decision{WakeAt: t} }

// Answer finishes with the output of one result.
func Answer(r Result) Decision {
	return Decision{Done: true, Output: r.Output, Models: []string{r.Model}, Versions: []string{r.Version}, Confidence: 1}
}

// Fail finishes with an error. It should wrap an api sentinel; Fail(nil)
// fails with api.ErrInternal.
func Fail(err error) Decision {
	if err == nil {
		err = fmt.Errorf("%w: strategy failed the request without an error", api.ErrInternal)
	}
	return Decision{Done: true, Err: err}
}

// Call is one call the Session launched.
type Call struct {
	Model string
	// At is when the call was sent.
	At time.Time
	// Hedge is set when the model already had a call launched before this
	// one.
	Hedge bool
	// Returned is set once its result arrived; Canceled once it was
	// canceled before that.
	Returned bool
	Canceled bool
}

// Outstanding reports whether the call may still return a result that counts.
func (c Call) Outstanding() bool { return !c.Returned && !c.Canceled }

// Progress is the state of a request as OnEvent sees it. It is owned by the
// Session: read it, never modify or keep it.
type Progress struct {
	Request    *Request
	Candidates []Candidate
	// Start is when the request started, Now the time of the event, and
	// Deadline the (possibly tightened) deadline.
	Start, Now, Deadline time.Time
	// Calls lists every call launched so far, in launch order.
	Calls []Call
	// Results lists every result that counted, in arrival order.
	Results []Result
	// Scheduled lists the launches asked for that have not fired yet, with
	// After counted from Now.
	Scheduled []Launch
}

// Remaining is the time left before the deadline (never negative).
func (p *Progress) Remaining() time.Duration {
	if d := p.Deadline.Sub(p.Now); d > 0 {
		return d
	}
	return 0
}

// Pending is the number of outstanding calls.
func (p *Progress) Pending() int {
	n := 0
	for _, c := range p.Calls {
		if c.Outstanding() {
			n++
		}
	}
	return n
}

// PendingOf is the number of outstanding calls of model.
func (p *Progress) PendingOf(model string) int {
	n := 0
	for _, c := range p.Calls {
		if c.Model == model && c.Outstanding() {
			n++
		}
	}
	return n
}

// LaunchedOf is the number of calls of model launched so far.
func (p *Progress) LaunchedOf(model string) int {
	n := 0
	for _, c := range p.Calls {
		if c.Model == model {
			n++
		}
	}
	return n
}

// Idle reports whether nothing more can arrive: no outstanding call and no
// scheduled launch.
func (p *Progress) Idle() bool { return p.Pending() == 0 && len(p.Scheduled) == 0 }

// Successes returns the successful results, in arrival order.
func (p *Progress) Successes() []Result {
	var out []Result
	for _, r := range p.Results {
		if r.OK() {
			out = append(out, r)
		}
	}
	return out
}

// Failures returns the failed results, in arrival order.
func (p *Progress) Failures() []Result {
	var out []Result
	for _, r := range p.Results {
		if !r.OK() {
			out = append(out, r)
		}
	}
	return out
}

// ResultOf returns the first successful result of model.
func (p *Progress) ResultOf(model string) (Result, bool) {
	for _, r := range p.Results {
		if r.Model == model && r.OK() {
			return r, true
		}
	}
	return Result{}, false
}

// Candidate returns the candidate named model.
func (p *Progress) Candidate(model string) (Candidate, bool) {
	for _, c := range p.Candidates {
		if c.Model == model {
			return c, true
		}
	}
	return Candidate{}, false
}

// LastError returns the error of the last failed result (nil if none).
func (p *Progress) LastError() error {
	for i := len(p.Results) - 1; i >= 0; i-- {
		if p.Results[i].Err != nil {
			return p.Results[i].Err
		}
	}
	return nil
}
