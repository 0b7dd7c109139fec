package strategy

import (
	"time"
)

// Cascade calls the fast model first and answers with it when it is
// confident enough; otherwise, if time remains for the slow model, it calls
// the slow one and answers with it. The fast answer is used (marked
// Fallback) when the slow model fails, has no time, or misses the deadline.
//
// Confidence is read from the fast output (see Confidence: "confidence", else
// the largest of "probabilities"); an output stating none is unsure.
//
// Params:
//   - fast: the fast model (default: the first candidate);
//   - slow: the slow model (default: the second candidate);
//   - threshold: the confidence θ under which the slow model is asked
//     (default 0.8);
//   - need: the time the slow model needs; it is not called with less left
//     (default: its live p50, or any time when it has no stats).
type Cascade struct {
	fastName, slowName string
	threshold          float64
	need               time.Duration

	fast, slow string
}

// NewCascade is the factory of "cascade".
func NewCascade(params map[string]string) (Strategy, error) {
	pr := ReadParams(params)
	s := &Cascade{
		fastName:  pr.String("fast", ""),
		slowName:  pr.String("slow", ""),
		threshold: pr.Float("threshold", 0.8),
		need:      pr.Duration("need", 0),
	}
	if s.fastName != "" && s.fastName == s.slowName {
		pr.Failf("fast and slow are the same model %q", s.fastName)
	}
	if err := pr.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// Name implements Strategy.
func (*Cascade) Name() string { return NameCascade }

// Start implements Strategy.
func (s *Cascade) Start(req *Request, cands []Candidate) Plan {
	var err error
	if s.fast, err = pick(NameCascade, "fast", s.fastName, cands, 0); err != nil {
		return Plan{Err: err}
	}
	def := 1
	if s.slowName == "" && len(cands) > 0 && cands[0].Model != s.fast {
		def = 0
	}
	if s.slow, err = pick(NameCascade, "slow", s.slowName, cands, def); err != nil {
		return Plan{Err: err}
	}
	if s.need <= 0 {
		c, _ := candidate(cands, s.slow)
		s.need = c.Latency.P50
	}
	return Plan{Launches: []Launch{{Model: s.fast}}}
}

// OnEvent implements Strategy.
func (s *Cascade) OnEvent(ev Event, p *Progress) Decision {
	if r, ok := p.ResultOf(s.slow); ok {
		return Answer(r)
	}
	fast, fastOK := p.ResultOf(s.fast)
	useFast := func() Decision {
		d := Answer(fast)
		d.Confidence, _ = Confidence(fast.Output)
		d.Fallback = true
		return d
	}
	if fastOK && p.LaunchedOf(s.slow) == 0 {
		conf, ok := Confidence(fast.Output)
		if ok && conf >= s.threshold {
			d := Answer(fast)
			d.Confidence = conf
			return d
		}
	}
	slowLaunched := p.LaunchedOf(s.slow) > 0
	fastDone := p.PendingOf(s.fast) == 0 && p.LaunchedOf(s.fast) > 0
	switch {
	case ev.Kind == EventDeadline:
		if fastOK {
			return useFast()
		}
		if p.Idle() {
			return failAll(NameCascade, p)
		}
	case !slowLaunched && fastDone:
		if p.Remaining() > 0 && p.Remaining() >= s.need {
			return Decision{Launch: []Launch{{Model: s.slow}}}
		}
		if fastOK {
			return useFast()
		}
		return failAll(NameCascade, p)
	case slowLaunched && p.PendingOf(s.slow) == 0:
		if fastOK {
			return useFast()
		}
		return failAll(NameCascade, p)
	}
	return Wait()
}

var _ Strategy = (*Cascade)(nil)
