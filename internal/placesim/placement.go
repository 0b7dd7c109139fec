package placesim

import (
	"math"
	"sort"

	"github.com/manta-ml/manta/cluster/placement"
)

// Strategy names, in the order of the report.
const (
	Rendezvous  = "rendezvous"
	Knapsack    = "knapsack"
	MantaCold   = "manta (placement only)"
	MantaFull   = "manta (+ rebalancer)"
	phaseSteady = "steady"
	phaseDrift  = "after drift"
)

// PlacementRow is one strategy at the end of one phase.
type PlacementRow struct {
	Strategy string `json:"strategy"`
	Phase    string `json:"phase"`
	// VolumeMaxMean and MemoryMaxMean are max/mean per-member request
	// volume (true volumes) and memory utilisation.
	VolumeMaxMean float64 `json:"volume_max_mean"`
	MemoryMaxMean float64 `json:"memory_max_mean"`
	// Moves (and MovedBytes) during the phase: models that changed member.
	Moves      int   `json:"moves"`
	MovedBytes int64 `json:"moved_bytes"`
	// Unplaced is the fraction of models that could not be placed.
	Unplaced float64 `json:"unplaced"`
}

// PlacementReport is the placement simulation's result.
type PlacementReport struct {
	Config Config         `json:"config"`
	Rows   []PlacementRow `json:"rows"`
	// TotalBytes is the models' total size; Budget each member's.
	TotalBytes int64 `json:"total_bytes"`
	Budget     int64 `json:"budget"`
	// TopShare is the most popular model's share of all requests.
	TopShare float64 `json:"top_share"`
}

// Row returns the row of strategy and phase (zero if absent).
func (r *PlacementReport) Row(strategy, phase string) PlacementRow {
	for _, row := range r.Rows {
		if row.Strategy == strategy && row.Phase == phase {
			return row
		}
	}
	return PlacementRow{}
}

// assignment maps model index -> member index (-1: unplaced).
type assignment []int

func (a assignment) members(w *workload, rates []float64) []placement.Member {
	ms := make([]placement.Member, len(w.members))
	for i := range ms {
		ms[i] = placement.Member{ID: w.members[i], Budget: w.budgets[i]}
	}
	for i, m := range a {
		if m < 0 {
			continue
		}
		ms[m].Active += w.sizes[i]
		ms[m].Models++
		ms[m].Rate += rates[i]
	}
	return ms
}

func (a assignment) row(w *workload, strategy, phase string, moves int, moved int64) PlacementRow {
	b := placement.Balance(a.members(w, w.vol))
	un := 0
	for _, m := range a {
		if m < 0 {
			un++
		}
	}
	return PlacementRow{Strategy: strategy, Phase: phase, VolumeMaxMean: b.Volume, MemoryMaxMean: b.Memory,
		Moves: moves, MovedBytes: moved, Unplaced: float64(un) / float64(len(a))}
}

func diff(w *workload, from, to assignment) (int, int64) {
	n, bytes := 0, int64(0)
	for i := range from {
		if from[i] >= 0 && to[i] >= 0 && from[i] != to[i] {
			n++
			bytes += w.sizes[i]
		}
	}
	return n, bytes
}

// SimulatePlacement runs the three strategies on the same workload and
// measurements and reports each at the end of both phases.
func SimulatePlacement(c Config) (*PlacementReport, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	w := newWorkload(c)
	rep := &PlacementReport{Config: c, TotalBytes: w.total, Budget: w.budgets[0]}
	for _, v := range w.vol {
		rep.TopShare = math.Max(rep.TopShare, v)
	}

	rdv := rendezvousPlace(w)
	know := knapsackPlace(w, nil, nil)
	manta := newMantaSim(c, w)
	manta.placeAll()
	rep.Rows = append(rep.Rows, manta.assign.row(w, MantaCold, "initial", 0, 0))

	noise := newRand(c.Seed, 4)
	var est []float64
	type acc struct {
		moves int
		bytes int64
	}
	kn, mt := acc{}, acc{}
	half := c.Cycles / 2
	for cycle := 0; cycle < c.Cycles; cycle++ {
		if cycle == half {
			phase := phaseSteady
			rep.Rows = append(rep.Rows,
				rdv.row(w, Rendezvous, phase, 0, 0),
				know.row(w, Knapsack, phase, kn.moves, kn.bytes),
				manta.assign.row(w, MantaFull, phase, mt.moves, mt.bytes))
			kn, mt = acc{}, acc{}
			w.drift(newRand(c.Seed, 5), c.DriftHot)
		}
		est = w.measure(noise, c.WindowRequests, est)
		next := knapsackPlace(w, est, know)
		n, b := diff(w, know, next)
		kn.moves, kn.bytes, know = kn.moves+n, kn.bytes+b, next
		n, b = manta.cycle(est)
		mt.moves, mt.bytes = mt.moves+n, mt.bytes+b
	}
	rep.Rows = append(rep.Rows,
		rdv.row(w, Rendezvous, phaseDrift, 0, 0),
		know.row(w, Knapsack, phaseDrift, kn.moves, kn.bytes),
		manta.assign.row(w, MantaFull, phaseDrift, mt.moves, mt.bytes))
	sort.SliceStable(rep.Rows, func(i, j int) bool { return order(rep.Rows[i].Strategy) < order(rep.Rows[j].Strategy) })
	return rep, nil
}

func order(s string) int {
	switch s {
	case Rendezvous:
		return 0
	case Knapsack:
		return 1
	case MantaCold:
		return 2
	}
	return 3
}

// rendezvousPlace is disthash: the identity's rendezvous owner hosts it,
// in arrival order, if it still fits.
func rendezvousPlace(w *workload) assignment {
	a := make(assignment, len(w.ids))
	used := make([]int64, len(w.members))
	idx := map[string]int{}
	for i, m := range w.members {
		idx[m] = i
	}
	for _, i := range w.arrival {
		m := idx[placement.Owner(w.ids[i], w.members)]
		if used[m]+w.sizes[i] > w.budgets[m] {
			a[i] = -1
			continue
		}
		used[m] += w.sizes[i]
		a[i] = m
	}
	return a
}

// knapsackPlace is the seed's periodic mapping, from scratch: each model
// weighs max(1, its measured volume) (est nil: 1, nothing measured yet)
// and its bytes; models go, heaviest first, to the member whose larger
// normalised load after adding them is lowest, within its budget.
func knapsackPlace(w *workload, est []float64, _ assignment) assignment {
	n, members := len(w.ids), len(w.members)
	weight := make([]float64, n)
	var wsum float64
	for i := range weight {
		weight[i] = 1
		if est != nil {
			weight[i] = math.Max(1, est[i])
		}
		wsum += weight[i]
	}
	var bsum int64
	for _, b := range w.budgets {
		bsum += b
	}
	wcap := wsum / float64(members)
	bcap := float64(bsum) / float64(members)
	key := make([]float64, n)
	order := make([]int, n)
	for i := range order {
		order[i] = i
		key[i] = math.Max(weight[i]/wcap, float64(w.sizes[i])/bcap)
	}
	sort.Slice(order, func(a, b int) bool {
		if key[order[a]] != key[order[b]] {
			return key[order[a]] > key[order[b]]
		}
		return order[a] < order[b]
	})
	a := make(assignment, n)
	loadW := make([]float64, members)
	used := make([]int64, members)
	for _, i := range order {
		best, bestMax, bestSum := -1, math.Inf(1), math.Inf(1)
		for m := 0; m < members; m++ {
			if used[m]+w.sizes[i] > w.budgets[m] {
				continue
			}
			lw := (loadW[m] + weight[i]) / wcap
			lb := float64(used[m]+w.sizes[i]) / float64(w.budgets[m])
			mx, sm := math.Max(lw, lb), lw+lb
			if mx < bestMax || (mx == bestMax && sm < bestSum) {
				best, bestMax, bestSum = m, mx, sm
			}
		}
		a[i] = best
		if best >= 0 {
			loadW[best] += weight[i]
			used[best] += w.sizes[i]
		}
	}
	return a
}
