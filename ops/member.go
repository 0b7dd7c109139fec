package ops

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/manta-ml/manta/actors"
	"github.com/manta-ml/manta/modelhost"
)

// MemberOption adjusts AttachMember.
type MemberOption func(*memberCollector)

// WithQueueDepth reports f() as manta_member_queue_depth_requests: requests
// waiting in this member's model mailboxes (for a host that can count
// them). Without it the gauge is not exported.
func WithQueueDepth(f func() int) MemberOption {
	return func(c *memberCollector) { c.queueDepth = f }
}

// AttachMember exports the member's gauges and counters, read from host
// and cache at scrape time: model memory (budget, used, pinned, high
// water), models loaded, pinned and loading, active activations, the
// host's and cache's own counters, and each loaded model's bytes. host or
// cache may be nil (a client process has neither). Only one member can be
// attached to a Metrics (ErrAttached).
func (m *Metrics) AttachMember(host *actors.Host, cache *modelhost.Cache, opts ...MemberOption) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.attached {
		return ErrAttached
	}
	c := &memberCollector{host: host, cache: cache, labels: m.labels}
	for _, o := range opts {
		o(c)
	}
	if err := m.reg.Register(c); err != nil {
		return err
	}
	if host != nil {
		if err := m.reg.Register(&qualityCollector{host: host, labels: m.labels}); err != nil {
			return err
		}
	}
	m.attached = true
	return nil
}

var (
	memberLabel = []string{"member"}

	descInfo         = memberDesc("info", "Always 1; the member label names this member (as in served_by).")
	descBudget       = memberDesc("model_memory_budget_bytes", "Memory the member's loaded models may use.")
	descUsed         = memberDesc("model_memory_used_bytes", "Memory used by loaded models plus reservations of loads in flight.")
	descPinned       = memberDesc("model_memory_pinned_bytes", "Memory of loaded models pinned by an active actor (not evictable).")
	descHighWater    = memberDesc("model_memory_high_water_bytes", "Highest model memory used since the member started.")
	descLoaded       = memberDesc("models_loaded", "Model versions loaded in memory.")
	descPinnedModels = memberDesc("models_pinned", "Loaded model versions pinned by an active actor.")
	descLoading      = memberDesc("models_loading", "Loads in flight.")
	descActive       = memberDesc("activations_active", "Model actors active on this member.")
	descActTotal     = memberDesc("activations_total", "Model actor activations on this member.")
	descDeactTotal   = memberDesc("deactivations_total", "Model actor deactivations on this member.")
	descBatches      = memberDesc("batches_total", "Batches run by the member's model actors.")
	descLoads        = memberDesc("cache_loads_total", "Successful model loads.")
	descHits         = memberDesc("cache_hits_total", "Acquires served by a loaded model.")
	descShared       = memberDesc("cache_shared_loads_total", "Acquires that joined a load already in flight (single flight).")
	descEvictions    = memberDesc("cache_evictions_total", "Model versions evicted to make room.")
	descFailures     = memberDesc("cache_load_failures_total", "Failed loads.")
	descQueue        = memberDesc("queue_depth_requests", "Requests waiting in the member's model mailboxes.")
	descModelMemory  = prometheus.NewDesc(Namespace+"_model_memory_bytes",
		"Memory of the model's loaded versions on this member (measured by the runtime).", []string{"model"}, nil)
)

func memberDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "member", name), help, memberLabel, nil)
}

// memberCollector reads a member's host and cache at scrape time.
type memberCollector struct {
	host       *actors.Host
	cache      *modelhost.Cache
	labels     *modelLabels
	queueDepth func() int
}

func (c *memberCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descBudget, descUsed, descPinned, descHighWater, descLoaded,
		descPinnedModels, descLoading, descActive, descActTotal, descDeactTotal, descBatches, descLoads, descHits,
		descShared, descEvictions, descFailures, descModelMemory} {
		ch <- d
	}
	if c.queueDepth != nil {
		ch <- descQueue
	}
}

func (c *memberCollector) Collect(ch chan<- prometheus.Metric) {
	member := ""
	if c.host != nil {
		member = c.host.Member
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, member)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, member)
	}
	gauge(descInfo, 1)
	if c.cache != nil {
		st := c.cache.Stats()
		gauge(descBudget, float64(st.Budget))
		gauge(descUsed, float64(st.Used))
		gauge(descPinned, float64(st.Pinned))
		gauge(descHighWater, float64(st.HighWater))
		gauge(descLoaded, float64(st.Models))
		gauge(descLoading, float64(st.Loading))
		counter(descLoads, float64(st.Loads))
		counter(descHits, float64(st.Hits))
		counter(descShared, float64(st.Shared))
		counter(descEvictions, float64(st.Evictions))
		counter(descFailures, float64(st.Failures))
		pinned := 0
		bytes := map[string]float64{}
		for _, e := range c.cache.Loaded() {
			if e.Refs > 0 {
				pinned++
			}
			bytes[c.labels.get(e.ID)] += float64(e.Bytes)
		}
		gauge(descPinnedModels, float64(pinned))
		for label, b := range bytes {
			ch <- prometheus.MustNewConstMetric(descModelMemory, prometheus.GaugeValue, b, label)
		}
	}
	if c.host != nil {
		ct := c.host.Counters()
		gauge(descActive, float64(ct.Active))
		counter(descActTotal, float64(ct.Activations))
		counter(descDeactTotal, float64(ct.Deactivations))
		counter(descBatches, float64(ct.Batches))
	}
	if c.queueDepth != nil {
		gauge(descQueue, float64(c.queueDepth()))
	}
}

var _ prometheus.Collector = (*memberCollector)(nil)
