package placement

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Member is what placement knows of one member, usually from gossip.
type Member struct {
	ID string `json:"id"`
	// Budget is the member's model-memory budget in bytes (> 0 to host).
	Budget int64 `json:"budget"`
	// Active is the bytes of the models activated (pinned) on the member,
	// plus what it has promised to activations still loading. Warm models
	// that are loaded but unpinned do not count: the cache evicts them for
	// a new load, so they are room, not load.
	Active int64 `json:"active"`
	// Models is the number of activations.
	Models int `json:"models"`
	// Rate is the member's request rate (requests/s, an EWMA).
	Rate float64 `json:"rate"`
}

// Room is what a new model may take on m: the budget less the active bytes.
func (m Member) Room() int64 { return max(m.Budget-m.Active, 0) }

// Weights weigh the three parts of a member's load in Choose's score. Each
// part is normalised (1 = the cluster's mean), so equal weights mean equal
// say. Zero weights leave a part out; all zero places by memory.
type Weights struct {
	// Memory weighs active bytes over budget, after adding the model.
	Memory float64 `json:"memory" yaml:"memory"`
	// Volume weighs the member's share of the request rate.
	Volume float64 `json:"volume" yaml:"volume"`
	// Models weighs the number of activations.
	Models float64 `json:"models" yaml:"models"`
}

// DefaultWeights: memory and volume count equally, the model count a
// quarter (it breaks ties between members with the same bytes and rate).
func DefaultWeights() Weights { return Weights{Memory: 1, Volume: 1, Models: 0.25} }

// Model is what is being placed.
type Model struct {
	Identity string `json:"identity"`
	// Bytes is the model's memory estimate.
	Bytes int64 `json:"bytes"`
	// Rate is the model's measured request rate; ignored when Cold.
	Rate float64 `json:"rate"`
	// Cold marks a model with no volume history: placed by memory alone.
	Cold bool `json:"cold"`
	// Avoid lists member IDs to avoid when another member can take the
	// model (the members hosting other replicas of it).
	Avoid []string `json:"avoid,omitempty"`
}

// NoRoomError says no member can fit a model: it needs Need bytes and the
// largest room is Largest, on member Member ("" when there is no member).
type NoRoomError struct {
	Identity string
	Need     int64
	Largest  int64
	Member   string
}

func (e *NoRoomError) Error() string {
	if e.Member == "" {
		return fmt.Sprintf("placement: %s needs %d bytes and no member hosts models", e.Identity, e.Need)
	}
	return fmt.Sprintf("placement: %s needs %d bytes; the largest free model memory is %d bytes on %s",
		e.Identity, e.Need, e.Largest, e.Member)
}

// totals are the sums Score normalises by.
type totals struct {
	active, budget int64
	rate           float64
	models         int
	n              int
}

func sum(members []Member) totals {
	var t totals
	for _, m := range members {
		if m.Budget <= 0 {
			continue
		}
		t.active += m.Active
		t.budget += m.Budget
		t.rate += m.Rate
		t.models += m.Models
		t.n++
	}
	return t
}

// load is member m's weighted, normalised load after adding model x
// (lower is better). The normalisation includes x, so the figures are
// comparable across candidates.
func load(m Member, x Model, t totals, w Weights) float64 {
	if t.n == 0 || m.Budget <= 0 {
		return math.Inf(1)
	}
	memMean := float64(t.active+x.Bytes) / float64(t.budget)
	mem := float64(m.Active+x.Bytes) / float64(m.Budget)
	if memMean > 0 {
		mem /= memMean
	}
	if x.Cold || (w.Volume == 0 && w.Models == 0) {
		return mem
	}
	var vol, cnt float64
	if r := t.rate + x.Rate; r > 0 {
		vol = (m.Rate + x.Rate) / (r / float64(t.n))
	}
	cnt = float64(m.Models+1) / (float64(t.models+1) / float64(t.n))
	return w.Memory*mem + w.Volume*vol + w.Models*cnt
}

// Score is the score of placing x on members[i]: the negated load after
// placing it (higher is better). It does not check that x fits.
func Score(members []Member, i int, x Model, w Weights) float64 {
	return -load(members[i], x, sum(members), w)
}

// SampleSize is how many candidates Choose compares among n feasible
// members: ⌈√n⌉, at least 2 (all of them when n ≤ 2).
func SampleSize(n int) int {
	k := int(math.Ceil(math.Sqrt(float64(n))))
	return min(max(k, 2), n)
}

// Choose picks the member to activate x on: among the members whose Room
// fits x.Bytes (preferring those not in x.Avoid), it samples sample
// candidates at random (sample ≤ 0: SampleSize) and returns the index of
// the one with the best Score. When none fits it returns a *NoRoomError.
// rng may be nil for a fixed choice (the best of all feasible members).
func Choose(members []Member, x Model, w Weights, sample int, rng *rand.Rand) (int, error) {
	feasible := make([]int, 0, len(members))
	var avoided []int
	largest, at := int64(-1), -1
	for i, m := range members {
		if m.Budget <= 0 {
			continue
		}
		if r := m.Room(); r > largest {
			largest, at = r, i
		}
		if x.Bytes > m.Room() {
			continue
		}
		if contains(x.Avoid, m.ID) {
			avoided = append(avoided, i)
			continue
		}
		feasible = append(feasible, i)
	}
	if len(feasible) == 0 {
		feasible = avoided
	}
	if len(feasible) == 0 {
		e := &NoRoomError{Identity: x.Identity, Need: x.Bytes}
		if at >= 0 {
			e.Largest, e.Member = largest, members[at].ID
		}
		return -1, e
	}
	cands := feasible
	if rng != nil {
		k := sample
		if k <= 0 {
			k = SampleSize(len(feasible))
		}
		if k < len(feasible) {
			cands = append([]int(nil), feasible...)
			for j := 0; j < k; j++ { // partial Fisher-Yates
				r := j + rng.IntN(len(cands)-j)
				cands[j], cands[r] = cands[r], cands[j]
			}
			cands = cands[:k]
		}
	}
	t := sum(members)
	best, bestLoad := -1, math.Inf(1)
	for _, i := range cands {
		l := load(members[i], x, t, w)
		// Ties: the first sampled (random), or the lowest ID when not sampling.
		if best < 0 || l < bestLoad || (l == bestLoad && rng == nil && members[i].ID < members[best].ID) {
			best, bestLoad = i, l
		}
	}
	return best, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
