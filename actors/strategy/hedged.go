package strategy

import (
	"time"
)

// Hedged calls one model and, if it has not answered after a delay (by
// default the model's live p95), sends a backup request ("The Tail at
// Scale"): the first success wins and the rest are canceled. A failed call
// is retried at once while hedges remain.
//
// Backups go to the candidates in turn, starting after the primary, so that
// replicas ("id@1", "id@2") share them; with one candidate every backup goes
// to the same model.
//
// Params:
//   - model: the primary model (default: the first candidate); when set,
//     backups go to it alone;
//   - delay: a fixed hedging delay, overriding the percentile;
//   - at: which live percentile is the delay: p50, p95 (default) or p99;
//     with no live stats, half the time to the deadline;
//   - max: how many backups at most (default 1).
type Hedged struct {
	modelName string
	delay     time.Duration
	at        string
	max       int

	targets []string
	next    int
	hedges  int
	wait    time.Duration
}

// NewHedged is the factory of "hedged".
func NewHedged(params map[string]string) (Strategy, error) {
	pr := ReadParams(params)
	s := &Hedged{
		modelName: pr.String("model", ""),
		delay:     pr.Duration("delay", 0),
		at:        pr.String("at", "p95"),
		max:       pr.Int("max", 1),
	}
	switch s.at {
	case "p50", "p95", "p99":
	default:
		pr.Failf("at=%q: want p50, p95 or p99", s.at)
	}
	if err := pr.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// Name implements Strategy.
func (*Hedged) Name() string { return NameHedged }

// Start implements Strategy.
func (s *Hedged) Start(req *Request, cands []Candidate) Plan {
	primary, err := pick(NameHedged, "model", s.modelName, cands, 0)
	if err != nil {
		return Plan{Err: err}
	}
	s.targets = []string{primary}
	if s.modelName == "" {
		for _, c := range cands {
			if c.Model != primary {
				s.targets = append(s.targets, c.Model)
			}
		}
	}
	c, _ := candidate(cands, primary)
	s.wait = s.delay
	if s.wait <= 0 {
		switch s.at {
		case "p50":
			s.wait = c.Latency.P50
		case "p99":
			s.wait = c.Latency.P99
		default:
			s.wait = c.Latency.P95
		}
		if c.Latency.Count == 0 || s.wait <= 0 {
			s.wait = req.Deadline.Sub(req.Now) / 2
		}
	}
	plan := Plan{Launches: []Launch{{Model: primary}}}
	if s.max > 0 && s.wait > 0 {
		plan.WakeAt = req.Now.Add(s.wait)
	}
	return plan
}

func (s *Hedged) backup() Launch {
	s.hedges++
	s.next++
	return Launch{Model: s.targets[s.next%len(s.targets)]}
}

// OnEvent implements Strategy.
func (s *Hedged) OnEvent(ev Event, p *Progress) Decision {
	switch ev.Kind {
	case EventResult:
		if ev.Result.OK() {
			return Answer(ev.Result)
		}
		if s.hedges < s.max && p.Remaining() > 0 {
			return Decision{Launch: []Launch{s.backup()}}
		}
		if p.Idle() {
			return failAll(NameHedged, p)
		}
	case EventTimer:
		if s.hedges < s.max && p.Remaining() > 0 {
			d := Decision{Launch: []Launch{s.backup()}}
			if s.hedges < s.max {
				d.WakeAt = ev.Now.Add(s.wait)
			}
			return d
		}
	case EventDeadline:
		if p.Idle() && len(p.Results) > 0 {
			return failAll(NameHedged, p)
		}
	}
	return Wait()
}

func candidate(cands []Candidate, model string) (Candidate, bool) {
	for _, c := range cands {
		if c.Model == model {
			return c, true
		}
	}
	return Candidate{}, false
}

var _ Strategy = (*Hedged)(nil)
