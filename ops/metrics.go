package ops

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/manta-ml/manta/actors"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/modelhost"
)

// Namespace prefixes every metric Manta exports.
const Namespace = "manta"

// OtherModel is the model label value shared by every model past the
// cardinality cap (WithMaxModels). A model whose id is literally "other"
// shares that series too.
const OtherModel = "other"

// DefaultMaxModels is the default cap on distinct model label values.
const DefaultMaxModels = 500

// Default histogram buckets.
var (
	// DefaultLatencyBuckets (seconds) span 250µs to 30s: a linear model
	// answers in well under a millisecond, a cold 2 GB model in seconds.
	DefaultLatencyBuckets = []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// DefaultLoadBuckets (seconds) span 10ms to 10 minutes.
	DefaultLoadBuckets = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	// DefaultBatchBuckets are batch sizes (requests per batch).
	DefaultBatchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}
)

// MetricsOption adjusts NewMetrics.
type MetricsOption func(*metricsConfig)

type metricsConfig struct {
	maxModels      int
	latencyBuckets []float64
	loadBuckets    []float64
	batchBuckets   []float64
	noRuntime      bool
	window         int
}

// WithMaxModels caps the distinct values of the model label (default
// DefaultMaxModels). The first n models seen get their own series; later
// ones are counted under OtherModel. n <= 0 means no cap.
func WithMaxModels(n int) MetricsOption { return func(c *metricsConfig) { c.maxModels = n } }

// WithLatencyBuckets sets the buckets (seconds) of the request and predict
// duration histograms.
func WithLatencyBuckets(b []float64) MetricsOption {
	return func(c *metricsConfig) { c.latencyBuckets = b }
}

// WithLoadBuckets sets the buckets (seconds) of the load duration histogram.
func WithLoadBuckets(b []float64) MetricsOption { return func(c *metricsConfig) { c.loadBuckets = b } }

// WithBatchBuckets sets the buckets of the batch size histogram.
func WithBatchBuckets(b []float64) MetricsOption {
	return func(c *metricsConfig) { c.batchBuckets = b }
}

// WithoutRuntimeMetrics leaves out the Go runtime and process collectors
// (go_*, process_*), e.g. when several members share one process.
func WithoutRuntimeMetrics() MetricsOption { return func(c *metricsConfig) { c.noRuntime = true } }

// WithRecentWindow sets how many seconds of per-second latency the status
// page's chart keeps (default 300).
func WithRecentWindow(seconds int) MetricsOption {
	return func(c *metricsConfig) { c.window = seconds }
}

// Metrics holds one member's Prometheus metrics on its own registry.
//
// Per-model series are fed by hooks that the member installs on its
// actors.Host (BatchHook, ErrorHook, ActivateHook, DeactivateHook, or all
// at once with InstallHost) and its modelhost.Cache (CacheHook, set as
// CacheConfig.OnEvent). Per-member gauges are read from the host and cache
// at scrape time (AttachMember). Other parts of Manta add their own
// collectors with Register, using ModelLabel for any per-model label so the
// cardinality cap holds for them too.
//
// All methods are safe for concurrent use; the hooks are cheap (a map read
// and a few atomic adds) and never block.
type Metrics struct {
	reg    *prometheus.Registry
	labels *modelLabels
	recent *recent

	requests      *prometheus.CounterVec
	errors        *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	predict       *prometheus.HistogramVec
	batchSize     *prometheus.HistogramVec
	loadDuration  *prometheus.HistogramVec
	loads         *prometheus.CounterVec
	loadFailures  *prometheus.CounterVec
	evictions     *prometheus.CounterVec
	cacheHits     *prometheus.CounterVec
	activations   *prometheus.CounterVec
	deactivations *prometheus.CounterVec
	feedback      *prometheus.CounterVec
	// versioned are the vectors with a version label: a model's series of
	// a version it no longer serves are deleted from them (versionLabel).
	versioned []*prometheus.MetricVec
	versions  versionLabels

	mu       sync.Mutex
	attached bool
}

// NewMetrics builds the metrics on a new registry (with the Go runtime and
// process collectors unless WithoutRuntimeMetrics).
func NewMetrics(opts ...MetricsOption) (*Metrics, error) {
	cfg := metricsConfig{
		maxModels:      DefaultMaxModels,
		latencyBuckets: DefaultLatencyBuckets,
		loadBuckets:    DefaultLoadBuckets,
		batchBuckets:   DefaultBatchBuckets,
		window:         300,
	}
	for _, o := range opts {
		o(&cfg)
	}
	for name, b := range map[string][]float64{"latency": cfg.latencyBuckets, "load": cfg.loadBuckets, "batch": cfg.batchBuckets} {
		if len(b) == 0 {
			return nil, fmt.Errorf("ops: metrics: %s buckets are empty", name)
		}
		for i := 1; i < len(b); i++ {
			if b[i] <= b[i-1] {
				return nil, fmt.Errorf("ops: metrics: %s buckets must increase, got %v", name, b)
			}
		}
	}
	if cfg.window <= 0 {
		return nil, fmt.Errorf("ops: metrics: recent window %d must be positive", cfg.window)
	}
	m := &Metrics{
		reg:    prometheus.NewRegistry(),
		labels: newModelLabels(cfg.maxModels),
		recent: newRecent(cfg.window),
	}
	model := []string{"model"}
	mv := []string{"model", "version"}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "model", Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "model", Name: name, Help: help, Buckets: buckets}, mv)
	}
	m.requests = counter("requests_total", "Requests answered by the model's actor on this member (successes and errors), by model version (empty: answered before a version was resolved).", mv...)
	m.errors = counter("errors_total", "Requests answered with an error, by model version and error code (not_found, bad_input, load_failed, too_large, overloaded, deadline_exceeded, internal).", "model", "version", "code")
	m.latency = histogram("request_duration_seconds", "Time a request spent in the member: queue, batching and predict.", cfg.latencyBuckets)
	m.predict = histogram("predict_duration_seconds", "Time one batch's Predict call took.", cfg.latencyBuckets)
	m.batchSize = histogram("batch_size", "Requests per batch given to the model.", cfg.batchBuckets)
	m.loadDuration = histogram("load_duration_seconds", "Time a successful load took: fetch, verification and the runtime's load.", cfg.loadBuckets)
	m.loads = counter("loads_total", "Successful loads of a model version into memory.", mv...)
	m.loadFailures = counter("load_failures_total", "Failed loads (fetch, verification, runtime, too_large, overloaded).", mv...)
	m.evictions = counter("evictions_total", "Loaded model versions evicted to make room.", mv...)
	m.cacheHits = counter("cache_hits_total", "Acquires served by a model already loaded.", mv...)
	m.activations = counter("activations_total", "Activations of the model's actor on this member.", model...)
	m.deactivations = counter("deactivations_total", "Deactivations of the model's actor on this member.", model...)
	m.feedback = counter("feedback_total", "Labels handled by the model's activations on this member, by outcome (joined, unknown_id, late, bad_label).", "model", "outcome")
	m.versioned = []*prometheus.MetricVec{m.requests.MetricVec, m.errors.MetricVec, m.latency.MetricVec, m.predict.MetricVec,
		m.batchSize.MetricVec, m.loadDuration.MetricVec, m.loads.MetricVec, m.loadFailures.MetricVec, m.evictions.MetricVec,
		m.cacheHits.MetricVec}
	cs := []prometheus.Collector{m.requests, m.errors, m.latency, m.predict, m.batchSize, m.loadDuration,
		m.loads, m.loadFailures, m.evictions, m.cacheHits, m.activations, m.deactivations, m.feedback}
	if !cfg.noRuntime {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("ops: metrics: %w", err)
		}
	}
	return m, nil
}

// Registry is the registry the metrics live on: gather from it, or add
// collectors to it (Register is the short way).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Register adds a collector (router, Python workers, speculation, ...) to
// the member's registry. Names should follow the conventions of this
// package: the manta_ prefix, base units in names, _total on counters.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Handler serves the registry in the Prometheus exposition formats
// (mount it at GET /metrics). A collector that fails is reported in the
// scrape's errors and the rest is still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg,
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// ModelLabel returns the label value for a model id or actor identity
// ("id@k" counts as id), within the cardinality cap: the id itself for
// the first models seen, OtherModel past the cap. Use it for any
// per-model label of collectors added with Register.
func (m *Metrics) ModelLabel(identity string) string { return m.labels.get(cluster.ModelOf(identity)) }

// BatchHook returns the function for actors.Host.OnBatch: it counts the
// batch's requests and errors and observes their durations, the batch
// size and the predict time.
func (m *Metrics) BatchHook() func(actors.BatchReport) {
	return func(b actors.BatchReport) {
		label := m.labels.get(cluster.ModelOf(b.Model))
		version := m.versionLabel(label, b.Version)
		n := len(b.Durations)
		if n == 0 {
			n = b.Size
		}
		m.requests.WithLabelValues(label, version).Add(float64(n))
		m.batchSize.WithLabelValues(label, version).Observe(float64(b.Size))
		m.predict.WithLabelValues(label, version).Observe(b.Predict.Seconds())
		lat := m.latency.WithLabelValues(label, version)
		for _, d := range b.Durations {
			lat.Observe(d.Seconds())
		}
		errs := 0
		for _, c := range b.Codes {
			if c != "" {
				m.errors.WithLabelValues(label, version, codeLabel(c)).Inc()
				errs++
			}
		}
		m.recent.add(b.Durations, n, errs)
	}
}

// ErrorHook returns the function for actors.Host.OnError: a request
// answered with an error before reaching the model counts as a request
// and as an error of its code.
func (m *Metrics) ErrorHook() func(model, code string) {
	return func(model, code string) {
		label := m.labels.get(cluster.ModelOf(model))
		m.requests.WithLabelValues(label, "").Inc()
		m.errors.WithLabelValues(label, "", codeLabel(code)).Inc()
		m.recent.add(nil, 1, 1) // one request, one error
	}
}

// ActivateHook returns the function for actors.Host.OnActivate.
func (m *Metrics) ActivateHook() func(identity string) {
	return func(identity string) { m.activations.WithLabelValues(m.ModelLabel(identity)).Inc() }
}

// DeactivateHook returns the function for actors.Host.OnDeactivate.
func (m *Metrics) DeactivateHook() func(identity string) {
	return func(identity string) { m.deactivations.WithLabelValues(m.ModelLabel(identity)).Inc() }
}

// CacheHook returns the function for modelhost.CacheConfig.OnEvent: loads
// (with their duration), failed loads, evictions and hits per model.
func (m *Metrics) CacheHook() func(modelhost.CacheEvent) {
	return func(ev modelhost.CacheEvent) {
		id := ev.ID
		if id == "" {
			id, _, _ = strings.Cut(ev.Key, "@")
		}
		label := m.labels.get(id)
		version := ev.Version
		if version == "" {
			_, version, _ = strings.Cut(ev.Key, "@")
		}
		version = m.versionLabel(label, version)
		switch ev.Kind {
		case modelhost.EventLoad:
			m.loads.WithLabelValues(label, version).Inc()
			m.loadDuration.WithLabelValues(label, version).Observe(ev.Duration.Seconds())
		case modelhost.EventLoadFailed:
			m.loadFailures.WithLabelValues(label, version).Inc()
		case modelhost.EventEvict:
			m.evictions.WithLabelValues(label, version).Inc()
		case modelhost.EventHit:
			m.cacheHits.WithLabelValues(label, version).Inc()
		}
	}
}

// InstallHost sets h's OnBatch, OnError, OnActivate, OnDeactivate and OnFeedback to
// this Metrics' hooks, calling any hook already installed first. Install
// before the member serves requests: the hooks are plain fields that the
// host's goroutines read without a lock.
func (m *Metrics) InstallHost(h *actors.Host) {
	batch, errh, act, deact := m.BatchHook(), m.ErrorHook(), m.ActivateHook(), m.DeactivateHook()
	if prev := h.OnBatch; prev != nil {
		h.OnBatch = func(b actors.BatchReport) { prev(b); batch(b) }
	} else {
		h.OnBatch = batch
	}
	if prev := h.OnError; prev != nil {
		h.OnError = func(model, code string) { prev(model, code); errh(model, code) }
	} else {
		h.OnError = errh
	}
	if prev := h.OnActivate; prev != nil {
		h.OnActivate = func(id string) { prev(id); act(id) }
	} else {
		h.OnActivate = act
	}
	if prev := h.OnDeactivate; prev != nil {
		h.OnDeactivate = func(id string) { prev(id); deact(id) }
	} else {
		h.OnDeactivate = deact
	}
	fb := m.FeedbackHook()
	if prev := h.OnFeedback; prev != nil {
		h.OnFeedback = func(model string, counts [4]int) { prev(model, counts); fb(model, counts) }
	} else {
		h.OnFeedback = fb
	}
}

// codeLabel keeps the code label in the closed set (anything else is
// internal), so a stray string cannot grow the series.
func codeLabel(code string) string {
	if _, err := api.ParseCode(code); err != nil {
		return "internal"
	}
	return code
}

// ErrAttached is returned by AttachMember when a member is already attached.
var ErrAttached = errors.New("ops: a member is already attached to these metrics")

// Recent returns the member's per-second request latency over the recent
// window (the status page's chart), oldest first.
func (m *Metrics) Recent() []RecentPoint { return m.recent.points() }

// modelLabels hands out model label values up to a cap.
type modelLabels struct {
	max   int
	known sync.Map // id -> struct{}
	mu    sync.Mutex
	n     int
}

func newModelLabels(max int) *modelLabels { return &modelLabels{max: max} }

func (l *modelLabels) get(id string) string {
	if id == "" {
		return OtherModel
	}
	if _, ok := l.known.Load(id); ok {
		return id
	}
	if l.max <= 0 {
		l.known.Store(id, struct{}{})
		return id
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.known.Load(id); ok {
		return id
	}
	if l.n >= l.max {
		return OtherModel
	}
	l.n++
	l.known.Store(id, struct{}{})
	return id
}

// MaxVersionsPerModel is how many versions of one model keep their own
// series: when a model serves a version beyond the last
// MaxVersionsPerModel it served, the series of the version seen least
// recently are deleted, so the version label multiplies the model cap by
// at most this much (old versions' counters end; rates over them stop as
// a retired pod's would).
const MaxVersionsPerModel = 3

// versionLabels remembers, per model label, the versions with series,
// most recently first seen last.
type versionLabels struct {
	mu   sync.RWMutex
	seen map[versionKey]struct{}
	by   map[string][]string // model -> versions, oldest first
}

// versionKey is a (model, version) pair: a map key built without
// allocating (a concatenated string cost an allocation per batch).
type versionKey struct{ model, version string }

// versionLabel returns the version label value for a model label: the
// version itself (empty stays empty), or empty for OtherModel, whose
// series pool models past the cap. The first time a model shows a version
// it is recorded, and a model's oldest version past MaxVersionsPerModel
// loses its series.
func (m *Metrics) versionLabel(model, version string) string {
	if version == "" || model == OtherModel {
		return ""
	}
	v := &m.versions
	key := versionKey{model, version}
	v.mu.RLock()
	_, ok := v.seen[key]
	v.mu.RUnlock()
	if ok {
		return version
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.seen[key]; ok {
		return version
	}
	if v.by == nil {
		v.by, v.seen = map[string][]string{}, map[versionKey]struct{}{}
	}
	list := append(v.by[model], version)
	for len(list) > MaxVersionsPerModel {
		old := list[0]
		list = list[1:]
		delete(v.seen, versionKey{model, old})
		for _, vec := range m.versioned {
			vec.DeletePartialMatch(prometheus.Labels{"model": model, "version": old})
		}
	}
	v.by[model] = list
	v.seen[key] = struct{}{}
	return version
}
