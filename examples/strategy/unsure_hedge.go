package main

import (
	"time"

	"github.com/manta-ml/manta/actors/strategy"
)

// UnsureHedge is a researcher's strategy in one file: "hedge only when the
// fast model is unsure".
//
// It calls the fast model first. A confident fast answer (confidence >=
// threshold) is the answer. Otherwise (unsure, or failed) it calls the smart
// model, and since the smart model is heavy-tailed, it hedges it: a backup
// call if it has not answered after its p95 (or delay=), up to max backups.
// The first smart success wins; at the deadline, or if the smart calls fail,
// the fast answer is the fallback. So the extra calls of hedging are spent
// only on the hard requests, where the slow model's tail would otherwise hit
// the deadline.
//
// Params: fast, smart (default: the first and second candidates), threshold
// (default 0.8), delay (default the smart model's live p95), max (default 1).
type UnsureHedge struct {
	fastName, smartName string
	threshold           float64
	delay               time.Duration
	max                 int

	fast, smart string
	wait        time.Duration
	hedges      int
}

// NewUnsureHedge is the factory registered as "unsure-hedge".
func NewUnsureHedge(params map[string]string) (strategy.Strategy, error) {
	pr := strategy.ReadParams(params)
	s := &UnsureHedge{
		fastName:  pr.String("fast", ""),
		smartName: pr.String("smart", ""),
		threshold: pr.Float("threshold", 0.8),
		delay:     pr.Duration("delay", 0),
		max:       pr.Int("max", 1),
	}
	if err := pr.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

func init() { strategy.RegisterStrategy("unsure-hedge", NewUnsureHedge) }

// Name implements strategy.Strategy.
func (*UnsureHedge) Name() string { return "unsure-hedge" }

// Start implements strategy.Strategy.
func (s *UnsureHedge) Start(req *strategy.Request, cands []strategy.Candidate) strategy.Plan {
	s.fast, s.smart = s.fastName, s.smartName
	if s.fast == "" && len(cands) > 0 {
		s.fast = cands[0].Model
	}
	if s.smart == "" {
		for _, c := range cands {
			if c.Model != s.fast {
				s.smart = c.Model
				break
			}
		}
	}
	if s.smart == "" {
		s.smart = s.fast // one candidate: it hedges itself
	}
	s.wait = s.delay
	for _, c := range cands {
		if c.Model == s.smart && s.wait <= 0 {
			s.wait = c.Latency.P95
		}
	}
	if s.wait <= 0 {
		s.wait = req.Deadline.Sub(req.Now) / 3
	}
	return strategy.Plan{Launches: []strategy.Launch{{Model: s.fast}}}
}

// OnEvent implements strategy.Strategy.
func (s *UnsureHedge) OnEvent(ev strategy.Event, p *strategy.Progress) strategy.Decision {
	fastRes, fastOK := p.ResultOf(s.fast)
	smartCalled := p.LaunchedOf(s.smart) > 0 && s.smart != s.fast
	if s.smart == s.fast {
		smartCalled = p.LaunchedOf(s.fast) > 1
	}
	if smartCalled && ev.Kind == strategy.EventResult && ev.Result.Model == s.smart && ev.Result.OK() {
		return strategy.Answer(ev.Result)
	}
	fallback := func() strategy.Decision {
		if !fastOK {
			if err := p.LastError(); err != nil {
				return strategy.Fail(err)
			}
			return strategy.Wait()
		}
		d := strategy.Answer(fastRes)
		d.Confidence, _ = strategy.Confidence(fastRes.Output)
		d.Fallback = true
		return d
	}
	switch ev.Kind {
	case strategy.EventDeadline:
		return fallback()
	case strategy.EventTimer:
		if smartCalled && p.PendingOf(s.smart) > 0 && s.hedges < s.max {
			s.hedges++
			return strategy.Decision{Launch: []strategy.Launch{{Model: s.smart}}, WakeAt: ev.Now.Add(s.wait)}
		}
	case strategy.EventResult:
		if !smartCalled {
			// The fast model answered (or failed): confident is enough.
			if conf, ok := strategy.Confidence(fastRes.Output); fastOK && ok && conf >= s.threshold {
				d := strategy.Answer(fastRes)
				d.Confidence = conf
				return d
			}
			if p.Remaining() == 0 {
				return fallback()
			}
			return strategy.Decision{Launch: []strategy.Launch{{Model: s.smart}}, WakeAt: ev.Now.Add(s.wait)}
		}
		// A smart call failed: retry while backups remain.
		if p.PendingOf(s.smart) == 0 {
			if s.hedges < s.max && p.Remaining() > 0 {
				s.hedges++
				return strategy.Decision{Launch: []strategy.Launch{{Model: s.smart}}}
			}
			return fallback()
		}
	}
	return strategy.Wait()
}

var _ strategy.Strategy = (*UnsureHedge)(nil)
