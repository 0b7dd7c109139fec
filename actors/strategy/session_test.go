package strategy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/manta-ml/manta/api"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// funcStrategy is a strategy made of functions, for session tests.
type funcStrategy struct {
	start func(*Request, []Candidate) Plan
	event func(Event, *Progress) Decision
}

func (f *funcStrategy) Name() string { return "func" }
func (f *funcStrategy) Start(r *Request, c []Candidate) Plan {
	return f.start(r, c)
}
func (f *funcStrategy) OnEvent(ev Event, p *Progress) Decision {
	if f.event == nil {
		return Wait()
	}
	return f.event(ev, p)
}

func cands(names ...string) []Candidate {
	var out []Candidate
	for _, n := range names {
		out = append(out, Candidate{Model: n, Version: "1"})
	}
	return out
}

func req(deadline time.Duration) *Request {
	return &Request{ID: "r", Payload: []byte(`{}`), Deadline: t0.Add(deadline)}
}

func finishOf(t *testing.T, acts []Action) *Response {
	t.Helper()
	var r *Response
	for i, a := range acts {
		if a.Kind == ActFinish {
			if r != nil {
				t.Fatalf("two finish actions: %v", acts)
			}
			if i != len(acts)-1 {
				t.Fatalf("finish is not the last action: %v", acts)
			}
			r = a.Response
		}
	}
	return r
}

func kinds(acts []Action) string {
	var b []string
	for _, a := range acts {
		s := a.Kind.String()
		if a.Model != "" {
			s += ":" + a.Model
		}
		b = append(b, s)
	}
	return strings.Join(b, " ")
}

func ok(model, out string) Result { return Result{Model: model, Version: "1", Output: []byte(out)} }

func TestSessionNoCandidates(t *testing.T) {
	s := NewSession(&FirstSuccess{}, req(ms(10)), nil)
	r := finishOf(t, s.Start(t0))
	if r == nil || !errors.Is(r.Err, api.ErrBadInput) {
		t.Fatalf("got %v, want bad_input", r)
	}
}

func TestSessionPanicInStart(t *testing.T) {
	s := NewSession(&funcStrategy{start: func(*Request, []Candidate) Plan { panic("boom") }}, req(ms(10)), cands("a"))
	r := finishOf(t, s.Start(t0))
	if r == nil || !errors.Is(r.Err, api.ErrInternal) || !strings.Contains(r.Err.Error(), "boom") {
		t.Fatalf("got %v, want internal naming the panic", r)
	}
}

func TestSessionPanicInOnEvent(t *testing.T) {
	s := NewSession(&funcStrategy{
		start: func(_ *Request, c []Candidate) Plan { return Plan{Launches: []Launch{{Model: "a"}}} },
		event: func(Event, *Progress) Decision { panic("bad") },
	}, req(ms(10)), cands("a"))
	s.Start(t0)
	acts := s.OnResult(t0.Add(ms(1)), ok("a", `1`))
	r := finishOf(t, acts)
	if r == nil || !errors.Is(r.Err, api.ErrInternal) {
		t.Fatalf("got %v, want internal", kinds(acts))
	}
}

func TestSessionDeadlineExceeded(t *testing.T) {
	s := NewSession(&funcStrategy{
		start: func(*Request, []Candidate) Plan { return Plan{Launches: []Launch{{Model: "a"}}} },
	}, req(ms(10)), cands("a"))
	acts := s.Start(t0)
	if got := kinds(acts); got != "launch:a wake" {
		t.Fatalf("start: %s", got)
	}
	if acts[1].At != t0.Add(ms(10)) {
		t.Fatalf("wake at %v, want the deadline", acts[1].At)
	}
	acts = s.OnTimer(t0.Add(ms(10)))
	r := finishOf(t, acts)
	if r == nil || !errors.Is(r.Err, api.ErrDeadlineExceeded) || !IsDeadlineExceeded(r) {
		t.Fatalf("got %s", kinds(acts))
	}
	if got := kinds(acts); got != "cancel:a finish" {
		t.Fatalf("actions %s", got)
	}
	// Late result: dropped, counted, no action.
	if acts := s.OnResult(t0.Add(ms(11)), ok("a", "1")); len(acts) != 0 {
		t.Fatalf("late result acted: %v", acts)
	}
	if s.Late() != 1 {
		t.Fatalf("late = %d", s.Late())
	}
	if s.OnTimer(t0.Add(ms(12))) != nil || s.OnDeadline(t0.Add(ms(12))) != nil {
		t.Fatal("actions after finish")
	}
}

func TestSessionResultAfterDeadlineBeforeTimer(t *testing.T) {
	s := NewSession(&FirstSuccess{}, req(ms(10)), cands("a"))
	s.Start(t0)
	r := finishOf(t, s.OnResult(t0.Add(ms(11)), ok("a", "1")))
	if r == nil || !IsDeadlineExceeded(r) || s.Late() != 1 {
		t.Fatalf("got %v late=%d", r, s.Late())
	}
}

func TestSessionUnknownModelLaunch(t *testing.T) {
	s := NewSession(&funcStrategy{
		start: func(*Request, []Candidate) Plan { return Plan{Launches: []Launch{{Model: "zzz"}}} },
	}, req(ms(10)), cands("a"))
	r := finishOf(t, s.Start(t0))
	if r == nil || !errors.Is(r.Err, api.ErrInternal) || !strings.Contains(r.Err.Error(), "zzz") {
		t.Fatalf("got %v", r)
	}
}

func TestSessionWakeLoop(t *testing.T) {
	s := NewSession(&funcStrategy{
		start: func(r *Request, _ []Candidate) Plan { return Plan{WakeAt: r.Now} },
		event: func(ev Event, _ *Progress) Decision { return WakeAt(ev.Now) },
	}, req(ms(10)), cands("a"))
	r := finishOf(t, s.Start(t0))
	if r == nil || !errors.Is(r.Err, api.ErrInternal) {
		t.Fatalf("got %v", r)
	}
}

func TestSessionMaxCalls(t *testing.T) {
	s := NewSession(&funcStrategy{
		start: func(*Request, []Candidate) Plan {
			return Plan{Launches: []Launch{{Model: "a"}, {Model: "a"}, {Model: "a"}}}
		},
	}, req(ms(10)), cands("a"), WithMaxCalls(2))
	acts := s.Start(t0)
	if got := kinds(acts); got != "launch:a launch:a wake" || !acts[1].Hedge || s.Dropped() != 1 {
		t.Fatalf("got %s dropped=%d", got, s.Dropped())
	}
}

func TestSessionDelayedLaunchAndCancel(t *testing.T) {
	var seen []Progress
	s := NewSession(&funcStrategy{
		start: func(*Request, []Candidate) Plan {
			return Plan{Launches: []Launch{{Model: "a"}, {Model: "b", After: ms(5)}}}
		},
		event: func(ev Event, p *Progress) Decision {
			seen = append(seen, *p)
			if ev.Kind == EventResult && ev.Result.Model == "a" {
				return Decision{Cancel: []string{"b"}, WakeAt: ev.Now.Add(ms(1))}
			}
			if ev.Kind == EventTimer {
				return Answer(p.Results[0])
			}
			return Wait()
		},
	}, req(ms(10)), cands("a", "b"))
	acts := s.Start(t0)
	if got := kinds(acts); got != "launch:a wake" || acts[1].At != t0.Add(ms(5)) {
		t.Fatalf("start: %s", got)
	}
	acts = s.OnResult(t0.Add(ms(2)), ok("a", "A"))
	if got := kinds(acts); got != "wake" || acts[0].At != t0.Add(ms(3)) {
		t.Fatalf("after a: %s", got)
	}
	if len(seen[0].Scheduled) != 1 || seen[0].Scheduled[0].After != ms(3) || seen[0].Results[0].Latency != ms(2) {
		t.Fatalf("progress %+v", seen[0])
	}
	// An early, spurious timer does nothing but re-arm.
	if got := kinds(s.OnTimer(t0.Add(ms(2)))); got != "wake" {
		t.Fatalf("early timer: %s", got)
	}
	r := finishOf(t, s.OnTimer(t0.Add(ms(3))))
	if r == nil || string(r.Output) != "A" || r.Calls != 1 || r.Elapsed() != ms(3) {
		t.Fatalf("got %v", r)
	}
}

func TestSessionIdleGivesEarlyDeadline(t *testing.T) {
	s := NewSession(&funcStrategy{
		start: func(*Request, []Candidate) Plan { return Plan{Launches: []Launch{{Model: "a"}}} },
	}, req(ms(10)), cands("a"))
	s.Start(t0)
	r := finishOf(t, s.OnResult(t0.Add(ms(1)), Result{Model: "a", Err: api.ErrOverloaded}))
	if r == nil || !errors.Is(r.Err, api.ErrOverloaded) || r.At != t0.Add(ms(1)) {
		t.Fatalf("got %v", r)
	}
}

func TestSessionPlanTightensDeadline(t *testing.T) {
	s := NewSession(&funcStrategy{
		start: func(r *Request, _ []Candidate) Plan {
			return Plan{Launches: []Launch{{Model: "a"}}, Deadline: r.Now.Add(ms(4))}
		},
	}, req(ms(10)), cands("a"))
	acts := s.Start(t0)
	if s.Deadline() != t0.Add(ms(4)) || acts[len(acts)-1].At != t0.Add(ms(4)) {
		t.Fatalf("deadline %v, actions %v", s.Deadline(), acts)
	}
}

func TestSessionDefaultTimeout(t *testing.T) {
	s := NewSession(&FirstSuccess{}, &Request{}, cands("a"))
	s.Start(t0)
	if s.Deadline() != t0.Add(DefaultTimeout) {
		t.Fatalf("deadline %v", s.Deadline())
	}
}

func TestStatsConcurrent(t *testing.T) {
	st := NewStats()
	done := make(chan bool)
	for i := 0; i < 4; i++ {
		go func() {
			for j := 0; j < 100; j++ {
				st.Record(&Response{Strategy: "hedged", Models: []string{"a"}, Calls: 2, Hedges: 1})
				st.Record(&Response{Strategy: "hedged", Err: api.ErrDeadlineExceeded, Calls: 1})
				st.AddLate("hedged", 1)
				_ = st.Snapshot()
			}
			done <- true
		}()
	}
	for i := 0; i < 4; i++ {
		<-done
	}
	g := st.Get("hedged")
	if g.Requests != 800 || g.Wins["a"] != 400 || g.Hedges != 400 || g.Late != 400 || g.DeadlineExceeded != 400 || g.Calls != 1200 {
		t.Fatalf("%+v", g)
	}
}

func TestRegistry(t *testing.T) {
	for _, name := range []string{NameDeadlineFallback, NameHedged, NameFirstSuccess, NameMajorityVote, NameBestQuality, NameWeightedAverage, NameCascade} {
		s, err := New(name, nil)
		if err != nil || s.Name() != name {
			t.Errorf("New(%q) = %v, %v", name, s, err)
		}
	}
	if _, err := New("nope", nil); !errors.Is(err, api.ErrBadInput) {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := New(NameHedged, map[string]string{"dealy": "5ms"}); !errors.Is(err, api.ErrBadInput) || !strings.Contains(err.Error(), "dealy") {
		t.Errorf("unknown param: %v", err)
	}
	if _, err := New(NameHedged, map[string]string{"delay": "soon"}); !errors.Is(err, api.ErrBadInput) {
		t.Errorf("bad param: %v", err)
	}
	for _, tc := range []struct {
		name string
		f    Factory
	}{{"", NewFirstSuccess}, {"x-nil", nil}, {NameHedged, NewHedged}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterStrategy(%q) did not panic", tc.name)
				}
			}()
			RegisterStrategy(tc.name, tc.f)
		}()
	}
	RegisterStrategy("test-panicking-factory", func(map[string]string) (Strategy, error) { panic("x") })
	if _, err := New("test-panicking-factory", nil); !errors.Is(err, api.ErrInternal) {
		t.Errorf("panicking factory: %v", err)
	}
}
