package manta

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/manta-ml/manta/modelhost"
)

// runtimeCollector exports, at scrape time, what the SDK's member knows
// beyond the actors and the cache: the worker processes of the registered
// runtimes that report them (modelhost.WorkerReporter: the python runtime,
// when a program imports it) and the speculative strategies' counters.
type runtimeCollector struct {
	c *Client

	workers, restarts, pyMem                     *prometheus.Desc
	specReq, specWins, specFall, specHedge, late *prometheus.Desc
	placement                                    *prometheus.Desc
}

func newRuntimeCollector(c *Client) *runtimeCollector {
	d := prometheus.NewDesc
	return &runtimeCollector{
		c:         c,
		workers:   d("manta_python_workers_alive", "Python worker processes running.", nil, nil),
		restarts:  d("manta_python_worker_restarts_total", "Python worker restarts after a crash, kill or stall.", nil, nil),
		pyMem:     d("manta_python_model_memory_bytes", "Measured memory of the Python models (RSS growth of their loads).", nil, nil),
		specReq:   d("manta_speculative_requests_total", "Speculative requests answered, by strategy.", []string{"strategy"}, nil),
		specWins:  d("manta_speculative_wins_total", "Answers produced, by strategy and model.", []string{"strategy", "model"}, nil),
		specFall:  d("manta_speculative_fallbacks_total", "Answers given by a fallback path, by strategy.", []string{"strategy"}, nil),
		specHedge: d("manta_speculative_hedges_total", "Hedged (second) calls fired, by strategy.", []string{"strategy"}, nil),
		late:      d("manta_speculative_late_results_total", "Results dropped because they came after the answer, by strategy.", []string{"strategy"}, nil),
		placement: d("manta_placement_events_total", "Placement events on this member (directory, activator, rebalancer), by kind.", []string{"event"}, nil),
	}
}

func (r *runtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{r.workers, r.restarts, r.pyMem, r.specReq, r.specWins, r.specFall, r.specHedge, r.late, r.placement} {
		ch <- d
	}
}

func (r *runtimeCollector) Collect(ch chan<- prometheus.Metric) {
	var workers modelhost.WorkerStats
	reported := false
	for _, name := range modelhost.Runtimes() {
		rt, _ := modelhost.LookupRuntime(name)
		wr, ok := rt.(modelhost.WorkerReporter)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if st, ok := wr.WorkerStats(ctx); ok {
			workers.Alive += st.Alive
			workers.Restarts += st.Restarts
			workers.MemoryBytes += st.MemoryBytes
			reported = true
		}
		cancel()
	}
	if reported {
		ch <- prometheus.MustNewConstMetric(r.workers, prometheus.GaugeValue, float64(workers.Alive))
		ch <- prometheus.MustNewConstMetric(r.restarts, prometheus.CounterValue, float64(workers.Restarts))
		ch <- prometheus.MustNewConstMetric(r.pyMem, prometheus.GaugeValue, float64(workers.MemoryBytes))
	}
	ps := r.c.member.PlacementStats()
	for event, n := range map[string]int64{
		"lookup": ps.Lookups, "placed": ps.Placed, "refused": ps.Refused, "too_large": ps.TooLarge,
		"duplicate_stopped": ps.Duplicates, "adopted": ps.Adopted, "activated": ps.Activated, "plan": ps.Plans,
		"move_planned": ps.MovesPlanned, "move": ps.Moves, "move_failed": ps.MoveFailures,
		"replica_added": ps.ReplicasAdded, "replica_removed": ps.ReplicasGone,
	} {
		ch <- prometheus.MustNewConstMetric(r.placement, prometheus.CounterValue, float64(n), event)
	}
	for _, st := range r.c.SpeculationStats() {
		ch <- prometheus.MustNewConstMetric(r.specReq, prometheus.CounterValue, float64(st.Requests), st.Strategy)
		ch <- prometheus.MustNewConstMetric(r.specFall, prometheus.CounterValue, float64(st.Fallbacks), st.Strategy)
		ch <- prometheus.MustNewConstMetric(r.specHedge, prometheus.CounterValue, float64(st.Hedges), st.Strategy)
		ch <- prometheus.MustNewConstMetric(r.late, prometheus.CounterValue, float64(st.Late), st.Strategy)
		wins := map[string]int64{} // models past the label cap add up under "other"
		for model, n := range st.Wins {
			wins[r.c.metrics.ModelLabel(model)] += n
		}
		for label, n := range wins {
			ch <- prometheus.MustNewConstMetric(r.specWins, prometheus.CounterValue, float64(n), st.Strategy, label)
		}
	}
}
