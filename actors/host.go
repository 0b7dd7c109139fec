package actors

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/quality"
)

// Host is what model actors on one member share: the store, the member's
// memory cache, stats and settings. Build one per member and register its
// Kind with the cluster.
type Host struct {
	Store modelhost.Store
	Cache *modelhost.Cache
	// Member names this member in responses (served_by).
	Member string
	// IdleTimeout deactivates an actor that received nothing for this long.
	IdleTimeout time.Duration
	// DefaultBatch applies when a manifest sets no batch config.
	DefaultBatch modelhost.Batch
	// MaxInflightBatches bounds concurrent Predict calls per actor.
	MaxInflightBatches int
	// DefaultDeadline bounds a request that carries no deadline.
	DefaultDeadline time.Duration
	// LoadTimeout bounds one load of a model version: the store reads,
	// the fetch and verification of its files, the runtime's Load, and
	// the wait for room in the cache (0: DefaultLoadTimeout). A load that
	// runs out of time is load_failed.
	LoadTimeout time.Duration
	// ReloadTimeout bounds a reload: re-reading the version to serve and
	// loading a new one beside the old (0: DefaultReloadTimeout). A reload
	// that runs out of time answers load_failed and the old version keeps
	// serving; the actor can go idle again.
	//
	// Loads and reloads also end when their actor stops (deactivation, a
	// move, the member shutting down).
	ReloadTimeout time.Duration
	Stats         *StatsRegistry
	Logger        *slog.Logger

	activations   atomic.Int64
	deactivations atomic.Int64
	batches       atomic.Int64
	queue         mailboxQueue // predict requests in the model actors' mailboxes (QueueDepth)

	lastPressure atomic.Int64

	// PollRate bounds the version checks PollVersions makes per second on
	// this member (default 200): with many models active, a pass over
	// them takes longer than the interval rather than bursting.
	PollRate float64

	mu     sync.Mutex
	active map[string]*actor.PID
	system *actor.ActorSystem
	// order lists the active identities for PollVersions' round robin
	// (pos is each one's index; removal swaps the last in); stamps are the
	// store's version stamps last seen per identity (VersionStamper).
	order  []string
	pos    map[string]int
	cursor int
	stamps map[string]string
	// OnActivate, OnDeactivate are optional hooks (metrics, tests).
	OnActivate   func(identity string)
	OnDeactivate func(identity string)
	// OnReady, if set, is called when an activation has loaded its model
	// and starts serving (a make-before-break move's target loads first,
	// then takes over).
	OnReady func(identity string)
	// OnBatch, if set, is called after every batch with the model, the
	// version, the batch size, the time Predict took, and each request's
	// outcome: its time in the member (queue+batch+predict) and its error
	// code ("" on success). It runs on the batch's worker goroutine.
	OnBatch func(b BatchReport)
	// OnError, if set, is called for a request answered with an error
	// before reaching the model (not found, deadline passed in the queue,
	// load failure), with the model id and the error code's name.
	OnError func(model, code string)

	// Quality bounds the live-quality state of a monitored activation
	// (docs/ARCHITECTURE.md §2.4): its ring of predictions, its window of
	// joined labels, its drift histograms. Zero fields take
	// quality's defaults.
	Quality quality.Config
	// OnFeedback, if set, is called for every feedback message an
	// activation handled, with the model id and how many labels had each
	// outcome (quality.Outcome's names); on the actor goroutine.
	OnFeedback func(model string, counts [4]int)
	// Locate, if set, finds identity's live activation without activating
	// it (cluster.Member's directory, NoActivate). A stopping activation
	// with a join state asks it where its identity lives now: after a
	// move, that is the activation that took over, and the state is sent
	// there.
	Locate func(ctx context.Context, identity string) *actor.PID

	qmu     sync.Mutex
	tracked map[string]*quality.Tracker // identity -> tracker of its live activation
	stash   map[string]*quality.Tracker // identity -> tracker of a stopped activation
	stashed []string                    // stash's identities, oldest first
}

// BatchReport describes one finished batch (Host.OnBatch).
type BatchReport struct {
	Model, Version string
	Size           int
	Predict        time.Duration
	Durations      []time.Duration
	Codes          []string
}

// memoryPressure asks an actor to release its model if it is idle.
type memoryPressure struct{}

// Pressure is the cache's OnPressure hook: a load is waiting for room held
// by pinned models, so every idle actor on this member deactivates (its model
// stays loaded but unpinned, and the cache evicts by policy). Calls are
// throttled to one per 20 ms.
func (h *Host) Pressure(need int64) {
	now := time.Now().UnixNano()
	last := h.lastPressure.Load()
	if now-last < int64(20*time.Millisecond) || !h.lastPressure.CompareAndSwap(last, now) {
		return
	}
	h.mu.Lock()
	pids := make([]*actor.PID, 0, len(h.active))
	for _, pid := range h.active {
		pids = append(pids, pid)
	}
	sys := h.system
	h.mu.Unlock()
	if sys == nil {
		return
	}
	for _, pid := range pids {
		sys.Root.Send(pid, &memoryPressure{})
	}
}

// Counters are a member's actor counters.
type Counters struct {
	Activations   int64
	Deactivations int64
	Batches       int64
	Active        int
}

// Default bounds of loads and reloads (Host.LoadTimeout,
// Host.ReloadTimeout): a 2 GB model from a slow store needs minutes; a
// store that has not answered in ten has hung.
const (
	DefaultLoadTimeout   = 10 * time.Minute
	DefaultReloadTimeout = 10 * time.Minute
)

func (h *Host) loadTimeout() time.Duration {
	if h.LoadTimeout > 0 {
		return h.LoadTimeout
	}
	return DefaultLoadTimeout
}

func (h *Host) reloadTimeout() time.Duration {
	if h.ReloadTimeout > 0 {
		return h.ReloadTimeout
	}
	return DefaultReloadTimeout
}

// NewHost fills defaults: idle timeout 5 minutes, batches of up to 64
// waiting at most 2 ms when the model is busy, one in-flight batch per core,
// loads and reloads bounded at 10 minutes each.
func NewHost(store modelhost.Store, cache *modelhost.Cache, member string) *Host {
	return &Host{
		Store:              store,
		Cache:              cache,
		Member:             member,
		IdleTimeout:        5 * time.Minute,
		DefaultBatch:       modelhost.Batch{MaxSize: 64, MaxWaitMS: 2},
		MaxInflightBatches: runtime.GOMAXPROCS(0),
		DefaultDeadline:    30 * time.Second,
		LoadTimeout:        DefaultLoadTimeout,
		ReloadTimeout:      DefaultReloadTimeout,
		Stats:              NewStatsRegistry(),
		active:             map[string]*actor.PID{},
	}
}

// Kind is the cluster kind for model actors hosted by h.
func (h *Host) Kind() *pcluster.Kind {
	return pcluster.NewKind(cluster.KindModel, actor.PropsFromProducer(func() actor.Actor {
		return &modelActor{host: h}
	}, actor.WithDispatcher(mailboxes), actor.WithMailbox(actor.Unbounded(&h.queue))))
}

// Counters returns the member's actor counters.
func (h *Host) Counters() Counters {
	h.mu.Lock()
	n := len(h.active)
	h.mu.Unlock()
	return Counters{
		Activations:   h.activations.Load(),
		Deactivations: h.deactivations.Load(),
		Batches:       h.batches.Load(),
		Active:        n,
	}
}

// MemberName names this member (Member, as in served_by).
func (h *Host) MemberName() string { return h.Member }

// ServedModels lists the models with stats on this member (Stats.Models).
func (h *Host) ServedModels() []string { return h.Stats.Models() }

// ModelStats is one model's stats on this member (Stats.Snapshot; Since 0:
// never served here).
func (h *Host) ModelStats(id string) *api.ModelStats { return h.Stats.Snapshot(id) }

// Active lists the identities activated on this member.
func (h *Host) Active() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.active))
	for id := range h.active {
		out = append(out, id)
	}
	return out
}

// Stop stops identity's activation on this member, as a move or a
// directory's duplicate check does, whether or not a batch is running
// (what runs finishes and is answered; what is queued is handed back to
// its callers to retry). It reports whether there was one.
func (h *Host) Stop(identity string) bool {
	h.mu.Lock()
	pid, sys := h.active[identity], h.system
	h.mu.Unlock()
	if pid == nil || sys == nil {
		return false
	}
	sys.Root.Poison(pid)
	return true
}

func (h *Host) activated(sys *actor.ActorSystem, identity string, pid *actor.PID) {
	h.mu.Lock()
	h.system = sys
	h.mu.Unlock()
	h.activations.Add(1)
	h.mu.Lock()
	h.active[identity] = pid
	if h.pos == nil {
		h.pos = map[string]int{}
	}
	if _, ok := h.pos[identity]; !ok {
		h.pos[identity] = len(h.order)
		h.order = append(h.order, identity)
	}
	h.mu.Unlock()
	if h.OnActivate != nil {
		h.OnActivate(identity)
	}
}

func (h *Host) deactivated(identity string, pid *actor.PID) {
	h.deactivations.Add(1)
	h.mu.Lock()
	if cur, ok := h.active[identity]; ok && cur.Equal(pid) {
		delete(h.active, identity)
		if i, ok := h.pos[identity]; ok {
			last := len(h.order) - 1
			h.order[i] = h.order[last]
			h.pos[h.order[i]] = i
			h.order = h.order[:last]
			delete(h.pos, identity)
		}
		delete(h.stamps, identity)
	}
	h.mu.Unlock()
	if h.OnDeactivate != nil {
		h.OnDeactivate(identity)
	}
}

func (h *Host) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}
