package modelhost

import (
	"fmt"
	"testing"
)

// drive replays keys through p the way Cache does (Access; a hit pins and
// releases; a miss evicts until it fits, then loads and releases) and
// returns the misses.
func drive(p Policy, budget int64, sizes map[string]int64, keys []string) (misses int, evicted []string) {
	in := map[string]bool{}
	var used int64
	for _, k := range keys {
		p.Access(k)
		if in[k] {
			p.Remove(k)
			p.Add(k, sizes[k])
			continue
		}
		misses++
		for used+sizes[k] > budget {
			v, ok := p.Victim()
			if !ok {
				break
			}
			p.Remove(v)
			delete(in, v)
			used -= sizes[v]
			evicted = append(evicted, v)
		}
		in[k] = true
		used += sizes[k]
		p.Add(k, sizes[k])
	}
	return misses, evicted
}

func TestGDSFVictims(t *testing.T) {
	tests := []struct {
		name  string
		cost  func(int64) float64
		sizes map[string]int64
		keys  []string
		want  string // first victim when "new" needs room
	}{
		{"frequency wins at equal size", nil,
			map[string]int64{"a": 10, "b": 10, "new": 10}, []string{"a", "a", "a", "b", "new"}, "b"},
		{"the older of equals", nil,
			map[string]int64{"a": 10, "b": 10, "new": 10}, []string{"a", "b", "new"}, "a"},
		{"bigger goes first at equal use", nil,
			map[string]int64{"small": 64 << 20, "big": 1 << 30, "new": 1 << 30}, []string{"big", "small", "new"}, "big"},
		{"cost=bytes ignores size", func(n int64) float64 { return float64(n) },
			map[string]int64{"small": 1, "big": 100, "new": 100}, []string{"small", "big", "big", "new"}, "small"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var budget int64
			for k, s := range tc.sizes {
				if k != "new" {
					budget += s
				}
			}
			_, ev := drive(NewGDSF(GDSFConfig{Cost: tc.cost}), budget, tc.sizes, tc.keys)
			if len(ev) == 0 || ev[0] != tc.want {
				t.Fatalf("evicted %v, want %s first", ev, tc.want)
			}
		})
	}
}

func TestGDSFBookkeeping(t *testing.T) {
	p := NewGDSF(GDSFConfig{})
	if _, ok := p.Victim(); ok {
		t.Fatal("victim from an empty policy")
	}
	p.Remove("unknown") // no-op
	p.Access("a")
	p.Add("a", 10)
	p.Add("a", 10) // re-adding updates, does not duplicate
	p.Access("b")
	p.Add("b", 10)
	p.Remove("a")
	if v, ok := p.Victim(); !ok || v != "b" {
		t.Fatalf("victim %q %v, want b", v, ok)
	}
	p.Remove("b")
	if _, ok := p.Victim(); ok {
		t.Fatal("victim after removing everything")
	}
}

// A model used all the time survives a scan of one-off models that LRU
// lets push it out; and the inflation lets a once-hot model go eventually.
func TestGDSFResistsScansAndAges(t *testing.T) {
	sizes := map[string]int64{"hot": 10}
	var keys []string
	for i := 0; i < 50; i++ {
		keys = append(keys, "hot", "hot")
		for j := 0; j < 3; j++ {
			k := fmt.Sprintf("scan-%d-%d", i, j)
			sizes[k] = 10
			keys = append(keys, k)
		}
	}
	lruMiss, _ := drive(NewLRU(), 30, sizes, keys)
	gdsfMiss, ev := drive(NewGDSF(GDSFConfig{}), 30, sizes, keys)
	if gdsfMiss >= lruMiss {
		t.Errorf("gdsf %d misses, lru %d: want fewer", gdsfMiss, lruMiss)
	}
	for _, v := range ev {
		if v == "hot" {
			t.Fatalf("gdsf evicted the hot model during the scan")
		}
	}
	// Then the hot model goes cold: the others' priorities pass its
	// inflated one and it is evicted.
	var later []string
	for i := 0; i < 400; i++ {
		k := fmt.Sprintf("new-%d", i%4)
		sizes[k] = 10
		later = append(later, k)
	}
	_, ev = drive(NewGDSF(GDSFConfig{}), 30, sizes, append(keys, later...))
	found := false
	for _, v := range ev {
		found = found || v == "hot"
	}
	if !found {
		t.Error("a model no longer used was never evicted")
	}
}

func TestCacheWithGDSF(t *testing.T) {
	store := newDirStore(t)
	var ms []*Manifest
	for i := 0; i < 3; i++ {
		ms = append(ms, putVersion(t, store, testManifest(uniqueID("gdsf"), 100), nil))
	}
	c, err := NewCache(store, CacheConfig{BudgetBytes: 200, Policy: NewGDSF(GDSFConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	use := func(m *Manifest) {
		t.Helper()
		l, err := c.Acquire(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
	}
	use(ms[0])
	use(ms[0])
	use(ms[0])
	use(ms[1]) // more recent than ms[0], but used once
	use(ms[2]) // evicts ms[1] (LRU would evict ms[0])
	var loaded []string
	for _, e := range c.Loaded() {
		loaded = append(loaded, e.ID)
	}
	if len(loaded) != 2 || !contains(loaded, ms[0].ID) || !contains(loaded, ms[2].ID) {
		t.Fatalf("loaded %v, want %s and %s", loaded, ms[0].ID, ms[2].ID)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
