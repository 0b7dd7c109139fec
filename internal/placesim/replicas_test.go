package placesim

import (
	"math"
	"testing"

	"github.com/manta-ml/manta/internal/testenv"
)

// The replica rule is the live leader's: ⌈r/hot⌉−1 replicas at once,
// capped; one goes a cycle once r < 0.6 × hot × replicas.
func TestAdjustReplicas(t *testing.T) {
	c := Config{Members: 4, HotRate: 0.5, MaxReplicas: 3}.withDefaults()
	// total 100 over 4 members: a member's mean is 25, hot = 12.5
	est := []float64{50, 12.5, 13, 24.5, 0}
	table := make([]int, len(est))
	if hot := adjustReplicas(table, est, c); hot != 12.5 {
		t.Fatalf("hot = %g, want 12.5", hot)
	}
	// 50/12.5 = 4 activations; 12.5 is not above; 13 and 24.5 want 2
	if want := []int{3, 0, 1, 1, 0}; !equal(table, want) {
		t.Fatalf("table %v, want %v", table, want)
	}
	est = []float64{500, 12.5, 13, 24.5, 0} // cap
	adjustReplicas(table, est, c)
	if table[0] != 3 {
		t.Fatalf("replicas %d above the cap 3", table[0])
	}
	// The hot model cools: one replica a cycle, and only below 60% of
	// what the remaining activations would serve.
	table = []int{3, 0, 0, 0, 0}
	est = []float64{20, 20, 20, 20, 20} // hot 12.5: wants 1; 20 < 0.6·12.5·3 = 22.5
	adjustReplicas(table, est, c)
	if table[0] != 2 {
		t.Fatalf("after cooling: %d replicas, want 2", table[0])
	}
	adjustReplicas(table, est, c) // 20 ≥ 0.6·12.5·2 = 15: stays
	if table[0] != 2 {
		t.Fatalf("hysteresis: %d replicas, want 2", table[0])
	}
	c.HotRate = -1
	table = make([]int, 5)
	if hot := adjustReplicas(table, []float64{1000, 0, 0, 0, 0}, c); hot != 0 || table[0] != 0 {
		t.Fatalf("replicas off: hot %g, table %v", hot, table)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReplicaInvariants runs the simulation's cycles (the loop of
// SimulatePlacement) and checks every strategy's replicas after each:
// only models measured above the threshold have any, at most the table's
// and MaxReplicas, never two copies on one member, every copy's bytes on
// its member within its budget, the volume split evenly and conserved.
func TestReplicaInvariants(t *testing.T) {
	c := DefaultConfig()
	c.Members, c.Models, c.Cycles, c.DriftHot, c.MaxReplicas = 16, 3000, 8, 10, 4
	c = c.withDefaults()
	w := newWorkload(c)
	table := make([]int, len(w.ids))
	everHot := make([]bool, len(w.ids))
	manta := newMantaSim(c, w)
	manta.placeAll()
	noise := newRand(c.Seed, 4)
	var est []float64
	replicated := 0
	for cycle := 0; cycle < c.Cycles; cycle++ {
		if cycle == c.Cycles/2 {
			w.drift(newRand(c.Seed, 5), c.DriftHot)
		}
		est = w.measure(noise, c.WindowRequests, est)
		prev := append([]int(nil), table...)
		hot := adjustReplicas(table, est, c)
		for i, r := range est {
			everHot[i] = everHot[i] || r > hot
			if table[i] > 0 && !everHot[i] {
				t.Fatalf("cycle %d: model %d (%.0f, hot %.0f) has %d replicas but was never above the threshold", cycle, i, r, hot, table[i])
			}
			if table[i] > c.MaxReplicas || table[i] < prev[i]-1 {
				t.Fatalf("cycle %d: model %d: %d -> %d replicas (max %d)", cycle, i, prev[i], table[i], c.MaxReplicas)
			}
		}
		manta.cycle(est, table, hot)
		for name, a := range map[string]assignment{
			Knapsack:   knapsackPlace(w, est, table),
			Rendezvous: rendezvousPlace(w, table),
			MantaFull:  manta.assign,
		} {
			checkAssignment(t, w, a, table, name)
			if name == MantaFull {
				replicated = max(replicated, a.replicas())
			}
		}
	}
	if replicated == 0 {
		t.Fatal("no replicas: the scenario does not test them")
	}
}

func checkAssignment(t *testing.T, w *workload, a assignment, table []int, name string) {
	t.Helper()
	active := make([]int64, len(w.members))
	rate := make([]float64, len(w.members))
	for i, p := range a.at {
		if p < 0 {
			if len(a.rep[i]) > 0 {
				t.Fatalf("%s: model %d is unplaced but has replicas", name, i)
			}
			continue
		}
		if len(a.rep[i]) > table[i] {
			t.Fatalf("%s: model %d has %d replicas, the table %d", name, i, len(a.rep[i]), table[i])
		}
		seen := map[int]bool{}
		copies := append([]int{p}, a.rep[i]...)
		for _, m := range copies {
			if seen[m] {
				t.Fatalf("%s: model %d has two copies on member %d: %v", name, i, m, copies)
			}
			seen[m] = true
			active[m] += w.sizes[i]
			rate[m] += w.vol[i] / float64(len(copies))
		}
	}
	ms := a.members(w, w.vol)
	var total, want float64
	for m := range ms {
		if ms[m].Active != active[m] || ms[m].Active > ms[m].Budget {
			t.Fatalf("%s: member %d: active %d, its copies' bytes %d, budget %d", name, m, ms[m].Active, active[m], ms[m].Budget)
		}
		if math.Abs(ms[m].Rate-rate[m]) > 1e-12 {
			t.Fatalf("%s: member %d: rate %g, its copies' shares %g", name, m, ms[m].Rate, rate[m])
		}
		total += ms[m].Rate
	}
	for i, p := range a.at {
		if p >= 0 {
			want += w.vol[i]
		}
	}
	if math.Abs(total-want) > 1e-9 {
		t.Fatalf("%s: members carry %g of the placed models' volume %g", name, total, want)
	}
}

// At a moderate size replicas let the rebalancer balance what one hot
// model's activation would otherwise dominate.
func TestReplicasImproveBalance(t *testing.T) {
	c := DefaultConfig()
	c.Members, c.Models, c.TraceRequests = 16, 5000, 1000
	with, err := SimulatePlacement(c)
	if err != nil {
		t.Fatal(err)
	}
	c.HotRate = -1
	without, err := SimulatePlacement(c)
	if err != nil {
		t.Fatal(err)
	}
	w, wo := with.Row(MantaFull, phaseSteady), without.Row(MantaFull, phaseSteady)
	t.Logf("manta steady volume max/mean: %.3f with %d replicas (top model %d copies), %.3f without", w.VolumeMaxMean, w.Replicas, w.TopCopies, wo.VolumeMaxMean)
	if wo.Replicas != 0 || wo.TopCopies != 1 {
		t.Errorf("hot rate < 0: %d replicas, top copies %d", wo.Replicas, wo.TopCopies)
	}
	if w.Replicas == 0 || w.TopCopies < 2 {
		t.Fatalf("no replicas of the top model (%.1f%% of requests over %d members)", 100*with.TopShare, c.Members)
	}
	if !(w.VolumeMaxMean < wo.VolumeMaxMean) || w.VolumeMaxMean > 1.10 {
		t.Errorf("volume max/mean %.3f with replicas, %.3f without: want better and ≤ 1.10", w.VolumeMaxMean, wo.VolumeMaxMean)
	}
	if w.MemoryMaxMean > 1.05 {
		t.Errorf("memory max/mean %.3f with replicas, want ≤ 1.05", w.MemoryMaxMean)
	}
}

// The goal of replicas: at 64 members and 10^5 models, where the top
// model alone carries 5.3 members' mean volume, manta's steady row is
// within 1.10 (volume) and 1.05 (memory).
func TestPlacementGoalsLarge(t *testing.T) {
	testenv.SkipShort(t, "64 members × 10^5 models take several seconds")
	c := DefaultConfig()
	c.Members, c.Models = 64, 100_000
	rep, err := SimulatePlacement(c)
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Row(MantaFull, phaseSteady)
	if m.VolumeMaxMean > 1.10 || m.MemoryMaxMean > 1.05 {
		t.Errorf("manta steady: volume %.3f memory %.3f, want ≤ 1.10 and ≤ 1.05", m.VolumeMaxMean, m.MemoryMaxMean)
	}
	// ⌈share / (HotRate × 1/members)⌉ copies, give or take the noise
	want := int(math.Ceil(rep.TopShare * float64(c.Members) / c.HotRate))
	if m.TopCopies < want-1 || m.TopCopies > want {
		t.Errorf("the top model (%.1f%% of requests) has %d copies, want about %d", 100*rep.TopShare, m.TopCopies, want)
	}
}
