package manta

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/manta-ml/manta/actors"
	"github.com/manta-ml/manta/actors/strategy"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/modelhost"
)

// StrategyStats are the counters of one speculative strategy: requests,
// errors, deadline misses, fallbacks, calls, hedges fired, late results and
// wins per model.
type StrategyStats = strategy.StrategyStats

// CandidateStatsTTL is how long the SDK uses a model's latency stats (from
// its model actor) and manifest quality (from the store) before it asks
// again. Refreshes run in the background: a speculative request never waits
// for a stats round trip.
const CandidateStatsTTL = 3 * time.Second

// candidateTTL is CandidateStatsTTL (in ns), changed by tests only.
var candidateTTL atomic.Int64

func init() { candidateTTL.Store(int64(CandidateStatsTTL)) }

// WithParams passes params to a speculative request's strategy (see each
// strategy's documentation, e.g. "smart", "fast", "delay", "k"). Other
// requests take no params: Predict fails with ErrBadInput when given some.
func WithParams(params map[string]string) Option {
	return func(o *callOptions) {
		if o.params == nil {
			o.params = make(map[string]string, len(params))
		}
		for k, v := range params {
			o.params[k] = v
		}
	}
}

// Strategies returns the names of the registered speculative strategies,
// sorted: the seven built-ins and any registered with
// strategy.RegisterStrategy.
func Strategies() []string { return strategy.Strategies() }

// Speculate serves payload with a speculative strategy over several models
// (docs/ARCHITECTURE.md §7) and returns at once with a Ref. A
// collector actor, spawned for this request on this client's actor system,
// calls the models the strategy picks, when it picks them, and the Ref
// completes with the strategy's answer: Result names the strategy, the
// model(s) and version(s) that produced the output, and how many calls were
// made. Every request ends by its deadline (the earliest of ctx's and the
// options'): with the strategy's answer or ErrDeadlineExceeded.
//
// models are model ids (or "id@k" replicas), the preferred one first; an
// empty list, an invalid or repeated id, an unknown strategy or params it
// rejects give ErrBadInput. WithParams sets the strategy's params;
// WithVersion does not apply (ErrBadInput).
//
// The strategy sees each model's latency percentiles, as its model actor
// measured them, and its manifest quality. Both are cached for
// CandidateStatsTTL; asking for them activates a model that is not active.
// A client without a store (Connect) gives strategies no quality.
//
// Cancelling ctx completes the Ref with ctx's error; the collector still
// runs to its answer and is counted in SpeculationStats.
func (c *Client) Speculate(ctx context.Context, strategyName string, models []string, payload []byte, opts ...Option) *Ref {
	var o callOptions
	for _, f := range opts {
		f(&o)
	}
	now := time.Now()
	deadline := c.deadlineAt(ctx, now, o)
	if o.version != "" {
		return c.failedRef(now, deadline, fmt.Errorf("%w: speculate: WithVersion does not apply to a speculative request", ErrBadInput))
	}
	req := &api.PredictRequest{
		RequestId:   o.requestID,
		Payload:     payload,
		ContentType: o.contentType,
		Deadline:    deadline.UnixNano(),
		Meta:        o.meta,
	}
	if req.RequestId == "" {
		req.RequestId = c.nextRequestID()
	}
	return c.speculate(ctx, strategyName, models, req, o.params, now, deadline)
}

// SpeculateRequest is Speculate for a request that is already a message (the
// router's entries with a strategy): it waits for the answer and never
// returns nil; every failure is in the response's Error. The strategy runs
// with its default params. req.Deadline, when set, bounds the request.
func (c *Client) SpeculateRequest(ctx context.Context, strategyName string, models []string, req *api.PredictRequest) *api.PredictResponse {
	now := time.Now()
	deadline := c.deadlineAt(ctx, now, callOptions{})
	if req.Deadline > 0 {
		if d := time.Unix(0, req.Deadline); d.Before(deadline) {
			deadline = d
		}
	}
	r := &api.PredictRequest{
		ModelId:     req.ModelId,
		RequestId:   req.RequestId,
		Payload:     req.Payload,
		ContentType: req.ContentType,
		Deadline:    deadline.UnixNano(),
		Meta:        req.Meta,
	}
	if r.RequestId == "" {
		r.RequestId = c.nextRequestID()
	}
	if r.ModelId == "" && len(models) > 0 {
		r.ModelId = models[0]
	}
	var err error
	if req.Version != "" {
		err = fmt.Errorf("%w: speculate: a version pin does not apply to a speculative request", ErrBadInput)
	} else {
		var resp any
		resp, err = c.speculate(ctx, strategyName, models, r, nil, now, deadline).response(ctx)
		if err == nil {
			if pr, ok := resp.(*api.PredictResponse); ok {
				return pr
			}
			err = fmt.Errorf("%w: unexpected answer %T", ErrInternal, resp)
		}
	}
	return &api.PredictResponse{RequestId: r.RequestId, ModelId: r.ModelId, Strategy: strategyName, Error: api.ErrorFrom(err)}
}

// SpeculationStats returns the counters of every strategy this client ran,
// sorted by strategy name.
func (c *Client) SpeculationStats() []StrategyStats {
	cs, err := c.collectors()
	if err != nil {
		return nil
	}
	return cs.Stats().Snapshot()
}

func (c *Client) speculate(ctx context.Context, name string, models []string, req *api.PredictRequest,
	params map[string]string, now, deadline time.Time) *Ref {
	if err := checkModels(models); err != nil {
		return c.failedRef(now, deadline, err)
	}
	if err := c.checkPayload("speculate:"+name, len(req.Payload)); err != nil {
		return c.failedRef(now, deadline, err)
	}
	st, err := strategy.New(name, params)
	if err != nil {
		return c.failedRef(now, deadline, fmt.Errorf("speculate: %w", err))
	}
	cs, err := c.collectors()
	if err != nil {
		return c.failedRef(now, deadline, err)
	}
	cands := c.spec.candidates(ctx, c, models)
	r := c.newRef(ctx, "speculate:"+name, nil, now, deadline)
	if r.Ready() {
		return r // the client is closed
	}
	if _, err := cs.Spawn(actors.Speculation{Strategy: st, Request: req, Params: params, Candidates: cands, ReplyTo: r.sender}); err != nil {
		r.finish(nil, fmt.Errorf("%w: %v", ErrInternal, err))
	}
	return r
}

// checkModels rejects an empty, invalid or repeated list of candidates.
func checkModels(models []string) error {
	if len(models) == 0 {
		return fmt.Errorf("%w: speculate: no models", ErrBadInput)
	}
	seen := make(map[string]bool, len(models))
	for i, m := range models {
		if err := modelhost.ValidID(cluster.ModelOf(m)); err != nil {
			return fmt.Errorf("%w: speculate: models[%d]: %v", ErrBadInput, i, err)
		}
		if seen[m] {
			return fmt.Errorf("%w: speculate: model %q named twice (use replicas id@1, id@2 to call one model twice)", ErrBadInput, m)
		}
		seen[m] = true
	}
	return nil
}

// failedRef is a Ref already completed with err.
func (c *Client) failedRef(now, deadline time.Time, err error) *Ref {
	r := &Ref{c: c, start: now, deadline: deadline, done: make(chan struct{})}
	r.finish(nil, err)
	return r
}

// speculation is a client's speculative machinery, made on first use.
type speculation struct {
	once sync.Once
	cs   *actors.Collectors
	err  error

	mu    sync.Mutex
	cands map[string]*candidateEntry
}

type candidateEntry struct {
	cand       strategy.Candidate
	at         time.Time // last refresh; zero: never
	refreshing bool
	quality    bool // quality was looked up at least once
}

func (c *Client) collectors() (*actors.Collectors, error) {
	c.spec.once.Do(func() {
		c.spec.cs, c.spec.err = actors.NewCollectors(c.system, actors.CollectorConfig{
			Resolve: c.resolve,
			Forget:  c.forget,
			Logger:  c.logger,
		})
		if c.spec.err != nil {
			c.spec.err = fmt.Errorf("%w: %v", ErrInternal, c.spec.err)
		}
	})
	return c.spec.cs, c.spec.err
}

// candidates returns the models' cached stats and quality, starting a
// background refresh of those older than CandidateStatsTTL. A model seen
// for the first time has its manifest quality read now (a directory store
// answers in microseconds); its latency stats come with the refresh.
func (s *speculation) candidates(ctx context.Context, c *Client, models []string) []strategy.Candidate {
	out := make([]strategy.Candidate, len(models))
	now := time.Now()
	var first []int
	s.mu.Lock()
	if s.cands == nil {
		s.cands = map[string]*candidateEntry{}
	}
	for i, id := range models {
		e := s.cands[id]
		if e == nil {
			e = &candidateEntry{cand: strategy.Candidate{Model: id}}
			s.cands[id] = e
			if c.store != nil {
				first = append(first, i)
			}
		}
		if !e.refreshing && now.Sub(e.at) >= time.Duration(candidateTTL.Load()) {
			e.refreshing = true
			go s.refresh(c, id)
		}
		out[i] = e.cand
	}
	s.mu.Unlock()
	for _, i := range first {
		id := models[i]
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		version, q := c.manifestQuality(qctx, id, "")
		cancel()
		s.mu.Lock()
		e := s.cands[id]
		if !e.quality {
			e.quality = true
			setQuality(&e.cand, version, q)
		}
		out[i] = e.cand
		s.mu.Unlock()
	}
	return out
}

// refresh asks identity's model actor for its stats and the store for the
// quality of the version it serves.
func (s *speculation) refresh(c *Client, identity string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var lat strategy.Latency
	version := ""
	dl, _ := ctx.Deadline()
	resp, err := c.call(ctx, identity, &api.ModelStatsRequest{ModelId: cluster.ModelOf(identity)}, dl).response(ctx)
	st, ok := resp.(*api.ModelStats)
	live := false
	if err == nil && ok && st.Error == nil {
		version = st.Version
		lat = strategy.Latency{P50: time.Duration(st.P50), P95: time.Duration(st.P95), P99: time.Duration(st.P99), Count: st.Count}
		live = st.LiveMeasure != "" && st.LiveJoined >= int64(c.cfg.Quality.WithDefaults().MinLabels)
	}
	var q *modelhost.Quality
	looked := false
	if c.store != nil {
		version, q = c.manifestQuality(ctx, identity, version)
		looked = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.cands[identity]
	e.at, e.refreshing = time.Now(), false
	if err == nil && ok && st.Error == nil {
		e.cand.Latency = lat
	}
	if looked {
		e.quality = true
		setQuality(&e.cand, version, q)
	}
	if live {
		// enough joined labels: the model's live quality wins over its
		// manifest's (docs/ARCHITECTURE.md §2.4)
		e.quality = true
		e.cand.Version = version
		e.cand.Quality, e.cand.HasQuality = st.LiveQuality, true
		e.cand.HigherIsBetter = st.LiveMeasure == "accuracy"
		e.cand.LiveQuality, e.cand.QualityMeasure = true, st.LiveMeasure
	}
}

// manifestQuality reads the quality of identity's model at version (""
// means the version the store would serve). It returns the version read
// and nil when the store has no quality for it.
func (c *Client) manifestQuality(ctx context.Context, identity, version string) (string, *modelhost.Quality) {
	id := cluster.ModelOf(identity)
	if version == "" {
		v, err := c.store.Latest(ctx, id)
		if err != nil {
			return "", nil
		}
		version = v
	}
	m, err := c.store.Manifest(ctx, id, version)
	if err != nil {
		return version, nil
	}
	return version, m.Quality
}

func setQuality(cand *strategy.Candidate, version string, q *modelhost.Quality) {
	if version != "" {
		cand.Version = version
	}
	cand.LiveQuality, cand.QualityMeasure = false, ""
	if q == nil {
		cand.Quality, cand.HasQuality, cand.HigherIsBetter = 0, false, false
		return
	}
	cand.Quality, cand.HasQuality = q.Value, true
	cand.HigherIsBetter = q.HigherIsBetter || strategy.HigherIsBetter(q.Metric)
	cand.QualityMeasure = q.Metric
}
