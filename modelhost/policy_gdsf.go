package modelhost

import "container/heap"

// GDSFConfig tunes the GDSF policy.
type GDSFConfig struct {
	// Cost is what loading a model of the given size costs, in any unit;
	// nil is DefaultLoadCost. Cost(bytes) = 1 gives classic GDSF (it
	// maximises hits, not bytes); Cost(bytes) = bytes gives LFU with
	// dynamic aging (it minimises bytes loaded).
	Cost func(bytes int64) float64
	// AgeEvery halves every frequency count after this many accesses per
	// tracked model, so popularity that has moved on fades (≤ 0: 8).
	AgeEvery int
}

// DefaultLoadCost is the cost of loading a model of n bytes: its bytes
// plus a fixed 32 MiB for what every load pays whatever the size
// (process and runtime start, the store's round trips). Against plain
// bytes it keeps small models a little longer, which saves loads (hence
// latency) for a small price in bytes.
func DefaultLoadCost(n int64) float64 { return float64(n) + 32<<20 }

// NewGDSF returns the Greedy-Dual-Size-Frequency policy (Cherkasova 1998):
// an evictable model's priority is L + F·Cost/Size, where F counts its
// uses, Size is its charged bytes and L is the priority of the last
// victim (the "inflation" that ages models not used since). The victim is
// the lowest priority, the least recently released among equals. Unlike
// LRU it keeps a model used often even when a burst of one-off loads
// passes through, and it weighs what a miss costs against the room a
// model takes. Frequencies outlive evictions (they are per key), halved
// periodically (cfg.AgeEvery).
func NewGDSF(cfg GDSFConfig) Policy {
	if cfg.Cost == nil {
		cfg.Cost = DefaultLoadCost
	}
	if cfg.AgeEvery <= 0 {
		cfg.AgeEvery = 8
	}
	return &gdsf{cfg: cfg, freq: map[string]float64{}, items: map[string]*gdsfItem{}}
}

type gdsf struct {
	cfg      GDSFConfig
	inflate  float64            // L
	freq     map[string]float64 // uses per key (evictable or not)
	items    map[string]*gdsfItem
	heap     gdsfHeap
	seq      uint64
	accesses int
}

type gdsfItem struct {
	key   string
	prio  float64
	seq   uint64 // release order: older first among equal priorities
	index int
}

func (g *gdsf) Access(key string) {
	g.freq[key]++
	g.accesses++
	if g.accesses >= g.cfg.AgeEvery*max(len(g.freq), 64) {
		g.accesses = 0
		for k, f := range g.freq {
			if f /= 2; f < 0.5 && g.items[k] == nil {
				delete(g.freq, k)
			} else {
				g.freq[k] = f
			}
		}
	}
}

func (g *gdsf) Add(key string, bytes int64) {
	f := g.freq[key]
	if f < 1 {
		f = 1
	}
	size := float64(bytes)
	if size < 1 {
		size = 1
	}
	prio := g.inflate + f*g.cfg.Cost(bytes)/size
	g.seq++
	if it, ok := g.items[key]; ok {
		it.prio, it.seq = prio, g.seq
		heap.Fix(&g.heap, it.index)
		return
	}
	it := &gdsfItem{key: key, prio: prio, seq: g.seq}
	g.items[key] = it
	heap.Push(&g.heap, it)
}

func (g *gdsf) Remove(key string) {
	if it, ok := g.items[key]; ok {
		heap.Remove(&g.heap, it.index)
		delete(g.items, key)
	}
}

// Victim returns the lowest priority and raises L to it: the cache asks
// only when it is about to evict.
func (g *gdsf) Victim() (string, bool) {
	if len(g.heap) == 0 {
		return "", false
	}
	it := g.heap[0]
	if it.prio > g.inflate {
		g.inflate = it.prio
	}
	return it.key, true
}

type gdsfHeap []*gdsfItem

func (h gdsfHeap) Len() int { return len(h) }
func (h gdsfHeap) Less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio < h[j].prio
	}
	return h[i].seq < h[j].seq
}
func (h gdsfHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *gdsfHeap) Push(x any) {
	it := x.(*gdsfItem)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *gdsfHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}

var _ Policy = (*gdsf)(nil)
