package placesim

import (
	"fmt"
	"math/rand/v2"

	"github.com/manta-ml/manta/cluster/placement"
)

// mantaSim runs cluster/placement's Choose and Plan the way the cluster
// does: each model's directory (its rendezvous owner) places it from its
// own view, which is the last gossip round plus its own placements since;
// the chosen member admits the model only if it really fits (else the
// directory refreshes that member and chooses again).
type mantaSim struct {
	c      Config
	w      *workload
	rng    *rand.Rand
	assign assignment
	real   []placement.Member
	views  [][]placement.Member // per directory
	dir    []int                // model -> directory member
	plan   *placement.Planner
	est    []float64
	placed int
}

func newMantaSim(c Config, w *workload) *mantaSim {
	s := &mantaSim{c: c, w: w, rng: newRand(c.Seed, 6)}
	s.assign = newAssignment(len(w.ids))
	cfg := placement.DefaultPlanConfig()
	cfg.MaxMoves, cfg.CoolDown = c.MaxMoves, c.CoolDown
	s.plan = placement.NewPlanner(cfg)
	s.dir = make([]int, len(w.ids))
	idx := map[string]int{}
	for i, m := range w.members {
		idx[m] = i
	}
	for i := range s.dir {
		s.dir[i] = idx[placement.Owner(w.ids[i], w.members)]
	}
	s.real = s.assign.members(w, make([]float64, len(w.ids)))
	s.gossip()
	return s
}

// gossip gives every directory the true state.
func (s *mantaSim) gossip() {
	s.views = make([][]placement.Member, len(s.w.members))
	for d := range s.views {
		s.views[d] = append([]placement.Member(nil), s.real...)
	}
}

// place activates model i (cold unless its volume has been measured).
func (s *mantaSim) place(i int) {
	view := s.views[s.dir[i]]
	x := placement.Model{Identity: s.w.ids[i], Bytes: s.w.sizes[i], Cold: s.est == nil}
	if s.est != nil {
		x.Rate = s.est[i]
	}
	for tries := 0; tries < len(view); tries++ {
		m, err := placement.Choose(view, x, placement.DefaultWeights(), 0, s.rng)
		if err != nil {
			s.assign.at[i] = -1
			return
		}
		if s.real[m].Active+x.Bytes > s.real[m].Budget {
			view[m] = s.real[m] // refused: the directory learns the truth
			continue
		}
		s.assign.at[i] = m
		for _, v := range [][]placement.Member{s.real, view} {
			v[m].Active += x.Bytes
			v[m].Models++
			v[m].Rate += x.Rate
		}
		s.placed++
		if s.placed%s.c.Staleness == 0 {
			s.gossip()
		}
		return
	}
	s.assign.at[i] = -1
}

func (s *mantaSim) placeAll() {
	for _, i := range s.w.arrival {
		s.place(i)
	}
}

// cycle is one leader round on measured volumes est, in the live
// leader's order (cluster/rebalance.go): replicas first, then the plan.
// table is this cycle's replica table (adjustReplicas) and hot the volume
// one activation is meant to serve. Both steps work from the loads as
// they were before this cycle's replica changes, as the live leader's
// gossiped view is. It returns the moves made and their bytes.
func (s *mantaSim) cycle(est []float64, table []int, hot float64) (int, int64) {
	s.est = est
	s.real = s.assign.members(s.w, est)
	s.gossip()
	for _, i := range s.w.arrival { // unplaced models are retried by their next request
		if s.assign.at[i] < 0 {
			s.place(i)
		}
	}
	// The plan's items: every activation; a replicated model stays put
	// (its replicas spread it), as in the live plan.
	type ref struct{ model, copy int }
	var items []placement.Item
	var refs []ref
	for i, m := range s.assign.at {
		if m < 0 {
			continue
		}
		rep := s.assign.rep[i]
		rate := est[i] / float64(1+len(rep))
		items = append(items, placement.Item{Identity: s.w.ids[i], Member: m, Bytes: s.w.sizes[i], Rate: rate, Frozen: table[i] > 0})
		refs = append(refs, ref{i, 0})
		for j, x := range rep {
			items = append(items, placement.Item{Identity: fmt.Sprintf("%s@%d", s.w.ids[i], j+1), Member: x, Bytes: s.w.sizes[i], Rate: rate, Frozen: true})
			refs = append(refs, ref{i, j + 1})
		}
	}
	view := s.assign.members(s.w, est)
	s.replicas(table, hot, append([]placement.Member(nil), view...))
	moves := s.plan.Cycle(view, items)
	byID := make(map[string]int, len(items))
	for k, it := range items {
		byID[it.Identity] = k
	}
	var bytes int64
	for _, mv := range moves {
		r := refs[byID[mv.Identity]]
		if r.copy != 0 || s.assign.hosts(r.model, mv.To) {
			continue // frozen items never move; kept for safety
		}
		s.assign.at[r.model] = mv.To
		bytes += mv.Bytes
	}
	return len(moves), bytes
}

// replicas brings each model's replicas to table: the extra ones go (the
// highest first), the missing ones are placed the way the live leader
// places them: placement.Choose over every member (no sampling) on the
// loads before this cycle, the new replica counted at hot, avoiding the
// members hosting another copy of the model. A replica that only fits on
// such a member is not placed (two copies on one member spread nothing)
// and is tried again next cycle.
func (s *mantaSim) replicas(table []int, hot float64, members []placement.Member) {
	for i, k := range table {
		if s.assign.at[i] < 0 {
			continue
		}
		if len(s.assign.rep[i]) > k {
			s.assign.rep[i] = s.assign.rep[i][:k]
			if k == 0 {
				delete(s.assign.rep, i)
			}
		}
	}
	for i, k := range table {
		if s.assign.at[i] < 0 || len(s.assign.rep[i]) >= k {
			continue
		}
		for j := len(s.assign.rep[i]) + 1; j <= k; j++ {
			avoid := []string{s.w.members[s.assign.at[i]]}
			for _, x := range s.assign.rep[i] {
				avoid = append(avoid, s.w.members[x])
			}
			x := placement.Model{Identity: fmt.Sprintf("%s@%d", s.w.ids[i], j), Bytes: s.w.sizes[i], Rate: hot, Avoid: avoid}
			m, err := placement.Choose(members, x, placement.DefaultWeights(), 0, nil)
			if err != nil || s.assign.hosts(i, m) {
				break
			}
			s.assign.rep[i] = append(s.assign.rep[i], m)
			members[m].Active += x.Bytes
			members[m].Rate += x.Rate
			members[m].Models++
		}
	}
}
