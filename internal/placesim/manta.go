package placesim

import (
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
	s.assign = make(assignment, len(w.ids))
	cfg := placement.DefaultPlanConfig()
	cfg.MaxMoves, cfg.CoolDown = c.MaxMoves, c.CoolDown
	s.plan = placement.NewPlanner(cfg)
	s.dir = make([]int, len(w.ids))
	idx := map[string]int{}
	for i, m := range w.members {
		idx[m] = i
	}
	for i := range s.assign {
		s.assign[i] = -1
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
			s.assign[i] = -1
			return
		}
		if s.real[m].Active+x.Bytes > s.real[m].Budget {
			view[m] = s.real[m] // refused: the directory learns the truth
			continue
		}
		s.assign[i] = m
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
	s.assign[i] = -1
}

func (s *mantaSim) placeAll() {
	for _, i := range s.w.arrival {
		s.place(i)
	}
}

// cycle is one rebalancer round on measured volumes est; it returns the
// moves made.
func (s *mantaSim) cycle(est []float64) (int, int64) {
	s.est = est
	s.real = s.assign.members(s.w, est)
	s.gossip()
	for _, i := range s.w.arrival { // unplaced models are retried by their next request
		if s.assign[i] < 0 {
			s.place(i)
		}
	}
	items := make([]placement.Item, 0, len(s.assign))
	for i, m := range s.assign {
		if m < 0 {
			continue
		}
		items = append(items, placement.Item{Identity: s.w.ids[i], Member: m, Bytes: s.w.sizes[i], Rate: est[i]})
	}
	moves := s.plan.Cycle(s.assign.members(s.w, est), items)
	idx := map[string]int{}
	for i, id := range s.w.ids {
		idx[id] = i
	}
	var bytes int64
	for _, mv := range moves {
		i := idx[mv.Identity]
		s.assign[i] = mv.To
		bytes += mv.Bytes
	}
	return len(moves), bytes
}
