package actors

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/manta-ml/manta/api"
)

// StatsRegistry keeps per-model serving statistics on one member. They
// survive deactivation (stats are "since the first request on this member").
type StatsRegistry struct {
	mu     sync.Mutex
	models map[string]*modelStats
	// served counts every request recorded (served or failed), for the
	// member's request rate without a walk over the models.
	served atomic.Int64
}

// NewStatsRegistry returns an empty registry.
func NewStatsRegistry() *StatsRegistry {
	return &StatsRegistry{models: map[string]*modelStats{}}
}

// latency histogram: log-spaced buckets from 1µs to ~100s.
const (
	histBuckets = 96
	histMin     = float64(time.Microsecond)
	histGrowth  = 1.2115 // (1e8)^(1/96)
)

type modelStats struct {
	version     string
	count       int64
	errors      int64
	total       int64
	min, max    int64
	since       time.Time
	batches     int64
	memoryBytes int64
	hist        [histBuckets + 1]int64
}

func bucketOf(d int64) int {
	if float64(d) <= histMin {
		return 0
	}
	b := int(math.Log(float64(d)/histMin)/math.Log(histGrowth)) + 1
	if b > histBuckets {
		b = histBuckets
	}
	return b
}

func bucketUpper(b int) int64 {
	return int64(histMin * math.Pow(histGrowth, float64(b)))
}

func (r *StatsRegistry) get(id string) *modelStats {
	s := r.models[id]
	if s == nil {
		s = &modelStats{since: time.Now(), min: math.MaxInt64}
		r.models[id] = s
	}
	return s
}

// RecordBatch records one batch of n requests served by version, each taking
// durations[i], with errs of them failed.
func (r *StatsRegistry) RecordBatch(id, version string, durations []int64, errs int, memory int64) {
	r.mu.Lock()
	s := r.get(id)
	s.version = version
	s.batches++
	s.errors += int64(errs)
	s.memoryBytes = memory
	r.served.Add(int64(len(durations) + errs))
	for _, d := range durations {
		s.count++
		s.total += d
		if d < s.min {
			s.min = d
		}
		if d > s.max {
			s.max = d
		}
		s.hist[bucketOf(d)]++
	}
	r.mu.Unlock()
}

// RecordError counts a request that failed before reaching the model.
func (r *StatsRegistry) RecordError(id string) {
	r.mu.Lock()
	r.get(id).errors++
	r.mu.Unlock()
	r.served.Add(1)
}

// Snapshot returns the stats of one model (zero values when unknown).
func (r *StatsRegistry) Snapshot(id string) *api.ModelStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.models[id]
	if !ok {
		return &api.ModelStats{ModelId: id}
	}
	out := &api.ModelStats{
		ModelId:       id,
		Version:       s.version,
		Count:         s.count,
		Errors:        s.errors,
		TotalDuration: s.total,
		MaxDuration:   s.max,
		Since:         s.since.UnixNano(),
		Batches:       s.batches,
		MemoryBytes:   s.memoryBytes,
	}
	if s.count > 0 {
		out.MinDuration = s.min
		out.P50 = s.quantile(0.50)
		out.P95 = s.quantile(0.95)
		out.P99 = s.quantile(0.99)
	}
	return out
}

func (s *modelStats) quantile(q float64) int64 {
	want := int64(math.Ceil(q * float64(s.count)))
	var seen int64
	for b, n := range s.hist {
		seen += n
		if seen >= want && n > 0 {
			u := bucketUpper(b)
			if u > s.max {
				u = s.max
			}
			return u
		}
	}
	return s.max
}

// Models lists the models with stats, sorted.
func (r *StatsRegistry) Models() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.models))
	for id := range r.models {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
