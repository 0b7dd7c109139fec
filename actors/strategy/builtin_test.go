package strategy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/manta-ml/manta/api"
)

// harness drives one built-in through a Session on a fake clock, step by
// step: the test says when each result arrives and when timers fire.
type harness struct {
	t        *testing.T
	s        *Session
	now      time.Time
	acts     []Action
	launches []string
	wake     time.Time
}

func newHarness(t *testing.T, name string, params map[string]string, deadline time.Duration, cs ...Candidate) *harness {
	t.Helper()
	st, err := New(name, params)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, now: t0}
	h.s = NewSession(st, req(deadline), cs)
	h.record(h.s.Start(t0))
	return h
}

func (h *harness) record(acts []Action) {
	h.acts = append(h.acts, acts...)
	for _, a := range acts {
		switch a.Kind {
		case ActLaunch:
			h.launches = append(h.launches, a.Model)
		case ActWake:
			h.wake = a.At
		}
	}
}

func (h *harness) at(d time.Duration) *harness { h.now = t0.Add(d); return h }

func (h *harness) ok(model, version, out string) *harness {
	h.record(h.s.OnResult(h.now, Result{Model: model, Version: version, Output: []byte(out)}))
	return h
}

func (h *harness) fail(model string, err error) *harness {
	h.record(h.s.OnResult(h.now, Result{Model: model, Err: err}))
	return h
}

// tick fires the armed timer (moving the clock to it).
func (h *harness) tick() *harness {
	h.t.Helper()
	if h.wake.IsZero() {
		h.t.Fatal("no timer armed")
	}
	h.now, h.wake = h.wake, time.Time{}
	h.record(h.s.OnTimer(h.now))
	return h
}

func (h *harness) resp() *Response {
	h.t.Helper()
	r := h.s.Response()
	if r == nil {
		h.t.Fatalf("no answer yet; actions: %v", h.acts)
	}
	return r
}

func (h *harness) pending() {
	h.t.Helper()
	if r := h.s.Response(); r != nil {
		h.t.Fatalf("answered early: %v", r)
	}
}

func (h *harness) wantLaunches(models ...string) {
	h.t.Helper()
	if !slices.Equal(h.launches, models) {
		h.t.Fatalf("launched %v, want %v", h.launches, models)
	}
}

func (h *harness) wantAnswer(out string, models ...string) *Response {
	h.t.Helper()
	r := h.resp()
	if r.Err != nil || string(r.Output) != out || !slices.Equal(r.Models, models) {
		h.t.Fatalf("answer %v, want %s from %v", r, out, models)
	}
	return r
}

func cand(model string, p50, p95 time.Duration) Candidate {
	return Candidate{Model: model, Version: "1", Latency: Latency{P50: p50, P95: p95, P99: 3 * p95, Count: 100}}
}

func qcand(model string, q float64, higher bool) Candidate {
	return Candidate{Model: model, Version: "1", Quality: q, HasQuality: true, HigherIsBetter: higher}
}

var errOverloaded = fmt.Errorf("predict: %w", api.ErrOverloaded)

func TestDeadlineFallback(t *testing.T) {
	smart, fast := cand("smart", ms(20), ms(40)), cand("fast", ms(1), ms(2))

	t.Run("SmartInTime", func(t *testing.T) {
		h := newHarness(t, NameDeadlineFallback, nil, ms(30), smart, fast)
		h.wantLaunches("smart", "fast")
		h.at(ms(2)).ok("fast", "3", `"F"`)
		h.pending()
		r := h.at(ms(25)).ok("smart", "7", `"S"`).wantAnswer(`"S"`, "smart")
		if r.Fallback || r.Versions[0] != "7" || r.Calls != 2 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("SmartLate", func(t *testing.T) {
		h := newHarness(t, NameDeadlineFallback, nil, ms(30), smart, fast)
		h.at(ms(2)).ok("fast", "3", `"F"`)
		h.tick()
		r := h.wantAnswer(`"F"`, "fast")
		if !r.Fallback || r.Versions[0] != "3" || r.At != t0.Add(ms(30)) {
			t.Fatalf("%+v", r)
		}
		h.at(ms(40)).ok("smart", "7", `"S"`)
		if h.s.Late() != 1 {
			t.Fatalf("late = %d", h.s.Late())
		}
	})
	t.Run("SmartFailsAfterFast", func(t *testing.T) {
		h := newHarness(t, NameDeadlineFallback, nil, ms(30), smart, fast)
		h.at(ms(2)).ok("fast", "3", `"F"`)
		r := h.at(ms(5)).fail("smart", errOverloaded).wantAnswer(`"F"`, "fast")
		if !r.Fallback || r.At != t0.Add(ms(5)) {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("BothFail", func(t *testing.T) {
		h := newHarness(t, NameDeadlineFallback, nil, ms(30), smart, fast)
		h.at(ms(2)).fail("fast", errOverloaded)
		h.pending()
		h.at(ms(3)).fail("smart", fmt.Errorf("load: %w", api.ErrLoadFailed))
		if r := h.resp(); !errors.Is(r.Err, api.ErrLoadFailed) {
			t.Fatalf("%v", r)
		}
	})
	t.Run("NothingByDeadline", func(t *testing.T) {
		h := newHarness(t, NameDeadlineFallback, nil, ms(30), smart, fast)
		h.tick()
		if r := h.resp(); !IsDeadlineExceeded(r) {
			t.Fatalf("%v", r)
		}
	})
	t.Run("FallbackAtSavesTheCall", func(t *testing.T) {
		h := newHarness(t, NameDeadlineFallback, map[string]string{"fallback_at": "15ms"}, ms(30), smart, fast)
		h.wantLaunches("smart")
		h.at(ms(10)).ok("smart", "7", `"S"`).wantAnswer(`"S"`, "smart")
		if h.resp().Calls != 1 {
			t.Fatal("fast was called")
		}
	})
	t.Run("FallbackAtFires", func(t *testing.T) {
		h := newHarness(t, NameDeadlineFallback, map[string]string{"fallback_at": "15ms"}, ms(30), smart, fast)
		if h.wake != t0.Add(ms(15)) {
			t.Fatalf("wake %v", h.wake)
		}
		h.tick()
		h.wantLaunches("smart", "fast")
		h.at(ms(17)).ok("fast", "3", `"F"`)
		h.tick()
		h.wantAnswer(`"F"`, "fast")
	})
	t.Run("SmartFailsBeforeFallbackAt", func(t *testing.T) {
		h := newHarness(t, NameDeadlineFallback, map[string]string{"fallback_at": "15ms"}, ms(30), smart, fast)
		h.at(ms(3)).fail("smart", errOverloaded)
		h.wantLaunches("smart", "fast")
		h.at(ms(5)).ok("fast", "3", `"F"`).wantAnswer(`"F"`, "fast")
		if h.resp().Calls != 2 {
			t.Fatalf("calls %d", h.resp().Calls)
		}
	})
	t.Run("NamedModels", func(t *testing.T) {
		h := newHarness(t, NameDeadlineFallback, map[string]string{"smart": "fast", "fast": "smart"}, ms(30), smart, fast)
		h.at(ms(1)).ok("fast", "1", `"F"`).wantAnswer(`"F"`, "fast")
		h = newHarness(t, NameDeadlineFallback, map[string]string{"smart": "nope"}, ms(30), smart, fast)
		if !errors.Is(h.resp().Err, api.ErrBadInput) {
			t.Fatal(h.resp())
		}
	})
}

func TestHedged(t *testing.T) {
	m := cand("m", ms(10), ms(15))

	t.Run("NoHedgeWhenFast", func(t *testing.T) {
		h := newHarness(t, NameHedged, nil, ms(100), m)
		h.wantLaunches("m")
		if h.wake != t0.Add(ms(15)) {
			t.Fatalf("hedge timer at %v, want the p95", h.wake.Sub(t0))
		}
		r := h.at(ms(9)).ok("m", "1", "1").wantAnswer("1", "m")
		if r.Calls != 1 || r.Hedges != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("BackupWins", func(t *testing.T) {
		h := newHarness(t, NameHedged, nil, ms(100), m)
		h.tick()
		h.wantLaunches("m", "m")
		h.at(ms(24)).ok("m", "1", "B")
		r := h.wantAnswer("B", "m")
		if r.Calls != 2 || r.Hedges != 1 {
			t.Fatalf("%+v", r)
		}
		if !h.wake.IsZero() && h.wake.Before(t0.Add(ms(100))) {
			t.Fatalf("another hedge timer armed at %v despite max=1", h.wake.Sub(t0))
		}
	})
	t.Run("MaxAndDelay", func(t *testing.T) {
		h := newHarness(t, NameHedged, map[string]string{"delay": "5ms", "max": "2"}, ms(100), m)
		h.tick().tick()
		h.wantLaunches("m", "m", "m")
		if h.now != t0.Add(ms(10)) {
			t.Fatalf("second hedge at %v", h.now.Sub(t0))
		}
		h.at(ms(12)).ok("m", "1", "X")
		if r := h.resp(); r.Hedges != 2 || r.Calls != 3 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("PercentileParam", func(t *testing.T) {
		h := newHarness(t, NameHedged, map[string]string{"at": "p50"}, ms(100), m)
		if h.wake != t0.Add(ms(10)) {
			t.Fatalf("wake %v", h.wake.Sub(t0))
		}
	})
	t.Run("NoStatsHalfTheDeadline", func(t *testing.T) {
		h := newHarness(t, NameHedged, nil, ms(100), Candidate{Model: "m"})
		if h.wake != t0.Add(ms(50)) {
			t.Fatalf("wake %v", h.wake.Sub(t0))
		}
	})
	t.Run("RetryOnError", func(t *testing.T) {
		h := newHarness(t, NameHedged, nil, ms(100), m)
		h.at(ms(2)).fail("m", errOverloaded)
		h.wantLaunches("m", "m")
		h.at(ms(6)).fail("m", errOverloaded)
		if r := h.resp(); !errors.Is(r.Err, api.ErrOverloaded) || r.Calls != 2 {
			t.Fatalf("%v", r)
		}
	})
	t.Run("Replicas", func(t *testing.T) {
		h := newHarness(t, NameHedged, map[string]string{"max": "3", "delay": "1ms"}, ms(100), m, cand("m@1", ms(10), ms(15)), cand("m@2", ms(10), ms(15)))
		h.tick().tick().tick()
		h.wantLaunches("m", "m@1", "m@2", "m")
	})
	t.Run("FirstSuccessAmongHedges", func(t *testing.T) {
		h := newHarness(t, NameHedged, nil, ms(100), m)
		h.tick()
		h.at(ms(18)).fail("m", errOverloaded)
		h.pending()
		h.at(ms(30)).ok("m", "1", "late-but-fine").wantAnswer("late-but-fine", "m")
	})
}

func TestFirstSuccess(t *testing.T) {
	h := newHarness(t, NameFirstSuccess, nil, ms(50), cand("a", ms(1), ms(2)), cand("b", ms(1), ms(2)), cand("c", ms(1), ms(2)))
	h.wantLaunches("a", "b", "c")
	h.at(ms(1)).fail("b", errOverloaded)
	h.pending()
	r := h.at(ms(2)).ok("c", "4", "C").wantAnswer("C", "c")
	if r.Versions[0] != "4" {
		t.Fatal(r)
	}
	if got := kinds(h.acts); got != "launch:a launch:b launch:c wake cancel:a finish" {
		t.Fatalf("actions %s", got)
	}

	h = newHarness(t, NameFirstSuccess, nil, ms(50), cand("a", ms(1), ms(2)), cand("b", ms(1), ms(2)))
	h.at(ms(1)).fail("b", errOverloaded).at(ms(2)).fail("a", fmt.Errorf("x: %w", api.ErrNotFound))
	if r := h.resp(); !errors.Is(r.Err, api.ErrNotFound) || r.At != t0.Add(ms(2)) {
		t.Fatal(r)
	}
}

func TestMajorityVote(t *testing.T) {
	abc := []Candidate{cand("a", ms(1), ms(2)), cand("b", ms(1), ms(2)), cand("c", ms(1), ms(2))}

	t.Run("EarlyQuorumOnCanonicalJSON", func(t *testing.T) {
		h := newHarness(t, NameMajorityVote, nil, ms(50), abc...)
		h.at(ms(1)).ok("a", "1", `{"label": 1, "p": 0.50}`)
		h.pending()
		h.at(ms(2)).ok("b", "2", `{"p":0.5,"label":1.0}`)
		r := h.wantAnswer(`{"label": 1, "p": 0.50}`, "a", "b")
		if math.Abs(r.Confidence-2.0/3) > 1e-9 || r.Fallback || !slices.Equal(r.Versions, []string{"1", "2"}) {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("Key", func(t *testing.T) {
		h := newHarness(t, NameMajorityVote, map[string]string{"key": "label"}, ms(50), abc...)
		h.at(ms(1)).ok("a", "1", `{"label": 0, "p": 0.1}`)
		h.at(ms(2)).ok("b", "1", `{"label": 1, "p": 0.7}`)
		h.pending()
		h.at(ms(3)).ok("c", "1", `{"label": 1, "p": 0.9}`).wantAnswer(`{"label": 1, "p": 0.7}`, "b", "c")
	})
	t.Run("PluralityWhenHopeless", func(t *testing.T) {
		h := newHarness(t, NameMajorityVote, nil, ms(50), abc...)
		h.at(ms(1)).ok("a", "1", `"x"`)
		h.at(ms(2)).fail("b", errOverloaded)
		h.at(ms(3)).ok("c", "1", `"y"`)
		r := h.wantAnswer(`"x"`, "a")
		if !r.Fallback || math.Abs(r.Confidence-1.0/3) > 1e-9 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("PluralityAtDeadline", func(t *testing.T) {
		h := newHarness(t, NameMajorityVote, map[string]string{"k": "3"}, ms(50), abc...)
		h.at(ms(1)).ok("a", "1", `"x"`).at(ms(2)).ok("b", "1", `"x"`)
		h.pending()
		h.tick()
		if r := h.wantAnswer(`"x"`, "a", "b"); !r.Fallback {
			t.Fatal(r)
		}
	})
	t.Run("Strict", func(t *testing.T) {
		h := newHarness(t, NameMajorityVote, map[string]string{"strict": "true"}, ms(50), abc...)
		h.at(ms(1)).ok("a", "1", `"x"`).at(ms(2)).ok("b", "1", `"y"`)
		h.pending()
		h.tick()
		if r := h.resp(); !IsDeadlineExceeded(r) {
			t.Fatal(r)
		}
	})
	t.Run("KTooLarge", func(t *testing.T) {
		h := newHarness(t, NameMajorityVote, map[string]string{"k": "4"}, ms(50), abc...)
		if r := h.resp(); !errors.Is(r.Err, api.ErrBadInput) {
			t.Fatal(r)
		}
	})
}

func TestBestQuality(t *testing.T) {
	hi, mid, lo := qcand("hi", 0.95, true), qcand("mid", 0.9, true), qcand("lo", 0.8, true)

	t.Run("WaitsForTheBest", func(t *testing.T) {
		h := newHarness(t, NameBestQuality, nil, ms(50), lo, mid, hi)
		h.at(ms(1)).ok("lo", "1", "L").at(ms(2)).ok("mid", "1", "M")
		h.pending()
		h.at(ms(20)).ok("hi", "1", "H").wantAnswer("H", "hi")
	})
	t.Run("BestFirstEndsEarly", func(t *testing.T) {
		h := newHarness(t, NameBestQuality, nil, ms(50), lo, mid, hi)
		r := h.at(ms(3)).ok("hi", "1", "H").wantAnswer("H", "hi")
		if r.At != t0.Add(ms(3)) {
			t.Fatal(r)
		}
	})
	t.Run("BestArrivedByDeadline", func(t *testing.T) {
		h := newHarness(t, NameBestQuality, nil, ms(50), lo, mid, hi)
		h.at(ms(1)).ok("lo", "1", "L").at(ms(2)).ok("mid", "1", "M").tick()
		h.wantAnswer("M", "mid")
	})
	t.Run("LowerIsBetter", func(t *testing.T) {
		h := newHarness(t, NameBestQuality, nil, ms(50), qcand("a", 40, false), qcand("b", 30, false))
		h.at(ms(1)).ok("a", "1", "A")
		h.pending()
		h.at(ms(2)).ok("b", "1", "B").wantAnswer("B", "b")
	})
	t.Run("ByConfidence", func(t *testing.T) {
		h := newHarness(t, NameBestQuality, map[string]string{"by": "confidence"}, ms(50), lo, hi)
		h.at(ms(1)).ok("lo", "1", `{"confidence": 0.9}`)
		h.at(ms(2)).ok("hi", "1", `{"probabilities": [0.3, 0.7]}`)
		if r := h.wantAnswer(`{"confidence": 0.9}`, "lo"); r.Confidence != 0.9 {
			t.Fatal(r)
		}
	})
}

func TestWeightedAverage(t *testing.T) {
	t.Run("ParamWeights", func(t *testing.T) {
		h := newHarness(t, NameWeightedAverage, map[string]string{"weights": "a:3,b:1"}, ms(50), cand("a", 1, 2), cand("b", 1, 2))
		h.at(ms(1)).ok("a", "1", `{"prediction": 10}`)
		h.pending()
		r := h.at(ms(2)).ok("b", "2", `{"prediction": 20}`).wantAnswer(`{"prediction":12.5}`, "a", "b")
		if r.Confidence != 1 || r.Fallback {
			t.Fatal(r)
		}
	})
	t.Run("QualityWeightsLowerIsBetter", func(t *testing.T) {
		h := newHarness(t, NameWeightedAverage, nil, ms(50), qcand("a", 10, false), qcand("b", 40, false))
		h.at(ms(1)).ok("a", "1", `{"prediction": 100}`).at(ms(2)).ok("b", "1", `{"prediction": 200}`)
		h.wantAnswer(`{"prediction":120}`, "a", "b") // weights 1/10 and 1/40: 4:1
	})
	t.Run("PartialAtDeadline", func(t *testing.T) {
		h := newHarness(t, NameWeightedAverage, nil, ms(50), cand("a", 1, 2), cand("b", 1, 2), cand("c", 1, 2))
		h.at(ms(1)).ok("a", "1", `{"prediction": 1}`)
		h.at(ms(2)).ok("b", "1", `{"label": "not a number"}`)
		h.tick()
		r := h.wantAnswer(`{"prediction":1}`, "a")
		if !r.Fallback || math.Abs(r.Confidence-1.0/3) > 1e-9 {
			t.Fatal(r)
		}
	})
	t.Run("Key", func(t *testing.T) {
		h := newHarness(t, NameWeightedAverage, map[string]string{"key": "eta"}, ms(50), cand("a", 1, 2), cand("b", 1, 2))
		h.at(ms(1)).ok("a", "1", `{"eta": 1}`).at(ms(1)).ok("b", "1", `{"eta": 2}`)
		h.wantAnswer(`{"eta":1.5}`, "a", "b")
	})
	t.Run("NothingNumeric", func(t *testing.T) {
		h := newHarness(t, NameWeightedAverage, nil, ms(50), cand("a", 1, 2))
		h.at(ms(1)).ok("a", "1", `"x"`)
		if r := h.resp(); r.Err == nil {
			t.Fatal(r)
		}
	})
}

func TestCascade(t *testing.T) {
	fast, slow := cand("fast", ms(1), ms(2)), cand("slow", ms(20), ms(30))

	t.Run("Confident", func(t *testing.T) {
		h := newHarness(t, NameCascade, nil, ms(50), fast, slow)
		h.wantLaunches("fast")
		r := h.at(ms(1)).ok("fast", "1", `{"prediction": 1, "confidence": 0.93}`).wantAnswer(`{"prediction": 1, "confidence": 0.93}`, "fast")
		if r.Confidence != 0.93 || r.Calls != 1 || r.Fallback {
			t.Fatal(r)
		}
	})
	t.Run("UnsureEscalates", func(t *testing.T) {
		h := newHarness(t, NameCascade, nil, ms(50), fast, slow)
		h.at(ms(1)).ok("fast", "1", `{"prediction": 1, "probabilities": [0.4, 0.6]}`)
		h.wantLaunches("fast", "slow")
		h.at(ms(22)).ok("slow", "5", `{"prediction": 0}`).wantAnswer(`{"prediction": 0}`, "slow")
	})
	t.Run("UnsureNoTime", func(t *testing.T) {
		h := newHarness(t, NameCascade, nil, ms(50), fast, slow)
		r := h.at(ms(35)).ok("fast", "1", `{"confidence": 0.5}`).wantAnswer(`{"confidence": 0.5}`, "fast")
		if !r.Fallback || r.Calls != 1 {
			t.Fatal(r)
		}
	})
	t.Run("SlowMissesDeadline", func(t *testing.T) {
		h := newHarness(t, NameCascade, map[string]string{"threshold": "0.99"}, ms(50), fast, slow)
		h.at(ms(1)).ok("fast", "1", `{"confidence": 0.9}`)
		h.tick()
		if r := h.wantAnswer(`{"confidence": 0.9}`, "fast"); !r.Fallback || r.At != t0.Add(ms(50)) {
			t.Fatal(r)
		}
	})
	t.Run("SlowFails", func(t *testing.T) {
		h := newHarness(t, NameCascade, nil, ms(50), fast, slow)
		h.at(ms(1)).ok("fast", "1", `{}`)
		h.at(ms(5)).fail("slow", errOverloaded).wantAnswer(`{}`, "fast")
	})
	t.Run("FastFails", func(t *testing.T) {
		h := newHarness(t, NameCascade, nil, ms(50), fast, slow)
		h.at(ms(1)).fail("fast", errOverloaded)
		h.wantLaunches("fast", "slow")
		h.at(ms(20)).ok("slow", "1", `"S"`).wantAnswer(`"S"`, "slow")
	})
}

func TestOutputHelpers(t *testing.T) {
	if a, b := Canonical([]byte(`{"b":1.0,"a":[1, 2e0]}`)), Canonical([]byte(`{"a":[1,2],"b":1}`)); string(a) != string(b) {
		t.Errorf("%s != %s", a, b)
	}
	if got := Canonical([]byte(" not json ")); string(got) != "not json" {
		t.Errorf("%q", got)
	}
	if f, ok := Number([]byte(`{"prediction": 3.5}`), "prediction"); !ok || f != 3.5 {
		t.Error(f, ok)
	}
	if f, ok := Number([]byte(`2`), ""); !ok || f != 2 {
		t.Error(f, ok)
	}
	if _, ok := Number([]byte(`{"prediction": "x"}`), "prediction"); ok {
		t.Error("string is a number")
	}
	if c, ok := Confidence([]byte(`{"probabilities": [0.2, 0.7, 0.1]}`)); !ok || c != 0.7 {
		t.Error(c, ok)
	}
	if _, ok := Confidence([]byte(`{"prediction": 1}`)); ok {
		t.Error("confidence without one")
	}
}
