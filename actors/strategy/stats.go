package strategy

import (
	"sort"
	"sync"

	"github.com/manta-ml/manta/api"
)

// Stats counts, per strategy, what happened to speculative requests. It is
// safe for concurrent use: one Stats is shared by every collector of a member
// (or by the lab).
type Stats struct {
	mu sync.Mutex
	by map[string]*StrategyStats
}

// StrategyStats are the counters of one strategy.
type StrategyStats struct {
	Strategy string `json:"strategy"`
	// Requests answered, and of them: Errors (any error), DeadlineExceeded
	// (no answer by the deadline), Fallbacks (answered by a fallback path).
	Requests         int64 `json:"requests"`
	Errors           int64 `json:"errors"`
	DeadlineExceeded int64 `json:"deadline_exceeded"`
	Fallbacks        int64 `json:"fallbacks"`
	// Calls launched in all, and Hedges among them (second calls of a
	// model already launched).
	Calls  int64 `json:"calls"`
	Hedges int64 `json:"hedges"`
	// Late results dropped (after the answer, or of canceled calls).
	Late int64 `json:"late"`
	// Wins counts, per model, the answers it produced (several models per
	// answer for a vote or an average).
	Wins map[string]int64 `json:"wins"`
	// ErrorCodes counts errors by api code name ("deadline_exceeded", ...).
	ErrorCodes map[string]int64 `json:"error_codes,omitempty"`
}

// NewStats returns empty Stats.
func NewStats() *Stats { return &Stats{by: map[string]*StrategyStats{}} }

func (s *Stats) get(name string) *StrategyStats {
	if s.by == nil {
		s.by = map[string]*StrategyStats{}
	}
	st := s.by[name]
	if st == nil {
		st = &StrategyStats{Strategy: name, Wins: map[string]int64{}, ErrorCodes: map[string]int64{}}
		s.by[name] = st
	}
	return st
}

// Record counts one answered request.
func (s *Stats) Record(r *Response) {
	if r == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(r.Strategy)
	st.Requests++
	st.Calls += int64(r.Calls)
	st.Hedges += int64(r.Hedges)
	if r.Err != nil {
		st.Errors++
		code := api.CodeOf(r.Err).Name()
		st.ErrorCodes[code]++
		if code == "deadline_exceeded" {
			st.DeadlineExceeded++
		}
		return
	}
	if r.Fallback {
		st.Fallbacks++
	}
	for _, m := range r.Models {
		st.Wins[m]++
	}
}

// AddLate counts n late results of strategy.
func (s *Stats) AddLate(strategy string, n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.get(strategy).Late += int64(n)
	s.mu.Unlock()
}

// Get returns a copy of the counters of one strategy (zero when unknown).
func (s *Stats) Get(strategy string) StrategyStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.by[strategy]
	if !ok {
		return StrategyStats{Strategy: strategy, Wins: map[string]int64{}, ErrorCodes: map[string]int64{}}
	}
	return st.clone()
}

// Snapshot returns a copy of every strategy's counters, sorted by name.
func (s *Stats) Snapshot() []StrategyStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StrategyStats, 0, len(s.by))
	for _, st := range s.by {
		out = append(out, st.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Strategy < out[j].Strategy })
	return out
}

func (st *StrategyStats) clone() StrategyStats {
	c := *st
	c.Wins = make(map[string]int64, len(st.Wins))
	for k, v := range st.Wins {
		c.Wins[k] = v
	}
	c.ErrorCodes = make(map[string]int64, len(st.ErrorCodes))
	for k, v := range st.ErrorCodes {
		c.ErrorCodes[k] = v
	}
	return c
}
