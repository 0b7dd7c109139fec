package placement

import (
	"math"
	"sort"
)

// Item is one activation the rebalancer may move.
type Item struct {
	Identity string  `json:"identity"`
	Member   int     `json:"member"` // index into the members slice
	Bytes    int64   `json:"bytes"`
	Rate     float64 `json:"rate"`
	// Frozen items stay where they are: moved within the cool-down, in a
	// move already, or pinned there by the operator.
	Frozen bool `json:"frozen,omitempty"`
}

// Move is one step of a plan: activate Identity on To, switch its
// directory entry, then stop it on From (make-before-break).
type Move struct {
	Identity string  `json:"identity"`
	From     int     `json:"from"`
	To       int     `json:"to"`
	Bytes    int64   `json:"bytes"`
	Rate     float64 `json:"rate"`
}

// Ratio is a pair of max/mean ratios.
type Ratio struct {
	Volume float64 `json:"volume" yaml:"volume"`
	Memory float64 `json:"memory" yaml:"memory"`
}

// PlanConfig tunes the rebalancer's plan.
type PlanConfig struct {
	// Trigger: plan only when max/mean volume or memory exceeds it.
	Trigger Ratio `json:"trigger" yaml:"trigger"`
	// Target: once planning, stop when both are at or below it. Target
	// below Trigger is the hysteresis that keeps the cluster from
	// oscillating around one threshold.
	Target Ratio `json:"target" yaml:"target"`
	// MaxMoves bounds the moves of one plan (K).
	MaxMoves int `json:"max_moves" yaml:"max_moves"`
	// MoveCost penalises moving big models: a move must lower the
	// imbalance by more than MoveCost × its bytes over the mean budget.
	MoveCost float64 `json:"move_cost" yaml:"move_cost"`
	// Headroom is the fraction of each member's budget the plan may fill
	// (0.98 keeps 2% for loads in flight).
	Headroom float64 `json:"headroom" yaml:"headroom"`
	// CoolDown is how many cycles a moved model stays where it went
	// (Planner only).
	CoolDown int `json:"cool_down" yaml:"cool_down"`
}

// DefaultPlanConfig engages above 1.08 (volume) or 1.04 (memory) and keeps
// planning, cycle after cycle, until both are within 1.04 and 1.02; it
// moves at most 8 models a cycle, fills budgets to 98% and leaves a moved
// model alone for 5 cycles.
func DefaultPlanConfig() PlanConfig {
	return PlanConfig{
		Trigger:  Ratio{Volume: 1.08, Memory: 1.04},
		Target:   Ratio{Volume: 1.04, Memory: 1.02},
		MaxMoves: 8,
		MoveCost: 0.002,
		Headroom: 0.98,
		CoolDown: 5,
	}
}

// Planner is the rebalancer's memory between cycles: whether it is
// engaged (it engages above Trigger and disengages within Target: the
// hysteresis) and when each identity last moved (the cool-down). It is not
// safe for concurrent use.
type Planner struct {
	Config  PlanConfig
	engaged bool
	cycle   int
	moved   map[string]int
}

// NewPlanner returns a disengaged planner.
func NewPlanner(cfg PlanConfig) *Planner {
	return &Planner{Config: cfg, moved: map[string]int{}}
}

// Engaged reports whether the last cycle left the planner engaged.
func (p *Planner) Engaged() bool { return p.engaged }

// Cycle plans one rebalancing cycle: items moved within the cool-down are
// frozen; the moves returned are remembered as made.
func (p *Planner) Cycle(members []Member, items []Item) []Move {
	p.cycle++
	b := Balance(members)
	if !p.engaged && (b.Volume > p.Config.Trigger.Volume || b.Memory > p.Config.Trigger.Memory) {
		p.engaged = true
	}
	if p.engaged && b.Volume <= p.Config.Target.Volume && b.Memory <= p.Config.Target.Memory {
		p.engaged = false
	}
	if !p.engaged {
		return nil
	}
	for i := range items {
		if last, ok := p.moved[items[i].Identity]; ok && p.cycle-last <= p.Config.CoolDown {
			items[i].Frozen = true
		}
	}
	cfg := p.Config
	cfg.Trigger = Ratio{} // engaged: plan down to Target
	moves := Plan(members, items, cfg)
	for _, mv := range moves {
		p.moved[mv.Identity] = p.cycle
	}
	for id, last := range p.moved {
		if p.cycle-last > p.Config.CoolDown {
			delete(p.moved, id)
		}
	}
	if len(moves) == 0 {
		p.engaged = false // nothing helps: wait for the next trigger
	}
	return moves
}

// Balance measures members: max/mean request volume (every member is
// assumed to serve equally fast) and max/mean memory utilisation (active
// bytes over budget, against the cluster's total over total). Members with
// no budget are left out. A cluster with no load is balanced (1, 1).
func Balance(members []Member) Ratio {
	t := sum(members)
	r := Ratio{Volume: 1, Memory: 1}
	if t.n == 0 {
		return r
	}
	var maxVol, maxMem float64
	for _, m := range members {
		if m.Budget <= 0 {
			continue
		}
		maxVol = math.Max(maxVol, m.Rate)
		maxMem = math.Max(maxMem, float64(m.Active)/float64(m.Budget))
	}
	if t.rate > 0 {
		r.Volume = maxVol / (t.rate / float64(t.n))
	}
	if t.active > 0 {
		r.Memory = maxMem / (float64(t.active) / float64(t.budget))
	}
	return r
}

// planPower is the exponent of the imbalance Plan minimises, Σ load^p: a
// smooth stand-in for the max that still rewards lowering the runner-up.
const planPower = 8

// pow8 is x^planPower by three multiplications (math.Pow was a third of
// an idle leader's planning CPU at 10^5 activations).
func pow8(x float64) float64 {
	x2 := x * x
	x4 := x2 * x2
	return x4 * x4
}

// Plan proposes at most cfg.MaxMoves moves that lower the maximum
// normalised load (volume and memory) of members, subject to each
// member's budget × Headroom. It plans nothing unless Balance(members)
// exceeds cfg.Trigger, and stops once it is within cfg.Target or no move
// helps. Each step takes, from the two most loaded members, the single
// move that lowers Σ (volume_m/mean)^8 + (memory_m/mean)^8 the most net
// of its cost; an item moves at most once per plan. members' Active, Rate and
// Models are updated as if the moves were made; items are not changed.
func Plan(members []Member, items []Item, cfg PlanConfig) []Move {
	if cfg.MaxMoves <= 0 {
		return nil
	}
	b := Balance(members)
	if b.Volume <= cfg.Trigger.Volume && b.Memory <= cfg.Trigger.Memory {
		return nil
	}
	headroom := cfg.Headroom
	if headroom <= 0 || headroom > 1 {
		headroom = 1
	}
	t := sum(members)
	if t.n < 2 {
		return nil
	}
	meanVol := t.rate / float64(t.n)
	meanUtil := float64(t.active) / float64(t.budget)
	meanBudget := float64(t.budget) / float64(t.n)
	norm := func(m Member) (v, u float64) {
		if meanVol > 0 {
			v = m.Rate / meanVol
		}
		if meanUtil > 0 {
			u = float64(m.Active) / float64(m.Budget) / meanUtil
		}
		return v, u
	}
	phi := func(m Member) float64 {
		v, u := norm(m)
		return pow8(v) + pow8(u)
	}
	byMember := make([][]int, len(members))
	for i, it := range items {
		if it.Member >= 0 && it.Member < len(members) && members[it.Member].Budget > 0 {
			byMember[it.Member] = append(byMember[it.Member], i)
		}
	}
	hosts := make([]int, 0, len(members))
	for i, m := range members {
		if m.Budget > 0 {
			hosts = append(hosts, i)
		}
	}
	moved := map[int]bool{}
	var moves []Move
	for len(moves) < cfg.MaxMoves {
		b := Balance(members)
		if b.Volume <= cfg.Target.Volume && b.Memory <= cfg.Target.Memory {
			break
		}
		// The sources are the two members with the highest load^8.
		sort.Slice(hosts, func(a, c int) bool {
			pa, pc := phi(members[hosts[a]]), phi(members[hosts[c]])
			if pa != pc {
				return pa > pc
			}
			return hosts[a] < hosts[c]
		})
		bestGain, bestItem, bestTo := 0.0, -1, -1
		for _, s := range hosts[:min(2, len(hosts))] {
			src := members[s]
			before := phi(src)
			for _, ii := range byMember[s] {
				it := items[ii]
				if it.Frozen || moved[ii] {
					continue
				}
				srcAfter := src
				srcAfter.Active -= it.Bytes
				srcAfter.Rate -= it.Rate
				srcAfter.Models--
				gainSrc := before - phi(srcAfter)
				cost := cfg.MoveCost * float64(it.Bytes) / meanBudget
				for _, d := range hosts {
					dst := members[d]
					if d == s || float64(dst.Active+it.Bytes) > headroom*float64(dst.Budget) {
						continue
					}
					dstAfter := dst
					dstAfter.Active += it.Bytes
					dstAfter.Rate += it.Rate
					dstAfter.Models++
					if gain := gainSrc - (phi(dstAfter) - phi(dst)) - cost; gain > bestGain {
						bestGain, bestItem, bestTo = gain, ii, d
					}
				}
			}
		}
		apply := func(ii, to int) {
			it := items[ii]
			moved[ii] = true
			members[it.Member].Active -= it.Bytes
			members[it.Member].Rate -= it.Rate
			members[it.Member].Models--
			members[to].Active += it.Bytes
			members[to].Rate += it.Rate
			members[to].Models++
			moves = append(moves, Move{Identity: it.Identity, From: it.Member, To: to, Bytes: it.Bytes, Rate: it.Rate})
		}
		if bestItem >= 0 {
			apply(bestItem, bestTo)
			continue
		}
		// No single move helps: when items are coarse against the
		// budgets, a swap may (two moves: both count against MaxMoves).
		if len(moves)+2 > cfg.MaxMoves {
			break
		}
		a, c := bestSwap(members, items, byMember, moved, hosts[:min(2, len(hosts))], hosts, phi, cfg.MoveCost/meanBudget, headroom)
		if a < 0 {
			break
		}
		from, to := items[a].Member, items[c].Member
		apply(a, to)
		apply(c, from)
	}
	return moves
}

// swapCandidates is how many items per member a swap considers: the
// busiest and the biggest.
const swapCandidates = 8

func candidates(items []Item, idx []int, moved map[int]bool) []int {
	var out []int
	pick := func(less func(a, b int) bool) {
		c := make([]int, 0, len(idx))
		for _, ii := range idx {
			if !items[ii].Frozen && !moved[ii] {
				c = append(c, ii)
			}
		}
		sort.Slice(c, func(x, y int) bool { return less(c[x], c[y]) })
		for _, ii := range c[:min(swapCandidates, len(c))] {
			if !contains2(out, ii) {
				out = append(out, ii)
			}
		}
	}
	pick(func(a, b int) bool { return items[a].Rate > items[b].Rate })
	pick(func(a, b int) bool { return items[a].Bytes > items[b].Bytes })
	pick(func(a, b int) bool { return items[a].Rate < items[b].Rate })
	return out
}

func contains2(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// bestSwap finds the exchange of an item on a source with an item on
// another member that lowers Σ load^8 the most net of cost (per byte
// moved); it returns -1, -1 when none helps.
func bestSwap(members []Member, items []Item, byMember [][]int, moved map[int]bool, srcs, hosts []int,
	phi func(Member) float64, costPerByte, headroom float64) (int, int) {
	bestGain, bestA, bestB := 0.0, -1, -1
	cands := map[int][]int{}
	cand := func(m int) []int {
		if c, ok := cands[m]; ok {
			return c
		}
		cands[m] = candidates(items, byMember[m], moved)
		return cands[m]
	}
	for _, s := range srcs {
		for _, d := range hosts {
			if d == s {
				continue
			}
			before := phi(members[s]) + phi(members[d])
			for _, a := range cand(s) {
				for _, b := range cand(d) {
					x, y := items[a], items[b]
					src, dst := members[s], members[d]
					src.Active += y.Bytes - x.Bytes
					src.Rate += y.Rate - x.Rate
					dst.Active += x.Bytes - y.Bytes
					dst.Rate += x.Rate - y.Rate
					if float64(src.Active) > headroom*float64(src.Budget) && y.Bytes > x.Bytes ||
						float64(dst.Active) > headroom*float64(dst.Budget) && x.Bytes > y.Bytes {
						continue
					}
					gain := before - phi(src) - phi(dst) - costPerByte*float64(x.Bytes+y.Bytes)
					if gain > bestGain {
						bestGain, bestA, bestB = gain, a, b
					}
				}
			}
		}
	}
	return bestA, bestB
}
