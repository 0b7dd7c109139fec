package strategytest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/manta-ml/manta/actors/strategy"
	"github.com/manta-ml/manta/api"
)

// Option tunes the suite.
type Option func(*config)

type config struct {
	params     map[string]string
	candidates int
	scenarios  int
	seed       uint64
	output     func(model string) []byte
}

// WithParams gives the factory these params (default: none, so the
// strategy's defaults must work).
func WithParams(params map[string]string) Option {
	return func(c *config) { c.params = params }
}

// WithCandidates sets how many candidates the main scenarios offer (default
// 3). Scenarios with 0 and 1 candidates always run too.
func WithCandidates(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.candidates = n
		}
	}
}

// WithRandomScenarios sets how many seeded random scenarios run (default
// 200).
func WithRandomScenarios(n int) Option {
	return func(c *config) {
		if n >= 0 {
			c.scenarios = n
		}
	}
}

// WithSeed changes the seed of the random scenarios (default 1).
func WithSeed(seed uint64) Option {
	return func(c *config) { c.seed = seed }
}

// WithOutput sets what a model answers on success (default a JSON object
// with "prediction", "label", "confidence" and "probabilities", the same for
// every model).
func WithOutput(f func(model string) []byte) Option {
	return func(c *config) { c.output = f }
}

// DefaultOutput is the output models answer unless WithOutput says otherwise.
const DefaultOutput = `{"prediction": 1, "label": 1, "confidence": 0.9, "probabilities": [0.1, 0.9]}`

// Run runs the conformance suite on the strategy the factory builds. The
// factory is called once per simulated request, as a collector would.
func Run(t *testing.T, factory strategy.Factory, opts ...Option) {
	t.Helper()
	cfg := config{candidates: 3, scenarios: 200, seed: 1, output: func(string) []byte { return []byte(DefaultOutput) }}
	for _, o := range opts {
		o(&cfg)
	}
	if factory == nil {
		t.Fatal("strategytest: nil factory")
	}
	probe, err := factory(cfg.params)
	if err != nil {
		t.Fatalf("factory(%v): %v", cfg.params, err)
	}
	if probe == nil || probe.Name() == "" {
		t.Fatalf("factory(%v) returned a nil strategy or one with an empty Name", cfg.params)
	}
	s := &suite{cfg: cfg, factory: factory}

	t.Run("ZeroCandidates", s.zeroCandidates)
	for _, sc := range s.fixed() {
		t.Run(sc.name, func(t *testing.T) { s.check(t, sc) })
	}
	t.Run("IgnoresEventsAfterDeciding", s.ignoresLate)
	t.Run("Deterministic", s.deterministic)
	t.Run("RandomScenarios", func(t *testing.T) {
		for i := 0; i < cfg.scenarios; i++ {
			sc := s.random(uint64(i))
			if !s.check(t, sc) {
				return // one failing seed is enough to read
			}
		}
	})
}

type suite struct {
	cfg     config
	factory strategy.Factory
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// behaviour is what one call of a model does.
type behaviour struct {
	latency time.Duration
	output  []byte
	err     error
	silent  bool // never answers
}

type scenario struct {
	name     string
	deadline time.Duration
	cands    []strategy.Candidate
	// call returns the behaviour of the n-th call (from 0) of model.
	call  func(model string, n int) behaviour
	check func(o outcome) []string
}

type outcome struct {
	resp    *strategy.Response
	trace   []string
	late    int
	results map[string]bool // models that returned a success to the session
}

func (s *suite) newStrategy(t *testing.T) strategy.Strategy {
	t.Helper()
	st, err := s.factory(s.cfg.params)
	if err != nil {
		t.Fatalf("factory(%v): %v", s.cfg.params, err)
	}
	if st == nil {
		t.Fatalf("factory(%v) returned nil", s.cfg.params)
	}
	return st
}

func candidates(n int, withStats bool) []strategy.Candidate {
	out := make([]strategy.Candidate, n)
	for i := range out {
		out[i] = strategy.Candidate{
			Model:          fmt.Sprintf("m%d", i),
			Version:        "1",
			Quality:        0.9 - 0.1*float64(i),
			HasQuality:     true,
			HigherIsBetter: true,
		}
		if withStats {
			base := time.Duration(i+1) * 2 * time.Millisecond
			out[i].Latency = strategy.Latency{P50: base, P95: 2 * base, P99: 5 * base, Count: 1000}
		}
	}
	return out
}

func (s *suite) zeroCandidates(t *testing.T) {
	// A Session answers bad_input without calling Start: strategies may
	// assume at least one candidate.
	req := &strategy.Request{ID: "zero", Payload: []byte(`{}`), Deadline: t0.Add(50 * time.Millisecond), Params: s.cfg.params}
	se := strategy.NewSession(s.newStrategy(t), req, nil)
	acts := se.Start(t0)
	if len(acts) != 1 || acts[0].Kind != strategy.ActFinish || !errors.Is(acts[0].Response.Err, api.ErrBadInput) {
		t.Errorf("a session with zero candidates: want one finish with bad_input, got %v", acts)
	}
}

func ok(out []byte, lat time.Duration) behaviour { return behaviour{latency: lat, output: out} }

func (s *suite) fixed() []scenario {
	n := s.cfg.candidates
	out := s.cfg.output
	ms := time.Millisecond
	errs := []error{
		fmt.Errorf("predict: %w", api.ErrOverloaded),
		fmt.Errorf("load: %w", api.ErrLoadFailed),
		&api.RemoteError{Code: api.ErrorCode_ERROR_CODE_INTERNAL, Message: "worker crashed"},
		fmt.Errorf("%w: wrong feature count", api.ErrBadInput),
	}
	wantSuccess := func(o outcome) []string {
		switch {
		case o.resp.Err != nil:
			return []string{fmt.Sprintf("every model answered the same within a few ms of a 50ms deadline, yet the answer is an error: %v", o.resp.Err)}
		case len(o.resp.Models) == 0:
			return []string{"every model answered the same within a few ms of a 50ms deadline, yet the answer names no model"}
		}
		return nil
	}
	wantError := func(o outcome) []string {
		if o.resp.Err == nil && len(o.resp.Models) > 0 {
			return []string{fmt.Sprintf("every call failed, yet the answer names models %v", o.resp.Models)}
		}
		return nil
	}
	return []scenario{
		{name: "AllFast", deadline: 50 * ms, cands: candidates(n, true),
			call: func(m string, _ int) behaviour { return ok(out(m), time.Duration(1+idx(m))*ms) }, check: wantSuccess},
		{name: "AllFastNoStats", deadline: 50 * ms, cands: candidates(n, false),
			call: func(m string, _ int) behaviour { return ok(out(m), time.Duration(1+idx(m))*ms) }, check: wantSuccess},
		{name: "OneCandidate", deadline: 50 * ms, cands: candidates(1, true),
			call: func(m string, _ int) behaviour { return ok(out(m), 2*ms) }},
		{name: "AllFailing", deadline: 50 * ms, cands: candidates(n, true),
			call: func(m string, k int) behaviour {
				return behaviour{latency: time.Duration(1+idx(m)+k) * ms, err: errs[(idx(m)+k)%len(errs)]}
			}, check: wantError},
		{name: "AllFailingAtOnce", deadline: 50 * ms, cands: candidates(n, true),
			call: func(m string, _ int) behaviour { return behaviour{err: errs[0]} }, check: wantError},
		{name: "FirstFailsOthersSucceed", deadline: 50 * ms, cands: candidates(n, true),
			call: func(m string, _ int) behaviour {
				if idx(m) == 0 {
					return behaviour{latency: ms, err: errs[0]}
				}
				return ok(out(m), time.Duration(2+idx(m))*ms)
			}},
		{name: "Silent", deadline: 50 * ms, cands: candidates(n, true),
			call: func(string, int) behaviour { return behaviour{silent: true} }, check: wantError},
		{name: "AllAfterDeadline", deadline: 50 * ms, cands: candidates(n, true),
			call: func(m string, _ int) behaviour { return ok(out(m), 80*ms) }, check: wantError},
		{name: "Stragglers", deadline: 50 * ms, cands: candidates(n, true),
			call: func(m string, k int) behaviour {
				if k == 0 {
					return ok(out(m), 45*ms)
				}
				return ok(out(m), 3*ms)
			}},
		{name: "MalformedOutputs", deadline: 50 * ms, cands: candidates(n, true),
			call: func(m string, k int) behaviour {
				bad := [][]byte{nil, []byte("not json"), []byte(`{"prediction": "high"}`), []byte(`[1,2`), []byte(`{"probabilities": []}`)}
				return ok(bad[(idx(m)+k)%len(bad)], time.Duration(1+idx(m))*ms)
			}},
		{name: "DifferentOutputs", deadline: 50 * ms, cands: candidates(n, true),
			call: func(m string, _ int) behaviour {
				return ok([]byte(fmt.Sprintf(`{"prediction": %d, "label": %d, "confidence": 0.%d}`, idx(m), idx(m)%2, 5+idx(m)%5)), time.Duration(1+idx(m))*ms)
			}},
		{name: "DeadlineAlreadyPassed", deadline: 0, cands: candidates(n, true),
			call: func(m string, _ int) behaviour { return ok(out(m), ms) }},
		{name: "ManyCandidates", deadline: 50 * ms, cands: candidates(12, true),
			call: func(m string, k int) behaviour {
				if idx(m)%3 == 0 {
					return behaviour{latency: time.Duration(idx(m)) * ms, err: errs[k%len(errs)]}
				}
				return ok(out(m), time.Duration(2*idx(m))*ms)
			}},
	}
}

func idx(model string) int {
	var i int
	fmt.Sscanf(strings.TrimPrefix(model, "m"), "%d", &i)
	return i
}

func (s *suite) random(seed uint64) scenario {
	r := rand.New(rand.NewPCG(s.cfg.seed, seed))
	n := 1 + r.IntN(max(s.cfg.candidates+2, 5))
	deadline := time.Duration(5+r.IntN(100)) * time.Millisecond
	cands := candidates(n, r.IntN(3) > 0)
	for i := range cands {
		cands[i].HasQuality = r.IntN(4) > 0
		cands[i].Quality = r.Float64()
		cands[i].HigherIsBetter = r.IntN(2) == 0
	}
	failP := []float64{0, 0.1, 0.5, 1}[r.IntN(4)]
	silentP := []float64{0, 0, 0.05, 0.3}[r.IntN(4)]
	vary := r.IntN(2) == 0
	// Each (model, call) gets its own draw, independent of call order, so
	// the scenario is the same whatever the strategy does.
	return scenario{
		name:     fmt.Sprintf("seed %d", seed),
		deadline: deadline,
		cands:    cands,
		call: func(m string, k int) behaviour {
			cr := rand.New(rand.NewPCG(seed, uint64(idx(m))<<20|uint64(k)))
			lat := time.Duration(cr.ExpFloat64() * float64(deadline) / 3)
			if cr.IntN(20) == 0 {
				lat *= 10
			}
			if cr.Float64() < silentP {
				return behaviour{silent: true}
			}
			if cr.Float64() < failP {
				return behaviour{latency: lat, err: fmt.Errorf("simulated: %w", api.ErrOverloaded)}
			}
			o := s.cfg.output(m)
			if vary && cr.IntN(3) == 0 {
				o = []byte(fmt.Sprintf(`{"prediction": %d, "label": %d, "confidence": %.2f}`, cr.IntN(3), cr.IntN(2), cr.Float64()))
			}
			return ok(o, lat)
		},
	}
}

func (s *suite) check(t *testing.T, sc scenario) bool {
	t.Helper()
	o, problems := s.run(sc)
	for _, p := range problems {
		t.Errorf("%s: %s\ntrace:\n  %s", sc.name, p, strings.Join(o.trace, "\n  "))
	}
	return len(problems) == 0
}

type pendingResult struct {
	at     time.Time
	seq    int
	result strategy.Result
}

func (s *suite) run(sc scenario) (o outcome, problems []string) {
	st, err := s.factory(s.cfg.params)
	if err != nil || st == nil {
		return o, []string{fmt.Sprintf("factory: %v", err)}
	}
	req := &strategy.Request{ID: sc.name, Payload: []byte(`{"features": [1, 2, 3]}`), ContentType: "application/json",
		Deadline: t0.Add(sc.deadline), Params: s.cfg.params}
	se := strategy.NewSession(st, req, sc.cands)
	o.results = map[string]bool{}
	var (
		now     = t0
		queue   []pendingResult
		seq     int
		timer   time.Time
		calls   = map[string]int{}
		finishN int
	)
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	perform := func(acts []strategy.Action) {
		for i, a := range acts {
			o.trace = append(o.trace, fmt.Sprintf("+%v %v", now.Sub(t0), a))
			if finishN > 0 {
				fail("action %v after the answer", a)
			}
			switch a.Kind {
			case strategy.ActLaunch:
				b := sc.call(a.Model, calls[a.Model])
				calls[a.Model]++
				if b.silent {
					continue
				}
				seq++
				queue = append(queue, pendingResult{at: now.Add(b.latency), seq: seq, result: strategy.Result{
					Model: a.Model, Version: "1", Output: b.output, Err: b.err, Latency: b.latency}})
			case strategy.ActWake:
				if a.At.Before(now) {
					fail("wake at %v, before now %v", a.At.Sub(t0), now.Sub(t0))
				}
				timer = a.At
			case strategy.ActFinish:
				finishN++
				o.resp = a.Response
				if i != len(acts)-1 {
					fail("finish is not the last action")
				}
			}
		}
	}
	perform(se.Start(now))
	for steps := 0; ; steps++ {
		if steps > 100000 {
			fail("no end after %d steps", steps)
			break
		}
		// The next thing to happen: the earliest result, or the timer.
		slices.SortStableFunc(queue, func(a, b pendingResult) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return a.seq - b.seq
		})
		switch {
		case len(queue) > 0 && (timer.IsZero() || !queue[0].at.After(timer)):
			p := queue[0]
			queue = queue[1:]
			now = p.at
			if p.result.OK() {
				o.results[p.result.Model] = true
			}
			o.trace = append(o.trace, fmt.Sprintf("+%v result %s err=%v out=%s", now.Sub(t0), p.result.Model, p.result.Err, p.result.Output))
			perform(se.OnResult(now, p.result))
		case !timer.IsZero():
			now, timer = timer, time.Time{}
			o.trace = append(o.trace, fmt.Sprintf("+%v timer", now.Sub(t0)))
			perform(se.OnTimer(now))
		default:
			if finishN == 0 {
				fail("the session stalled: no answer, no timer armed, nothing in flight")
			}
		}
		if len(queue) == 0 && (timer.IsZero() || finishN > 0) {
			break
		}
	}
	o.late = se.Late()
	if finishN > 0 {
		// Events after the decision must do nothing.
		if acts := se.OnTimer(now.Add(time.Millisecond)); len(acts) != 0 {
			fail("OnTimer after the answer returned %v", acts)
		}
		if acts := se.OnResult(now, strategy.Result{Model: sc.cands[0].Model, Output: []byte(`{}`)}); len(acts) != 0 {
			fail("OnResult after the answer returned %v", acts)
		}
	}
	problems = append(problems, s.invariants(sc, se, o, finishN)...)
	if finishN == 1 && sc.check != nil {
		problems = append(problems, sc.check(o)...)
	}
	return o, problems
}

func (s *suite) invariants(sc scenario, se *strategy.Session, o outcome, finishN int) []string {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if finishN != 1 {
		fail("answered %d times, want exactly once", finishN)
		return problems
	}
	r := o.resp
	if r.At.After(se.Deadline()) && !(sc.deadline <= 0 && r.At.Equal(t0)) {
		fail("answered at +%v, after the deadline +%v", r.At.Sub(t0), se.Deadline().Sub(t0))
	}
	var serr *strategy.StrategyError
	if errors.As(r.Err, &serr) {
		if serr.Stack != nil {
			fail("the strategy misbehaved: %v\n%s", serr, serr.Stack)
		} else {
			fail("the strategy misbehaved: %v", serr)
		}
	}
	if se.Dropped() > 0 {
		fail("the strategy asked for more than %d calls", strategy.DefaultMaxCalls)
	}
	if r.Err == nil {
		if len(r.Versions) != len(r.Models) {
			fail("answer names models %v but versions %v", r.Models, r.Versions)
		}
		for _, m := range r.Models {
			if !o.results[m] {
				fail("answer names model %q, which gave no successful result", m)
			}
		}
	}
	if r.Strategy == "" {
		fail("response without a strategy name")
	}
	return problems
}

func (s *suite) ignoresLate(t *testing.T) {
	// Every model answers twice as fast as the next: the answer comes
	// while slower results are still in flight; they must be dropped.
	sc := scenario{name: "late", deadline: 100 * time.Millisecond, cands: candidates(s.cfg.candidates, true),
		call: func(m string, _ int) behaviour {
			return ok(s.cfg.output(m), time.Duration(1<<idx(m))*time.Millisecond)
		}}
	spy := &spyFactory{inner: s.factory}
	s2 := &suite{cfg: s.cfg, factory: spy.factory}
	s2.check(t, sc)
	if spy.after > 0 {
		t.Errorf("the strategy got %d events after it decided", spy.after)
	}
}

type spyFactory struct {
	inner strategy.Factory
	after int
}

func (f *spyFactory) factory(params map[string]string) (strategy.Strategy, error) {
	st, err := f.inner(params)
	if err != nil {
		return nil, err
	}
	return &spy{Strategy: st, f: f}, nil
}

type spy struct {
	strategy.Strategy
	f       *spyFactory
	decided bool
}

func (s *spy) OnEvent(ev strategy.Event, p *strategy.Progress) strategy.Decision {
	if s.decided {
		s.f.after++
	}
	d := s.Strategy.OnEvent(ev, p)
	if d.Done {
		s.decided = true
	}
	return d
}

func (s *suite) deterministic(t *testing.T) {
	for i := uint64(0); i < 20; i++ {
		sc := s.random(1000 + i)
		a, _ := s.run(sc)
		b, _ := s.run(sc)
		if !slices.Equal(a.trace, b.trace) {
			t.Fatalf("%s: two runs on the same fixed clock differ:\nfirst:\n  %s\nsecond:\n  %s", sc.name,
				strings.Join(a.trace, "\n  "), strings.Join(b.trace, "\n  "))
		}
	}
}
