package placesim

import (
	"container/heap"
	"math"
	"sort"
	"strconv"

	"github.com/manta-ml/manta/modelhost"
)

// Cache policy names, in the order of the report.
const (
	PolicyLRU       = "lru"
	PolicyGDSF      = "gdsf" // modelhost.NewGDSF with its defaults: what Manta ships
	PolicyGDSFHits  = "gdsf cost=1"
	PolicyGDSFBytes = "gdsf cost=bytes"
	PolicyOracle    = "static oracle"
	PolicyBelady    = "belady (offline)"
)

// CacheRow is one policy's result on the trace.
type CacheRow struct {
	Policy string `json:"policy"`
	// ByteMiss is the bytes loaded over the bytes requested; ObjectMiss
	// the loads over the requests.
	ByteMiss   float64 `json:"byte_miss"`
	ObjectMiss float64 `json:"object_miss"`
	// VsBelady is ByteMiss over Belady's.
	VsBelady float64 `json:"vs_belady"`
}

// CacheReport is the cache simulation's result.
type CacheReport struct {
	Requests int        `json:"requests"`
	Models   int        `json:"models"`
	Budget   int64      `json:"budget"`
	Total    int64      `json:"total"`
	Rows     []CacheRow `json:"rows"`
}

// Row returns the row of policy (zero if absent).
func (r *CacheReport) Row(policy string) CacheRow {
	for _, row := range r.Rows {
		if row.Policy == policy {
			return row
		}
	}
	return CacheRow{}
}

// trace draws n requests from Zipf(alpha) over the models (popularity
// independent of size), by inverse CDF.
func zipfTrace(c Config, n int) []int32 {
	rng := newRand(c.Seed, 7)
	shares := zipfShares(rng, c.Models, c.Alpha)
	cdf := make([]float64, len(shares))
	var acc float64
	for i, s := range shares {
		acc += s
		cdf[i] = acc
	}
	out := make([]int32, n)
	for k := range out {
		u := rng.Float64() * acc
		out[k] = int32(sort.SearchFloat64s(cdf, u))
		if int(out[k]) >= len(cdf) {
			out[k] = int32(len(cdf) - 1)
		}
	}
	return out
}

// SimulateCache replays one Zipf trace through LRU, GDSF variants, the
// static oracle and Belady within CacheFraction of the models' total size.
func SimulateCache(c Config) (*CacheReport, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	sizes := lognormalSizes(newRand(c.Seed, 1), c.Models, c.MedianBytes, c.MinBytes, c.MaxBytes, c.Sigma)
	var total int64
	for _, s := range sizes {
		total += s
	}
	budget := int64(float64(total) * c.CacheFraction)
	tr := zipfTrace(c, c.TraceRequests)
	rep := &CacheReport{Requests: len(tr), Models: c.Models, Budget: budget, Total: total}
	keys := make([]string, c.Models)
	for i := range keys {
		keys[i] = "model-" + strconv.Itoa(i) + "@1"
	}
	policies := []struct {
		name string
		p    func() modelhost.Policy
	}{
		{PolicyLRU, modelhost.NewLRU},
		{PolicyGDSF, func() modelhost.Policy { return modelhost.NewGDSF(modelhost.GDSFConfig{}) }},
		{PolicyGDSFHits, func() modelhost.Policy {
			return modelhost.NewGDSF(modelhost.GDSFConfig{Cost: func(int64) float64 { return 1 }})
		}},
		{PolicyGDSFBytes, func() modelhost.Policy {
			return modelhost.NewGDSF(modelhost.GDSFConfig{Cost: func(n int64) float64 { return float64(n) }})
		}},
	}
	var requested float64
	for _, i := range tr {
		requested += float64(sizes[i])
	}
	for _, p := range policies {
		mb, mo := replay(p.p(), tr, keys, sizes, budget)
		rep.Rows = append(rep.Rows, CacheRow{Policy: p.name, ByteMiss: mb / requested, ObjectMiss: float64(mo) / float64(len(tr))})
	}
	mb, mo := staticOracle(tr, sizes, budget)
	rep.Rows = append(rep.Rows, CacheRow{Policy: PolicyOracle, ByteMiss: mb / requested, ObjectMiss: float64(mo) / float64(len(tr))})
	mb, mo = belady(tr, sizes, budget)
	rep.Rows = append(rep.Rows, CacheRow{Policy: PolicyBelady, ByteMiss: mb / requested, ObjectMiss: float64(mo) / float64(len(tr))})
	opt := rep.Rows[len(rep.Rows)-1].ByteMiss
	for i := range rep.Rows {
		if opt > 0 {
			rep.Rows[i].VsBelady = rep.Rows[i].ByteMiss / opt
		}
	}
	return rep, nil
}

// replay drives p the way modelhost.Cache does: every request is an
// Access; a hit pins and releases (Remove, Add); a miss evicts victims
// until the model fits, then loads and releases it (Add).
func replay(p modelhost.Policy, tr []int32, keys []string, sizes []int64, budget int64) (missBytes float64, misses int) {
	in := make([]bool, len(sizes))
	var used int64
	for _, i := range tr {
		key := keys[i]
		p.Access(key)
		if in[i] {
			p.Remove(key)
			p.Add(key, sizes[i])
			continue
		}
		misses++
		missBytes += float64(sizes[i])
		if sizes[i] > budget {
			continue
		}
		for used+sizes[i] > budget {
			v, ok := p.Victim()
			if !ok {
				break
			}
			p.Remove(v)
			j := keyIndex(v)
			in[j] = false
			used -= sizes[j]
		}
		in[i] = true
		used += sizes[i]
		p.Add(key, sizes[i])
	}
	return missBytes, misses
}

// staticOracle keeps, from the start, the models the trace requests most
// (most requests first, while they fit): the best any online policy can
// do when requests are independent draws from fixed popularities, which a
// Zipf trace is. Every first request is still a miss.
func staticOracle(tr []int32, sizes []int64, budget int64) (missBytes float64, misses int) {
	count := make([]int, len(sizes))
	for _, i := range tr {
		count[i]++
	}
	order := make([]int, len(sizes))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		if count[order[a]] != count[order[b]] {
			return count[order[a]] > count[order[b]]
		}
		return order[a] < order[b]
	})
	keep := make([]bool, len(sizes))
	var used int64
	for _, i := range order {
		if used+sizes[i] <= budget {
			keep[i] = true
			used += sizes[i]
		}
	}
	seen := make([]bool, len(sizes))
	for _, i := range tr {
		if !keep[i] || !seen[i] {
			misses++
			missBytes += float64(sizes[i])
		}
		seen[i] = true
	}
	return missBytes, misses
}

// keyIndex parses "model-<i>@1".
func keyIndex(key string) int {
	n := 0
	for _, c := range key[len("model-"):] {
		if c == '@' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// belady is the offline rule: on a miss, evict the cached models whose
// next request is furthest away (never requested again: first) until the
// model fits. With models of different sizes it is not the exact optimum
// (that is NP-hard) but the classic bound policies are compared to.
func belady(tr []int32, sizes []int64, budget int64) (missBytes float64, misses int) {
	next := make([]int, len(tr))
	last := make([]int, len(sizes))
	for i := range last {
		last[i] = math.MaxInt
	}
	for k := len(tr) - 1; k >= 0; k-- {
		next[k] = last[tr[k]]
		last[tr[k]] = k
	}
	h := &nextHeap{pos: make([]int, len(sizes))}
	for i := range h.pos {
		h.pos[i] = -1
	}
	var used int64
	for k, i := range tr {
		if h.pos[i] >= 0 {
			h.items[h.pos[i]].next = next[k]
			heap.Fix(h, h.pos[i])
			continue
		}
		misses++
		missBytes += float64(sizes[i])
		if sizes[i] > budget {
			continue
		}
		for used+sizes[i] > budget && h.Len() > 0 {
			v := heap.Pop(h).(nextItem)
			used -= sizes[v.model]
		}
		heap.Push(h, nextItem{model: i, next: next[k]})
		used += sizes[i]
	}
	return missBytes, misses
}

type nextItem struct {
	model int32
	next  int
}

// nextHeap is a max-heap on next use, with positions for Fix.
type nextHeap struct {
	items []nextItem
	pos   []int
}

func (h *nextHeap) Len() int           { return len(h.items) }
func (h *nextHeap) Less(i, j int) bool { return h.items[i].next > h.items[j].next }
func (h *nextHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.pos[h.items[i].model] = i
	h.pos[h.items[j].model] = j
}
func (h *nextHeap) Push(x any) {
	it := x.(nextItem)
	h.pos[it.model] = len(h.items)
	h.items = append(h.items, it)
}
func (h *nextHeap) Pop() any {
	it := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	h.pos[it.model] = -1
	return it
}
