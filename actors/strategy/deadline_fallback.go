package strategy

import (
	"fmt"
	"time"

	"github.com/manta-ml/manta/api"
)

// DeadlineFallback serves a smart (slow, better) model with a fast fallback:
// the smart model's answer if it comes by the deadline, else the fast one's
// (marked Fallback).
//
// Params:
//   - smart: the smart model (default: the first candidate);
//   - fast: the fallback model (default: the second candidate);
//   - fallback_at: when to launch the fast model (default 0: with the smart
//     one). Later saves calls when the smart model is usually in time; the
//     fast model is launched at once if the smart one fails first.
type DeadlineFallback struct {
	smartName, fastName string
	fallbackAt          time.Duration

	smart, fast string
}

// NewDeadlineFallback is the factory of "deadline-fallback".
func NewDeadlineFallback(params map[string]string) (Strategy, error) {
	pr := ReadParams(params)
	s := &DeadlineFallback{
		smartName:  pr.String("smart", ""),
		fastName:   pr.String("fast", ""),
		fallbackAt: pr.Duration("fallback_at", 0),
	}
	if s.smartName != "" && s.smartName == s.fastName {
		pr.Failf("smart and fast are the same model %q", s.smartName)
	}
	if err := pr.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// Name implements Strategy.
func (*DeadlineFallback) Name() string { return NameDeadlineFallback }

// Start implements Strategy.
func (s *DeadlineFallback) Start(req *Request, cands []Candidate) Plan {
	var err error
	if s.smart, err = pick(NameDeadlineFallback, "smart", s.smartName, cands, 0); err != nil {
		return Plan{Err: err}
	}
	def := 1
	if s.fastName == "" && len(cands) > 0 && cands[0].Model != s.smart {
		def = 0 // smart= named the second candidate: the first is the fast one
	}
	if s.fast, err = pick(NameDeadlineFallback, "fast", s.fastName, cands, def); err != nil {
		return Plan{Err: err}
	}
	if s.fast == s.smart {
		return Plan{Err: fmt.Errorf("%w: %s: smart and fast are the same model %q", api.ErrBadInput, NameDeadlineFallback, s.smart)}
	}
	return Plan{Launches: []Launch{{Model: s.smart}, {Model: s.fast, After: s.fallbackAt}}}
}

// OnEvent implements Strategy.
func (s *DeadlineFallback) OnEvent(ev Event, p *Progress) Decision {
	if r, ok := p.ResultOf(s.smart); ok {
		return Answer(r)
	}
	smartFailed := p.LaunchedOf(s.smart) > 0 && p.PendingOf(s.smart) == 0
	fast, fastOK := p.ResultOf(s.fast)
	switch {
	case fastOK && (smartFailed || ev.Kind == EventDeadline):
		d := Answer(fast)
		d.Fallback = true
		return d
	case smartFailed && p.LaunchedOf(s.fast) == 0:
		// The smart model failed before the fallback was due: call it now.
		return Decision{Cancel: []string{s.fast}, Launch: []Launch{{Model: s.fast}}}
	case p.Idle():
		return failAll(NameDeadlineFallback, p)
	}
	return Wait()
}

var _ Strategy = (*DeadlineFallback)(nil)
