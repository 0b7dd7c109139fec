package placesim

import (
	"math"
	"slices"
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
	// Replicas is the replicas placed (activations beyond each model's
	// first; each takes its model's bytes and an even share of its
	// volume); TopCopies is the activations of the most popular model.
	Replicas  int `json:"replicas"`
	TopCopies int `json:"top_copies"`
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

// assignment is one strategy's placement: at maps a model to the member
// of its primary activation (-1: unplaced), rep to the members of its
// replicas id@1..id@k in order (no two copies of a model on one member).
// A model's volume is split evenly over its copies, as Lookup.Route
// spreads requests over them.
type assignment struct {
	at  []int
	rep map[int][]int
}

func newAssignment(n int) assignment {
	a := assignment{at: make([]int, n), rep: map[int][]int{}}
	for i := range a.at {
		a.at[i] = -1
	}
	return a
}

// copies is how many activations model i has (0 when unplaced).
func (a assignment) copies(i int) int {
	if a.at[i] < 0 {
		return 0
	}
	return 1 + len(a.rep[i])
}

// hosts reports whether member m holds a copy of model i.
func (a assignment) hosts(i, m int) bool {
	return a.at[i] == m || slices.Contains(a.rep[i], m)
}

// replicas is the number of replicas placed (copies beyond the first).
func (a assignment) replicas() int {
	n := 0
	for i, r := range a.rep {
		if a.at[i] >= 0 {
			n += len(r)
		}
	}
	return n
}

// members is the members' loads: each copy of a model takes its bytes and
// an even share of rates[i].
func (a assignment) members(w *workload, rates []float64) []placement.Member {
	ms := make([]placement.Member, len(w.members))
	for i := range ms {
		ms[i] = placement.Member{ID: w.members[i], Budget: w.budgets[i]}
	}
	add := func(m, i int, r float64) {
		ms[m].Active += w.sizes[i]
		ms[m].Models++
		ms[m].Rate += r
	}
	for i, m := range a.at {
		if m < 0 {
			continue
		}
		rep := a.rep[i]
		r := rates[i] / float64(1+len(rep))
		add(m, i, r)
		for _, x := range rep {
			add(x, i, r)
		}
	}
	return ms
}

func (a assignment) row(w *workload, strategy, phase string, moves int, moved int64) PlacementRow {
	b := placement.Balance(a.members(w, w.vol))
	un := 0
	for _, m := range a.at {
		if m < 0 {
			un++
		}
	}
	top := 0
	for i, v := range w.vol {
		if v > w.vol[top] {
			top = i
		}
	}
	return PlacementRow{Strategy: strategy, Phase: phase, VolumeMaxMean: b.Volume, MemoryMaxMean: b.Memory,
		Moves: moves, MovedBytes: moved, Unplaced: float64(un) / float64(len(a.at)),
		Replicas: a.replicas(), TopCopies: a.copies(top)}
}

// diff counts the copies (primary, id@1, ...) placed in both from and to
// on different members, and their bytes.
func diff(w *workload, from, to assignment) (int, int64) {
	n, bytes := 0, int64(0)
	count := func(i, a, b int) {
		if a >= 0 && b >= 0 && a != b {
			n++
			bytes += w.sizes[i]
		}
	}
	for i := range from.at {
		count(i, from.at[i], to.at[i])
		if from.at[i] < 0 || to.at[i] < 0 {
			continue
		}
		fr, tr := from.rep[i], to.rep[i]
		for j := 0; j < min(len(fr), len(tr)); j++ {
			count(i, fr[j], tr[j])
		}
	}
	return n, bytes
}

// adjustReplicas is the live leader's replica rule (cluster/rebalance.go,
// adjustReplicas) on the measured volumes est, in the simulator's units:
// one activation is meant to serve hot = c.HotRate × one member's mean
// measured volume; a model measured at r wants min(max(⌈r/hot⌉−1, 0),
// c.MaxReplicas) replicas and gets them at once; it loses one (one a
// cycle) when it has more than it wants and r < 0.6 × hot × its replicas.
// table holds each model's replicas and is updated in place; it returns
// hot (0: replicas are off).
func adjustReplicas(table []int, est []float64, c Config) float64 {
	if c.HotRate < 0 {
		return 0
	}
	var total float64
	for _, r := range est {
		total += r
	}
	hot := c.HotRate * total / float64(c.Members)
	if hot <= 0 {
		return 0
	}
	for i, r := range est {
		k := table[i]
		want := min(max(int(math.Ceil(r/hot))-1, 0), c.MaxReplicas)
		switch {
		case want > k:
			table[i] = want
		case k > want && r < 0.6*hot*float64(k):
			table[i] = k - 1
		}
	}
	return hot
}

// SimulatePlacement runs the three strategies on the same workload and
// measurements and reports each at the end of both phases. Every cycle
// the replica table (adjustReplicas) is decided once from the measured
// volumes and applies to all three: each places the replicas by its own
// rule.
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

	table := make([]int, len(w.ids))
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
				rendezvousPlace(w, table).row(w, Rendezvous, phase, 0, 0),
				know.row(w, Knapsack, phase, kn.moves, kn.bytes),
				manta.assign.row(w, MantaFull, phase, mt.moves, mt.bytes))
			kn, mt = acc{}, acc{}
			w.drift(newRand(c.Seed, 5), c.DriftHot)
		}
		est = w.measure(noise, c.WindowRequests, est)
		hot := adjustReplicas(table, est, c)
		next := knapsackPlace(w, est, table)
		n, b := diff(w, know, next)
		kn.moves, kn.bytes, know = kn.moves+n, kn.bytes+b, next
		n, b = manta.cycle(est, table, hot)
		mt.moves, mt.bytes = mt.moves+n, mt.bytes+b
	}
	rep.Rows = append(rep.Rows,
		rendezvousPlace(w, table).row(w, Rendezvous, phaseDrift, 0, 0),
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
// in arrival order, if it still fits. With replicas (table), they go to
// the next members of the model's rendezvous ranking that have room: the
// usual rendezvous replication, as blind to volume as the primary.
func rendezvousPlace(w *workload, table []int) assignment {
	a := newAssignment(len(w.ids))
	used := make([]int64, len(w.members))
	idx := map[string]int{}
	for i, m := range w.members {
		idx[m] = i
	}
	for _, i := range w.arrival {
		m := idx[placement.Owner(w.ids[i], w.members)]
		if used[m]+w.sizes[i] > w.budgets[m] {
			continue
		}
		used[m] += w.sizes[i]
		a.at[i] = m
	}
	for i, k := range table {
		if k == 0 || a.at[i] < 0 {
			continue
		}
		rank := make([]int, len(w.members))
		for m := range rank {
			rank[m] = m
		}
		// Highest score first; on a tie the first address (placement.Owner).
		sort.SliceStable(rank, func(x, y int) bool {
			return placement.Score32(w.ids[i], w.members[rank[x]]) > placement.Score32(w.ids[i], w.members[rank[y]])
		})
		for _, m := range rank[1:] {
			if len(a.rep[i]) == k {
				break
			}
			if used[m]+w.sizes[i] > w.budgets[m] {
				continue
			}
			used[m] += w.sizes[i]
			a.rep[i] = append(a.rep[i], m)
		}
	}
	return a
}

// knapsackPlace is the seed's periodic mapping, from scratch: each copy
// of a model (table: its replicas) weighs max(1, its measured volume over
// its copies) (est nil: 1, nothing measured yet) and its bytes; copies
// go, heaviest first, to the member whose larger normalised load after
// adding them is lowest, within its budget, never beside another copy of
// the same model.
func knapsackPlace(w *workload, est []float64, table []int) assignment {
	n, members := len(w.ids), len(w.members)
	type item struct{ model, copy int }
	var items []item
	weight := make([]float64, n)
	var wsum float64
	for i := range weight {
		k := 0
		if table != nil {
			k = table[i]
		}
		weight[i] = 1
		if est != nil {
			weight[i] = math.Max(1, est[i]/float64(k+1))
		}
		for j := 0; j <= k; j++ {
			items = append(items, item{i, j})
			wsum += weight[i]
		}
	}
	var bsum int64
	for _, b := range w.budgets {
		bsum += b
	}
	wcap := wsum / float64(members)
	bcap := float64(bsum) / float64(members)
	key := make([]float64, n)
	for i := range key {
		key[i] = math.Max(weight[i]/wcap, float64(w.sizes[i])/bcap)
	}
	sort.Slice(items, func(a, b int) bool {
		x, y := items[a], items[b]
		if key[x.model] != key[y.model] {
			return key[x.model] > key[y.model]
		}
		if x.model != y.model {
			return x.model < y.model
		}
		return x.copy < y.copy
	})
	a := newAssignment(n)
	loadW := make([]float64, members)
	used := make([]int64, members)
	for _, it := range items {
		i := it.model
		if it.copy > 0 && a.at[i] < 0 {
			continue // no primary, no replicas
		}
		best, bestMax, bestSum := -1, math.Inf(1), math.Inf(1)
		for m := 0; m < members; m++ {
			if used[m]+w.sizes[i] > w.budgets[m] || it.copy > 0 && a.hosts(i, m) {
				continue
			}
			lw := (loadW[m] + weight[i]) / wcap
			lb := float64(used[m]+w.sizes[i]) / float64(w.budgets[m])
			mx, sm := math.Max(lw, lb), lw+lb
			if mx < bestMax || (mx == bestMax && sm < bestSum) {
				best, bestMax, bestSum = m, mx, sm
			}
		}
		if best < 0 {
			continue
		}
		if it.copy == 0 {
			a.at[i] = best
		} else {
			a.rep[i] = append(a.rep[i], best)
		}
		loadW[best] += weight[i]
		used[best] += w.sizes[i]
	}
	return a
}
