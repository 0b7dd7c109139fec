package ops

import (
	"math"
	"sync"
	"time"

	"github.com/manta-ml/manta/internal/latency"
)

// RecentPoint is one second of a member's traffic (the status page's
// latency chart). Latencies are zero in a second without timed requests.
type RecentPoint struct {
	Unix     int64   `json:"t"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	MeanMS   float64 `json:"mean_ms"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
}

type recentSlot struct {
	sec      int64
	requests int64
	errors   int64
	timed    int64
	sum      int64
	max      int64
	hist     latency.Histogram
}

// recent keeps per-second request counts and latency histograms for the
// last len(slots) seconds in a ring indexed by the unix second.
type recent struct {
	mu    sync.Mutex
	slots []recentSlot
	now   func() time.Time
}

func newRecent(window int) *recent {
	return &recent{slots: make([]recentSlot, window), now: time.Now}
}

// add records requests (of which durations were timed) and errors in the
// current second.
func (r *recent) add(durations []time.Duration, requests, errors int) {
	sec := r.now().Unix()
	r.mu.Lock()
	s := &r.slots[int(sec%int64(len(r.slots)))]
	if s.sec != sec {
		*s = recentSlot{sec: sec}
	}
	s.requests += int64(requests)
	s.errors += int64(errors)
	for _, d := range durations {
		s.timed++
		s.sum += int64(d)
		s.max = max(s.max, int64(d))
		s.hist.Add(int64(d))
	}
	r.mu.Unlock()
}

// points returns every second of the window, oldest first; the current
// second is included (it is still filling).
func (r *recent) points() []RecentPoint {
	now := r.now().Unix()
	n := int64(len(r.slots))
	out := make([]RecentPoint, 0, n)
	r.mu.Lock()
	defer r.mu.Unlock()
	for sec := now - n + 1; sec <= now; sec++ {
		p := RecentPoint{Unix: sec}
		if sec >= 0 {
			if s := &r.slots[int(sec%n)]; s.sec == sec {
				p.Requests, p.Errors = s.requests, s.errors
				if s.timed > 0 {
					p.MeanMS = ms(float64(s.sum) / float64(s.timed))
					p.MaxMS = ms(float64(s.max))
					p.P50MS = ms(float64(s.hist.Quantile(0.50, s.max)))
					p.P99MS = ms(float64(s.hist.Quantile(0.99, s.max)))
				}
			}
		}
		out = append(out, p)
	}
	return out
}

func ms(ns float64) float64 { return math.Round(ns/1e3) / 1e3 }
