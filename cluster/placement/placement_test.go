package placement

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	pcluster "github.com/asynkron/protoactor-go/cluster"
)

func TestOwnerMatchesProtoactorRendezvous(t *testing.T) {
	var members pcluster.Members
	var addrs []string
	for i := 0; i < 7; i++ {
		m := &pcluster.Member{Id: fmt.Sprintf("m%d", i), Host: "127.0.0.1", Port: int32(4000 + i), Kinds: []string{"model"}}
		members = append(members, m)
		addrs = append(addrs, m.Address())
	}
	r := pcluster.NewRendezvous()
	r.UpdateMembers(members)
	for i := 0; i < 2000; i++ {
		id := fmt.Sprintf("model-%d", i)
		want := r.GetByClusterIdentity(pcluster.NewClusterIdentity(id, "model"))
		if got := Owner(id, addrs); got != want {
			t.Fatalf("Owner(%s) = %s, protoactor says %s", id, got, want)
		}
	}
	if Owner("x", nil) != "" {
		t.Error("Owner with no members is not empty")
	}
}

func members(budgets ...int64) []Member {
	out := make([]Member, len(budgets))
	for i, b := range budgets {
		out[i] = Member{ID: fmt.Sprintf("m%d", i), Budget: b}
	}
	return out
}

func TestChoose(t *testing.T) {
	tests := []struct {
		name    string
		members []Member
		model   Model
		want    int // -1: NoRoomError
		largest int64
	}{
		{"cold: most free memory", []Member{{ID: "a", Budget: 100, Active: 60}, {ID: "b", Budget: 100, Active: 20}, {ID: "c", Budget: 100, Active: 40}},
			Model{Bytes: 10, Cold: true}, 1, 0},
		{"cold ignores volume", []Member{{ID: "a", Budget: 100, Active: 10, Rate: 1000}, {ID: "b", Budget: 100, Active: 20}},
			Model{Bytes: 10, Cold: true}, 0, 0},
		{"warm weighs volume", []Member{{ID: "a", Budget: 100, Active: 10, Rate: 1000}, {ID: "b", Budget: 100, Active: 20}},
			Model{Bytes: 10, Rate: 50}, 1, 0},
		{"never a member that cannot fit", []Member{{ID: "a", Budget: 100, Active: 95}, {ID: "b", Budget: 100, Active: 80, Rate: 1e9}},
			Model{Bytes: 10, Rate: 1}, 1, 0},
		{"relative to budget", []Member{{ID: "a", Budget: 1000, Active: 400}, {ID: "b", Budget: 100, Active: 30}},
			Model{Bytes: 10, Cold: true}, 1, 0},
		{"too large names the largest room", []Member{{ID: "a", Budget: 100, Active: 95}, {ID: "b", Budget: 100, Active: 30}, {ID: "c", Budget: 50}},
			Model{Identity: "big", Bytes: 80}, -1, 70},
		{"avoid when possible", []Member{{ID: "a", Budget: 100}, {ID: "b", Budget: 100, Active: 50}},
			Model{Bytes: 10, Cold: true, Avoid: []string{"a"}}, 1, 0},
		{"avoided beats nothing", []Member{{ID: "a", Budget: 100}, {ID: "b", Budget: 100, Active: 95}},
			Model{Bytes: 10, Cold: true, Avoid: []string{"a"}}, 0, 0},
		{"members without budget host nothing", []Member{{ID: "client"}, {ID: "b", Budget: 100, Active: 90}},
			Model{Bytes: 10, Cold: true}, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Choose(tc.members, tc.model, DefaultWeights(), 0, nil)
			if tc.want < 0 {
				var nr *NoRoomError
				if !errors.As(err, &nr) {
					t.Fatalf("Choose = %d, %v; want NoRoomError", got, err)
				}
				if nr.Largest != tc.largest || nr.Need != tc.model.Bytes || nr.Member != "b" {
					t.Fatalf("NoRoomError = %+v, want largest %d on b", nr, tc.largest)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Choose = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestChooseSamplesAndSpreads(t *testing.T) {
	ms := members(100, 100, 100, 100, 100, 100, 100, 100, 100)
	if SampleSize(9) != 3 || SampleSize(2) != 2 || SampleSize(1) != 1 || SampleSize(50) != 8 {
		t.Fatalf("SampleSize: %d %d %d %d", SampleSize(9), SampleSize(2), SampleSize(1), SampleSize(50))
	}
	// With identical (stale) loads, sampling spreads placements instead
	// of herding them onto one member.
	rng := rand.New(rand.NewPCG(1, 2))
	hits := map[int]int{}
	for i := 0; i < 900; i++ {
		m, err := Choose(ms, Model{Bytes: 1, Cold: true}, DefaultWeights(), 0, rng)
		if err != nil {
			t.Fatal(err)
		}
		hits[m]++
	}
	for i := range ms {
		if hits[i] < 50 {
			t.Errorf("member %d chosen %d times of 900: herding", i, hits[i])
		}
	}
	// Deterministic for a seed.
	a, _ := Choose(ms, Model{Bytes: 1}, DefaultWeights(), 0, rand.New(rand.NewPCG(7, 7)))
	b, _ := Choose(ms, Model{Bytes: 1}, DefaultWeights(), 0, rand.New(rand.NewPCG(7, 7)))
	if a != b {
		t.Error("same seed, different choice")
	}
}

func TestBalance(t *testing.T) {
	b := Balance([]Member{{Budget: 100, Active: 50, Rate: 30}, {Budget: 100, Active: 30, Rate: 10}, {Budget: 0, Active: 1000, Rate: 1000}})
	if b.Volume != 1.5 || b.Memory != 1.25 {
		t.Fatalf("Balance = %+v, want 1.5/1.25", b)
	}
	if b := Balance(nil); b.Volume != 1 || b.Memory != 1 {
		t.Fatalf("empty Balance = %+v", b)
	}
}

// skewed is four members with 300 models of Zipf rates and mixed sizes,
// all on members 0 and 3, most on 0.
func skewed() ([]Member, []Item) {
	ms := members(3000, 3000, 3000, 3000)
	var items []Item
	for i := 0; i < 300; i++ {
		m := 0
		if i%4 == 3 {
			m = 3
		}
		items = append(items, Item{Identity: fmt.Sprintf("x%d", i), Member: m, Bytes: int64(1 + i*7%10), Rate: 100 / float64(i+1)})
	}
	for _, it := range items {
		ms[it.Member].Active += it.Bytes
		ms[it.Member].Rate += it.Rate
		ms[it.Member].Models++
	}
	return ms, items
}

func TestPlanBalancesWithinBounds(t *testing.T) {
	ms, items := skewed()
	before := Balance(ms)
	cfg := DefaultPlanConfig()
	cfg.MaxMoves = 3
	moves := Plan(ms, items, cfg)
	if len(moves) == 0 || len(moves) > 3 {
		t.Fatalf("%d moves, want 1..3", len(moves))
	}
	after := Balance(ms)
	if after.Volume >= before.Volume {
		t.Errorf("volume max/mean %.3f -> %.3f: no better", before.Volume, after.Volume)
	}
	seen := map[string]bool{}
	for _, mv := range moves {
		if mv.From == mv.To || seen[mv.Identity] {
			t.Errorf("bad move %+v", mv)
		}
		seen[mv.Identity] = true
	}
	for _, m := range ms {
		if float64(m.Active) > cfg.Headroom*float64(m.Budget) {
			t.Errorf("member %s over its headroom: %d of %d", m.ID, m.Active, m.Budget)
		}
	}
	// Plenty of moves converge within the target.
	ms, items = skewed()
	cfg.MaxMoves = 100
	Plan(ms, items, cfg)
	if b := Balance(ms); b.Volume > cfg.Target.Volume+0.05 {
		t.Errorf("after an unbounded plan volume max/mean = %.3f", b.Volume)
	}
}

func TestPlanRespectsBudgetsFrozenAndTrigger(t *testing.T) {
	ms, items := skewed()
	for i := range items {
		items[i].Frozen = true
	}
	if moves := Plan(ms, items, DefaultPlanConfig()); len(moves) != 0 {
		t.Errorf("frozen items moved: %+v", moves)
	}
	ms, items = skewed()
	for i := range ms {
		ms[i].Budget = ms[i].Active + 1 // no room for another model anywhere
	}
	Plan(ms, items, DefaultPlanConfig())
	for _, m := range ms {
		if m.Active > m.Budget {
			t.Errorf("member %s over budget: %d of %d", m.ID, m.Active, m.Budget)
		}
	}
	// Balanced: nothing to do.
	bal := members(100, 100)
	bal[0].Active, bal[1].Active, bal[0].Rate, bal[1].Rate = 50, 50, 10, 10.5
	if moves := Plan(bal, []Item{{Identity: "a", Member: 1, Bytes: 1, Rate: 0.5}}, DefaultPlanConfig()); len(moves) != 0 {
		t.Errorf("moves below the trigger: %+v", moves)
	}
}

func TestPlannerHysteresisAndCoolDown(t *testing.T) {
	cfg := DefaultPlanConfig()
	cfg.MaxMoves = 1
	cfg.CoolDown = 2
	p := NewPlanner(cfg)
	ms, items := skewed()
	apply := func(moves []Move) {
		for _, mv := range moves {
			for i := range items {
				if items[i].Identity == mv.Identity {
					items[i].Member = mv.To
				}
			}
		}
	}
	first := p.Cycle(ms, items)
	if len(first) != 1 || !p.Engaged() {
		t.Fatalf("cycle 1: %+v engaged=%v", first, p.Engaged())
	}
	apply(first)
	for c := 2; c <= 3; c++ {
		for i := range items {
			items[i].Frozen = false
		}
		ms2 := append([]Member(nil), ms...)
		moves := p.Cycle(ms2, items)
		for _, mv := range moves {
			if mv.Identity == first[0].Identity {
				t.Fatalf("cycle %d moved %s again within the cool-down", c, mv.Identity)
			}
		}
		apply(moves)
		ms = ms2
	}
	// Engaged, it keeps going below the trigger until the target.
	p2 := NewPlanner(cfg)
	p2.engaged = true
	near := members(100, 100)
	near[0].Active, near[1].Active, near[0].Rate, near[1].Rate = 50, 50, 10.6, 9.4 // 1.06: under the trigger, over the target
	its := []Item{{Identity: "a", Member: 0, Bytes: 1, Rate: 0.5}, {Identity: "b", Member: 0, Bytes: 1, Rate: 10.1}, {Identity: "c", Member: 1, Bytes: 1, Rate: 9.4}}
	if moves := p2.Cycle(near, its); len(moves) != 1 || moves[0].Identity != "a" {
		t.Fatalf("engaged planner below the trigger: %+v", moves)
	}
}
