package actors

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/latency"
)

// StatsRegistry keeps per-model serving statistics on one member. The
// counters (requests, errors, durations, min, max) survive deactivation:
// they are "since the first request on this member". The quantiles are
// recent: they come from a latency histogram whose counts halve every
// statsHalfLife, so a strategy reading p95 sees the latency of the last
// minute or so, not an average over the member's life.
//
// Memory: a model not seen for statsIdle is compacted (its histogram freed,
// its last quantiles kept), so a member that has served 10^5 models keeps a
// few hundred bytes for each idle one. Compaction is lazy and bounded: each
// record call compacts at most compactPerCall of the longest-idle models,
// found at the tail of a list kept in order of last use (O(1) per record;
// no timer, no walk over the models).
type StatsRegistry struct {
	mu     sync.Mutex
	models map[string]*modelStats
	// hot is the list of models with a histogram, most recently seen
	// first; hot.prev is the tail (longest idle).
	hot modelStats
	// served counts every request recorded (served or failed), for the
	// member's request rate without a walk over the models.
	served atomic.Int64
	// now is the clock (tests move it).
	now func() time.Time
}

// NewStatsRegistry returns an empty registry.
func NewStatsRegistry() *StatsRegistry {
	r := &StatsRegistry{models: map[string]*modelStats{}, now: time.Now}
	r.hot.prev, r.hot.next = &r.hot, &r.hot
	return r
}

const (
	// statsHalfLife is how fast the latency histogram forgets: a sample's
	// weight halves every statsHalfLife, so samples older than about a
	// minute weigh under 2% against the newest.
	statsHalfLife = 10 * time.Second
	// statsIdle is how long a model goes unseen before its histogram is
	// freed.
	statsIdle = 10 * time.Minute
	// compactPerCall bounds the compaction work of one record call.
	compactPerCall = 8
)

type modelStats struct {
	version     string
	count       int64
	errors      int64
	total       int64
	min, max    int64
	since       int64 // unix ns of the first request
	seen        int64 // unix ns of the last request
	batches     int64
	memoryBytes int64
	// recent is the decaying histogram; nil once compacted, when
	// p50/p95/p99 hold its last quantiles.
	recent        *recentLatency
	p50, p95, p99 int64
	// prev, next link the registry's hot list (nil when compacted).
	prev, next *modelStats
}

// recentLatency is a histogram whose counts are halved for every whole
// statsHalfLife since decayed: applied lazily when it is next read or
// written, so an idle model costs no work.
type recentLatency struct {
	hist    latency.Histogram
	decayed int64 // unix ns up to which the decay is applied
}

func (l *recentLatency) decay(now int64) {
	k := (now - l.decayed) / int64(statsHalfLife)
	if k <= 0 {
		return
	}
	if k >= 60 {
		l.hist.Reset() // 2^-60: nothing left worth weighing
	} else {
		l.hist.Scale(math.Ldexp(1, -int(k)))
	}
	l.decayed += k * int64(statsHalfLife)
}

// touch returns id's stats for a record at now, moving it to the front of
// the hot list (giving it a histogram again if it was compacted), and
// compacts a few of the longest-idle models. r.mu held.
func (r *StatsRegistry) touch(id string, now int64) *modelStats {
	s := r.models[id]
	if s == nil {
		s = &modelStats{since: now, min: math.MaxInt64}
		r.models[id] = s
	}
	s.seen = now
	if s.next != nil { // unlink
		s.prev.next, s.next.prev = s.next, s.prev
	}
	s.next, s.prev = r.hot.next, &r.hot
	r.hot.next.prev = s
	r.hot.next = s
	if s.recent == nil {
		s.recent = &recentLatency{decayed: now}
	}
	for i := 0; i < compactPerCall; i++ {
		tail := r.hot.prev
		if tail == &r.hot || now-tail.seen < int64(statsIdle) {
			break
		}
		tail.compact(now)
	}
	return s
}

// compact frees the histogram, keeping its last quantiles, and leaves the
// hot list.
func (s *modelStats) compact(now int64) {
	s.quantiles(now)
	s.recent = nil
	s.prev.next, s.next.prev = s.next, s.prev
	s.prev, s.next = nil, nil
}

// quantiles refreshes p50/p95/p99 from the histogram, if any.
func (s *modelStats) quantiles(now int64) {
	if s.recent == nil {
		return
	}
	s.recent.decay(now)
	if s.recent.hist.Count() == 0 {
		return // no timed request yet: keep what was known
	}
	s.p50 = s.recent.hist.Quantile(0.50, s.max)
	s.p95 = s.recent.hist.Quantile(0.95, s.max)
	s.p99 = s.recent.hist.Quantile(0.99, s.max)
}

// RecordBatch records one batch of n requests served by version, each taking
// durations[i], with errs of them failed.
func (r *StatsRegistry) RecordBatch(id, version string, durations []int64, errs int, memory int64) {
	now := r.now().UnixNano()
	r.mu.Lock()
	s := r.touch(id, now)
	s.version = version
	s.batches++
	s.errors += int64(errs)
	s.memoryBytes = memory
	r.served.Add(int64(len(durations) + errs))
	s.recent.decay(now)
	for _, d := range durations {
		s.count++
		s.total += d
		if d < s.min {
			s.min = d
		}
		if d > s.max {
			s.max = d
		}
		s.recent.hist.Add(d)
	}
	r.mu.Unlock()
}

// RecordError counts a request that failed before reaching the model.
func (r *StatsRegistry) RecordError(id string) {
	now := r.now().UnixNano()
	r.mu.Lock()
	r.touch(id, now).errors++
	r.mu.Unlock()
	r.served.Add(1)
}

// Snapshot returns the stats of one model (zero values when unknown). The
// quantiles are recent (see StatsRegistry); the rest is cumulative.
func (r *StatsRegistry) Snapshot(id string) *api.ModelStats {
	now := r.now().UnixNano()
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
		Since:         s.since,
		Batches:       s.batches,
		MemoryBytes:   s.memoryBytes,
	}
	if s.count > 0 {
		s.quantiles(now)
		out.MinDuration = s.min
		out.P50, out.P95, out.P99 = s.p50, s.p95, s.p99
	}
	return out
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
