package actors

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/modelhost"
)

// rateTau is the time constant of the request-rate EWMA the member gossips.
const rateTau = 5 * time.Second

// PlacementSource returns what cluster placement needs from this member
// (cluster.Source): the cache's memory figures, request rates (an EWMA of
// the stats registry's counts, per model and in all), memory estimates
// read from the store, and whether a model is loaded. Set it as
// cluster.Config.Source before starting the member.
func (h *Host) PlacementSource() cluster.Source { return &placementSource{h: h} }

type placementSource struct {
	h *Host

	mu    sync.Mutex
	last  time.Time // the member rate's last update
	count int64     // requests recorded at last
	total float64   // requests/s, EWMA
	// per-model rates, updated by ModelLoads (the summary and the
	// rebalancer's pull: every few seconds, not on every gossip round)
	mLast   time.Time
	mCounts map[string]int64
	rates   map[string]float64
	bounds  map[string]replicaBounds
}

// counts returns every model's requests served so far.
func (r *StatsRegistry) counts() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int64, len(r.models))
	for id, s := range r.models {
		out[id] = s.count + s.errors
	}
	return out
}

// Load is the member's figures in O(1): the cache's counters and the
// member's request rate (an EWMA of one counter). It walks no model, so
// gossip every few hundred milliseconds costs the same at 10 models or
// 10^5. Per-model figures come from ModelLoads.
func (s *placementSource) Load() cluster.SourceLoad {
	st := s.h.Cache.Stats()
	out := cluster.SourceLoad{Budget: st.Budget, Used: st.Used, Pinned: st.Pinned, ModelsLoaded: st.Models}
	now := time.Now()
	n := s.h.Stats.served.Load()
	s.mu.Lock()
	if s.last.IsZero() {
		s.last, s.count = now, n
	} else if dt := now.Sub(s.last); dt >= 50*time.Millisecond {
		alpha := 1 - math.Exp(-dt.Seconds()/rateTau.Seconds())
		s.total += alpha * (float64(n-s.count)/dt.Seconds() - s.total)
		s.last, s.count = now, n
	}
	out.Rate = s.total
	s.mu.Unlock()
	return out
}

// ModelLoads is every model's figures on this member: its request rate
// since the last call (blended with the one before, so a short interval
// does not swing it) and its measured size when loaded. It walks the
// models this member has served and the cache; placement calls it at
// most once per summary interval and when the leader plans.
func (s *placementSource) ModelLoads() map[string]cluster.ModelLoad {
	counts := s.h.Stats.counts()
	now := time.Now()
	out := make(map[string]cluster.ModelLoad)
	s.mu.Lock()
	if s.rates == nil {
		s.rates = map[string]float64{}
	}
	if !s.mLast.IsZero() {
		if dt := now.Sub(s.mLast).Seconds(); dt > 0 {
			alpha := 1 - math.Exp(-dt/rateTau.Seconds())
			for id, c := range counts {
				inst := float64(c-s.mCounts[id]) / dt
				if r := s.rates[id] + alpha*(inst-s.rates[id]); r >= 1e-3 {
					s.rates[id] = r
				} else {
					delete(s.rates, id)
				}
			}
			for id := range s.rates {
				if _, ok := counts[id]; !ok {
					delete(s.rates, id)
				}
			}
		}
	}
	s.mCounts, s.mLast = counts, now
	for id, r := range s.rates {
		out[id] = cluster.ModelLoad{Rate: r}
	}
	s.mu.Unlock()
	for _, e := range s.h.Cache.Loaded() {
		m := out[e.ID]
		m.Bytes = max(m.Bytes, e.Bytes)
		out[e.ID] = m
	}
	return out
}

var _ cluster.ModelLoader = (*placementSource)(nil)

// Estimate is the cache's admission estimate of the version the model
// actor would load: memory_bytes, else the runtime's estimate, else the
// files' size.
func (s *placementSource) Estimate(ctx context.Context, id string) (int64, error) {
	if err := modelhost.ValidID(id); err != nil {
		return 0, err
	}
	v, err := s.h.Store.Latest(ctx, id)
	if err != nil {
		return 0, err
	}
	m, err := s.h.Store.Manifest(ctx, id, v)
	if err != nil {
		return 0, err
	}
	if m.MemoryBytes > 0 {
		return m.MemoryBytes, nil
	}
	if rt, ok := modelhost.LookupRuntime(m.Runtime); ok {
		if me, ok := rt.(modelhost.MemoryEstimator); ok {
			if n := me.EstimateMemory(m); n > 0 {
				return n, nil
			}
		}
	}
	return m.FilesSize(), nil
}

// ReplicaBounds reads min_replicas/max_replicas from the manifest of the
// version the model serves (cached for a minute: the leader asks every
// rebalancing cycle).
func (s *placementSource) ReplicaBounds(ctx context.Context, id string) (int, int) {
	s.mu.Lock()
	if b, ok := s.bounds[id]; ok && time.Since(b.at) < time.Minute {
		s.mu.Unlock()
		return b.lo, b.hi
	}
	s.mu.Unlock()
	var lo, hi int
	if v, err := s.h.Store.Latest(ctx, id); err == nil {
		if m, err := s.h.Store.Manifest(ctx, id, v); err == nil {
			lo, hi = m.MinReplicas, m.MaxReplicas
		}
	}
	s.mu.Lock()
	if s.bounds == nil {
		s.bounds = map[string]replicaBounds{}
	}
	s.bounds[id] = replicaBounds{lo: lo, hi: hi, at: time.Now()}
	s.mu.Unlock()
	return lo, hi
}

type replicaBounds struct {
	lo, hi int
	at     time.Time
}

var _ cluster.ReplicaBounder = (*placementSource)(nil)

// Relieve asks idle model actors on this member to release their models.
func (s *placementSource) Relieve(need int64) { s.h.Pressure(need) }

var _ cluster.Reliever = (*placementSource)(nil)

func (s *placementSource) Loaded(id string) bool { return s.h.Cache.IsLoaded(id) }

var _ cluster.Source = (*placementSource)(nil)
