package manta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/manta-ml/manta/actors"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/internal/keyed"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/ops"
)

// memberActorName is the name of each member's status actor.
const memberActorName = "manta-member"

// Client is a handle on a Manta cluster: an embedded member (Start) or a
// client of a running cluster (Connect). It is safe for concurrent use.
type Client struct {
	cfg    Config
	member *cluster.Member
	system *actor.ActorSystem
	cl     *pcluster.Cluster
	logger *slog.Logger

	// member-only parts (nil for Connect clients)
	host  *actors.Host
	cache *modelhost.Cache
	store modelhost.Store

	grace    time.Duration
	closed   atomic.Bool
	reqSeq   atomic.Uint64
	reqPfx   string
	pending  keyed.Table[*Ref] // outstanding requests by reply key
	replyPID *actor.PID
	pids     sync.Map             // identity -> *actor.PID, in front of protoactor's PidCache
	sweeper  *keyed.Sweeper[*Ref] // runs while Refs are pending

	httpSrv  *http.Server
	httpAddr string
	roll     rollout
	metrics  *ops.Metrics // nil for a Connect client
	counted  bool         // counted in liveMembers (Start)

	spec speculation // collectors and candidate stats (speculate.go)
}

// Start starts an embedded member in this process: it opens the store,
// creates the memory cache, joins (or forms) the cluster and, when
// cfg.HTTPAddr is set, serves HTTP. It does not panic or sleep to start,
// beyond what joining the cluster takes.
func Start(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	store := cfg.StoreImpl
	if store == nil {
		var err error
		store, err = modelhost.OpenStore(ctx, cfg.Store)
		if err != nil {
			return nil, fmt.Errorf("manta: open store %s: %w", cfg.Store, err)
		}
	}
	budget := cfg.BudgetBytes
	if budget == 0 {
		budget = DefaultBudget()
	}
	fetchDir := cfg.FetchDir
	if fetchDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		fetchDir = filepath.Join(base, "manta", "fetch")
	}
	var mopts []ops.MetricsOption
	if cfg.MetricsMaxModels != 0 { // 0 keeps ops' default cap; ops reads 0 as no cap
		mopts = append(mopts, ops.WithMaxModels(cfg.MetricsMaxModels))
	}
	metrics, err := ops.NewMetrics(mopts...)
	if err != nil {
		return nil, fmt.Errorf("manta: metrics: %w", err)
	}
	var host *actors.Host
	cache, err := modelhost.NewCache(store, modelhost.CacheConfig{BudgetBytes: budget, FetchDir: fetchDir,
		OnPressure: func(need int64) { host.Pressure(need) }, OnEvent: metrics.CacheHook()})
	if err != nil {
		return nil, fmt.Errorf("manta: cache: %w", err)
	}
	host = actors.NewHost(store, cache, "")
	host.Logger = cfg.Logger
	metrics.InstallHost(host) // before the cluster starts: hooks are read by actors
	if cfg.ActivationLog != nil {
		logActivations(host, cfg.ActivationLog)
	}
	if cfg.IdleTimeout > 0 {
		host.IdleTimeout = cfg.IdleTimeout
	}
	if cfg.DefaultTimeout > 0 {
		host.DefaultDeadline = cfg.DefaultTimeout
	}
	if cfg.LoadTimeout > 0 {
		host.LoadTimeout = cfg.LoadTimeout
	}
	if cfg.ReloadTimeout > 0 {
		host.ReloadTimeout = cfg.ReloadTimeout
	}
	if cfg.MaxBatch > 0 {
		host.DefaultBatch.MaxSize = cfg.MaxBatch
	}
	if cfg.MaxWaitMS > 0 {
		host.DefaultBatch.MaxWaitMS = cfg.MaxWaitMS
	}
	if cfg.MaxInflightBatches > 0 {
		host.MaxInflightBatches = cfg.MaxInflightBatches
	}
	if cfg.Cluster.Source == nil {
		cfg.Cluster.Source = host.PlacementSource() // placement: memory, rates, estimates
	}
	host.Quality = cfg.Quality
	var started atomic.Pointer[cluster.Member] // read by stopping actors (join hand-off)
	host.Locate = func(_ context.Context, identity string) *actor.PID {
		if m := started.Load(); m != nil {
			return m.Activation(identity)
		}
		return nil
	}
	m, err := cluster.Start(ctx, cfg.Cluster, host.Kind())
	if err != nil {
		_ = cache.Close()
		return nil, fmt.Errorf("manta: %w", err)
	}
	started.Store(m)
	host.Member = cfg.Member
	if host.Member == "" {
		host.Member = m.Address()
	}
	c := newClient(cfg, m)
	c.host, c.cache, c.store, c.metrics = host, cache, store, metrics
	openMember(c)
	if err := metrics.AttachMember(host, cache, ops.WithQueueDepth(host.QueueDepth)); err != nil {
		_ = c.Close(context.Background())
		return nil, fmt.Errorf("manta: metrics: %w", err)
	}
	if err := metrics.Register(newRuntimeCollector(c)); err != nil {
		_ = c.Close(context.Background())
		return nil, fmt.Errorf("manta: metrics: %w", err)
	}
	if _, err := m.System.Root.SpawnNamed(actor.PropsFromFunc(c.memberReceive), memberActorName); err != nil {
		_ = c.Close(context.Background())
		return nil, fmt.Errorf("manta: spawn member actor: %w", err)
	}
	c.startRollout()
	if cfg.HTTPAddr != "" {
		if err := c.serveHTTP(cfg.HTTPAddr); err != nil {
			_ = c.Close(context.Background())
			return nil, err
		}
		m.SetHTTP(c.httpAddr)
	}
	return c, nil
}

// Connect joins a running cluster as a client (it hosts no models). The
// cluster provider must reach other processes (etcd or automanaged).
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Cluster.Provider == cluster.ProviderLocal {
		return nil, errors.New("manta: connect: provider local is in-process only; use Start, or etcd/automanaged")
	}
	if err := cfg.Cluster.Validate(); err != nil {
		return nil, err
	}
	m, err := cluster.StartClient(ctx, cfg.Cluster)
	if err != nil {
		return nil, fmt.Errorf("manta: %w", err)
	}
	return newClient(cfg, m), nil
}

func newClient(cfg Config, m *cluster.Member) *Client {
	c := &Client{
		cfg:    cfg,
		member: m,
		system: m.System,
		cl:     m.Cluster,
		logger: cfg.Logger,
		grace:  2 * time.Second,
		reqPfx: m.System.ID[:min(8, len(m.System.ID))] + "-",
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.replyPID, _ = m.System.ProcessRegistry.Add(replyProcess{c}, "manta-reply-"+m.System.ProcessRegistry.NextId())
	if cfg.DefaultTimeout <= 0 {
		c.cfg.DefaultTimeout = 30 * time.Second
	}
	c.sweeper = keyed.NewSweeper(&c.pending, 50*time.Millisecond, c.checkRef, nil)
	return c
}

// liveMembers counts the embedded members open in this process. The
// runtimes are process-wide (registered once, like database/sql drivers)
// and shared by the members, so the last member to close closes them
// (modelhost.CloseRuntimes: the python runtime's worker processes).
var liveMembers struct {
	sync.Mutex
	n int
}

func openMember(c *Client) {
	liveMembers.Lock()
	liveMembers.n++
	liveMembers.Unlock()
	c.counted = true
}

// closeMember reports whether c was the last open member.
func closeMember(c *Client) (last bool) {
	if !c.counted {
		return false
	}
	liveMembers.Lock()
	defer liveMembers.Unlock()
	liveMembers.n--
	return liveMembers.n == 0
}

// Close stops serving HTTP, leaves the cluster and closes loaded models;
// the last embedded member of the process to close also closes the
// runtimes' worker processes (the Python workers), which a later Start
// starts anew.
func (c *Client) Close(ctx context.Context) error {
	if c.closed.Swap(true) {
		return nil
	}
	c.sweeper.Stop()
	c.stopRollout()
	var errs []error
	if c.httpSrv != nil {
		errs = append(errs, c.httpSrv.Shutdown(ctx))
	}
	errs = append(errs, c.member.Shutdown(ctx, false))
	c.pending.Each(func(r *Ref) { r.finish(nil, fmt.Errorf("%w: client closed", ErrInternal)) })
	if c.cache != nil {
		errs = append(errs, c.cache.Close())
	}
	if closeMember(c) {
		errs = append(errs, modelhost.CloseRuntimes())
	}
	return errors.Join(errs...)
}

// HTTPAddr is the address the member's HTTP server listens on ("" if none).
func (c *Client) HTTPAddr() string { return c.httpAddr }

// MemberName is what this member writes in served_by ("" for a client).
func (c *Client) MemberName() string {
	if c.host == nil {
		return ""
	}
	return c.host.Member
}

// Host returns the member's actor host (nil for a Connect client).
func (c *Client) Host() *actors.Host { return c.host }

// Cache returns the member's model cache (nil for a Connect client).
func (c *Client) Cache() *modelhost.Cache { return c.cache }

// Store returns the member's model store (nil for a Connect client).
func (c *Client) Store() modelhost.Store { return c.store }

// Model is a handle on one model by id. It is cheap; nothing is loaded until
// a request arrives.
type Model struct {
	c  *Client
	id string
}

// Model returns a handle on model id.
func (c *Client) Model(id string) *Model { return &Model{c: c, id: id} }

// ID is the model id.
func (m *Model) ID() string { return m.id }

// Option adjusts one request.
type Option func(*callOptions)

type callOptions struct {
	deadline    time.Time
	timeout     time.Duration
	requestID   string
	contentType string
	version     string
	meta        map[string]string
	params      map[string]string // strategy params (Speculate)
}

// WithTimeout bounds the request (default: the config's DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(o *callOptions) { o.timeout = d } }

// WithDeadline sets an absolute deadline.
func WithDeadline(t time.Time) Option { return func(o *callOptions) { o.deadline = t } }

// WithRequestID sets the request id echoed in the result (default: generated).
func WithRequestID(id string) Option { return func(o *callOptions) { o.requestID = id } }

// WithContentType sets the payload's content type (default application/json).
func WithContentType(ct string) Option { return func(o *callOptions) { o.contentType = ct } }

// WithVersion pins a model version; the request fails with ErrNotFound if the
// actor serves another one.
func WithVersion(v string) Option { return func(o *callOptions) { o.version = v } }

// WithMeta attaches a key/value passed to the model actor.
func WithMeta(k, v string) Option {
	return func(o *callOptions) {
		if o.meta == nil {
			o.meta = map[string]string{}
		}
		o.meta[k] = v
	}
}

// Predict sends payload to the model and returns at once with a Ref, also
// for a model that is not active yet: finding or activating its actor
// (store read, placement, retries) runs off the caller's goroutine, and the
// Ref's Get, Done and Wait deliver the outcome. The request's deadline is
// the earliest of ctx's deadline and the options'.
// Cancelling ctx completes the Ref with ctx's error (the model may still run
// the request).
func (m *Model) Predict(ctx context.Context, payload []byte, opts ...Option) *Ref {
	var o callOptions
	for _, f := range opts {
		f(&o)
	}
	now := time.Now()
	deadline := m.c.deadlineAt(ctx, now, o)
	if o.params != nil {
		return m.c.failedRef(now, deadline, fmt.Errorf("%w: predict %s: WithParams applies to Speculate only", ErrBadInput, m.id))
	}
	if err := modelhost.ValidID(m.id); err != nil {
		// no such model can exist: answer bad_input at once, no cluster
		// round trip (the error states its code once)
		return m.c.failedRef(now, deadline, err)
	}
	if err := m.c.checkPayload(m.id, len(payload)); err != nil {
		return m.c.failedRef(now, deadline, err)
	}
	req := &api.PredictRequest{
		ModelId:     m.id,
		RequestId:   o.requestID,
		Payload:     payload,
		ContentType: o.contentType,
		Deadline:    deadline.UnixNano(),
		Meta:        o.meta,
		Version:     o.version,
	}
	if req.RequestId == "" {
		req.RequestId = m.c.nextRequestID()
	}
	return m.c.callRouted(ctx, m.id, req, now, deadline)
}

// payloadLimit is Config.MaxPayloadBytes, or its default.
func (c *Client) payloadLimit() int {
	if c.cfg.MaxPayloadBytes > 0 {
		return c.cfg.MaxPayloadBytes
	}
	return DefaultMaxPayloadBytes
}

// checkPayload refuses a payload over the limit with too_large, before it
// enters the cluster.
func (c *Client) checkPayload(model string, n int) error {
	if lim := c.payloadLimit(); n > lim {
		return fmt.Errorf("%w: %s: payload of %d bytes is over the limit of %d (Config.MaxPayloadBytes)", ErrTooLarge, model, n, lim)
	}
	return nil
}

func (c *Client) deadline(ctx context.Context, o callOptions) time.Time {
	return c.deadlineAt(ctx, time.Now(), o)
}

func (c *Client) deadlineAt(ctx context.Context, now time.Time, o callOptions) time.Time {
	d := o.deadline
	if d.IsZero() {
		t := o.timeout
		if t <= 0 {
			t = c.cfg.DefaultTimeout
		}
		d = now.Add(t)
	}
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	return d
}

func (c *Client) nextRequestID() string {
	return c.reqPfx + strconv.FormatUint(c.reqSeq.Add(1), 36)
}

// call sends msg to the actor of identity; the Ref completes with its answer.
func (c *Client) call(ctx context.Context, identity string, msg any, deadline time.Time) *Ref {
	return c.callAt(ctx, identity, msg, time.Now(), deadline)
}

// callRouted is callAt for model id, spread over its hot-model replicas
// (cluster.Member.Route: power of two choices on outstanding requests).
func (c *Client) callRouted(ctx context.Context, id string, msg any, now, deadline time.Time) *Ref {
	identity, done := c.member.Route(id)
	r := c.newRef(ctx, identity, msg, now, deadline)
	r.setRelease(done)
	r.dispatch()
	return r
}

func (c *Client) callAt(ctx context.Context, identity string, msg any, now, deadline time.Time) *Ref {
	r := c.newRef(ctx, identity, msg, now, deadline)
	r.dispatch()
	return r
}

// Do sends one request and waits for its answer. It never returns nil:
// every failure is in resp.Error with a code of the closed set. It is the
// entry point of the router and the HTTP server.
func (c *Client) Do(ctx context.Context, req *api.PredictRequest) *api.PredictResponse {
	deadline := c.deadline(ctx, callOptions{})
	if req.Deadline > 0 {
		if d := time.Unix(0, req.Deadline); d.Before(deadline) {
			deadline = d
		}
	}
	req.Deadline = deadline.UnixNano()
	if req.RequestId == "" {
		req.RequestId = c.nextRequestID()
	}
	if err := modelhost.ValidID(req.ModelId); err != nil {
		c.noteError(req.ModelId, api.CodeOf(err).Name())
		return &api.PredictResponse{RequestId: req.RequestId, ModelId: req.ModelId, Error: api.ErrorFrom(err)}
	}
	if err := c.checkPayload(req.ModelId, len(req.Payload)); err != nil {
		c.noteError(req.ModelId, "too_large")
		return &api.PredictResponse{RequestId: req.RequestId, ModelId: req.ModelId, Error: api.ErrorFrom(err)}
	}
	r := c.callRouted(ctx, req.ModelId, req, time.Now(), deadline)
	resp, err := r.response(ctx)
	if err == nil {
		if pr, ok := resp.(*api.PredictResponse); ok {
			if pr.Error != nil && pr.ServedBy == "" {
				c.noteError(req.ModelId, pr.Error.Code.Name()) // answered before any model actor
			}
			return pr
		}
		err = fmt.Errorf("%w: unexpected answer %T", ErrInternal, resp)
	}
	c.noteError(req.ModelId, api.CodeOf(err).Name())
	return &api.PredictResponse{RequestId: req.RequestId, ModelId: req.ModelId, Error: api.ErrorFrom(err)}
}

// Stats are a model's serving statistics on the member that hosts it.
type Stats struct {
	Model    string
	Version  string // the loaded version
	ServedBy string
	Count    int64 // requests served (usage count)
	Errors   int64
	Total    time.Duration
	Min      time.Duration
	Max      time.Duration
	Mean     time.Duration
	P50      time.Duration
	P95      time.Duration
	P99      time.Duration
	Batches  int64
	Since    time.Time
	Memory   int64
}

// Stats asks the model's actor for its statistics. Like a request, it
// activates the model if it is not active.
func (m *Model) Stats(ctx context.Context) (*Stats, error) {
	if err := modelhost.ValidID(m.id); err != nil {
		return nil, err
	}
	r := m.c.call(ctx, m.id, &api.ModelStatsRequest{ModelId: m.id}, m.c.deadline(ctx, callOptions{}))
	resp, err := r.response(ctx)
	if err != nil {
		return nil, err
	}
	st, ok := resp.(*api.ModelStats)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected answer %T", ErrInternal, resp)
	}
	if err := st.Error.Err(); err != nil {
		return nil, err
	}
	out := &Stats{
		Model: st.ModelId, Version: st.Version, ServedBy: st.ServedBy, Count: st.Count, Errors: st.Errors,
		Total: time.Duration(st.TotalDuration), Min: time.Duration(st.MinDuration), Max: time.Duration(st.MaxDuration),
		P50: time.Duration(st.P50), P95: time.Duration(st.P95), P99: time.Duration(st.P99),
		Batches: st.Batches, Since: time.Unix(0, st.Since), Memory: st.MemoryBytes,
	}
	if st.Count > 0 {
		out.Mean = out.Total / time.Duration(st.Count)
	}
	return out, nil
}

// Reload tells the model's actor to look for a new version in the store and
// roll it out (loaded beside the old one, swapped atomically). It returns
// the version served afterwards.
func (m *Model) Reload(ctx context.Context) (version string, changed bool, err error) {
	r := m.c.call(ctx, m.id, &api.ReloadRequest{ModelId: m.id}, m.c.deadline(ctx, callOptions{timeout: 10 * time.Minute}))
	resp, err := r.response(ctx)
	if err != nil {
		return "", false, err
	}
	rr, ok := resp.(*api.ReloadResponse)
	if !ok {
		return "", false, fmt.Errorf("%w: unexpected answer %T", ErrInternal, resp)
	}
	return rr.Version, rr.Changed, rr.Error.Err()
}

// cachedPID returns the PID of identity's activation if this client knows
// it already: a map read, no cluster round trip.
func (c *Client) cachedPID(identity string) (*actor.PID, bool) {
	if v, ok := c.pids.Load(identity); ok {
		return v.(*actor.PID), true
	}
	if pid, ok := c.cl.PidCache.Get(identity, cluster.KindModel); ok && pid != nil {
		c.pids.Store(identity, pid)
		return pid, true
	}
	return nil, false
}

// resolve returns the PID of identity's activation (activating it).
func (c *Client) resolve(identity string) (*actor.PID, error) {
	if pid, ok := c.cachedPID(identity); ok {
		return pid, nil
	}
	pid := c.safeGet(identity)
	if pid == nil {
		return nil, fmt.Errorf("no activation for %s (cluster lookup failed)", identity)
	}
	c.cl.PidCache.Set(identity, cluster.KindModel, pid)
	c.pids.Store(identity, pid)
	return pid, nil
}

func (c *Client) safeGet(identity string) (pid *actor.PID) {
	defer func() {
		if recover() != nil {
			pid = nil
		}
	}()
	return c.cl.Get(identity, cluster.KindModel)
}

func (c *Client) forget(identity string, pid *actor.PID) {
	c.pids.CompareAndDelete(identity, pid)
	c.cl.PidCache.RemoveByValue(identity, cluster.KindModel, pid)
}

// checkRef is the sweeper's visit of one pending Ref (keyed.Sweeper, shared
// with the collectors): it ends a Ref whose deadline (plus a grace for an
// answer in flight) has passed, and sends again a request whose local
// target activation stopped before it read it (protoactor drops messages
// left in a stopped actor's mailbox) or whose target's member left the
// cluster, so no request waits for nothing.
func (c *Client) checkRef(now time.Time, r *Ref) {
	if r.Ready() {
		return
	}
	if now.After(r.deadline.Add(c.grace)) {
		r.finish(nil, fmt.Errorf("%w: no answer from %s by the deadline", ErrDeadlineExceeded, r.identity))
		return
	}
	if now.Sub(r.start) < 250*time.Millisecond {
		return
	}
	tgt := r.target.Load()
	if tgt == nil {
		return
	}
	gone := !c.member.Alive(tgt.Address) // its member left the cluster
	if tgt.Address == c.system.Address() {
		_, ok := c.system.ProcessRegistry.GetLocal(tgt.Id)
		gone = !ok
	}
	if gone && r.target.CompareAndSwap(tgt, nil) {
		c.forget(r.identity, tgt)
		go r.send()
	}
}

func (c *Client) localStatus() *api.MemberStatus {
	st := &api.MemberStatus{MemberId: c.system.ID, Address: c.system.Address(), Http: c.httpAddr}
	if c.cache != nil {
		cs := c.cache.Stats()
		st.BudgetBytes, st.UsedBytes, st.PinnedBytes, st.HighWaterBytes = cs.Budget, cs.Used, cs.Pinned, cs.HighWater
		st.ModelsLoaded = int32(cs.Models)
		st.Loads, st.Evictions = cs.Loads, cs.Evictions
	}
	if c.host != nil {
		st.ActiveModels = c.host.Active()
		sort.Strings(st.ActiveModels)
		st.Activations = c.host.Counters().Activations
	}
	st.Goroutines = int64(runtime.NumGoroutine())
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		st.OpenFds = int64(len(fds))
	}
	return st
}

func (c *Client) memberReceive(ctx actor.Context) {
	if _, ok := ctx.Message().(*api.MemberStatusRequest); ok {
		ctx.Respond(c.localStatus())
	}
}

// statusTimeout bounds one member's answer to Status.
const statusTimeout = 5 * time.Second

// Status asks every member for its status, all at once, each for at most
// 5 s and no longer than ctx allows. A member that does not answer in time
// is listed with its Error; when ctx ends first, Status returns ctx's error
// (see Ref.Get for how it wraps).
func (c *Client) Status(ctx context.Context) (*Status, error) {
	if ctx.Err() != nil {
		return nil, ctxErr(ctx)
	}
	members := c.cl.MemberList.Members().Members()
	var out Status
	out.Members = make([]MemberInfo, len(members))
	var wg sync.WaitGroup
	for i, mem := range members {
		addr := net.JoinHostPort(mem.Host, strconv.Itoa(int(mem.Port)))
		out.Members[i] = MemberInfo{ID: mem.Id, Address: addr}
		if addr == c.system.Address() && c.host != nil {
			fillMember(&out.Members[i], c.localStatus())
			continue
		}
		timeout := statusTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
		if timeout <= 0 {
			return nil, ctxErr(ctx)
		}
		wg.Add(1)
		go func(info *MemberInfo) {
			defer wg.Done()
			f := c.system.Root.RequestFuture(actor.NewPID(info.Address, memberActorName), &api.MemberStatusRequest{}, timeout)
			res, err := f.Result()
			if err != nil {
				info.Error = err.Error()
			} else if st, ok := res.(*api.MemberStatus); ok {
				fillMember(info, st)
			}
		}(&out.Members[i])
	}
	answered := make(chan struct{})
	go func() { wg.Wait(); close(answered) }()
	select {
	case <-answered:
	case <-ctx.Done():
		return nil, ctxErr(ctx) // the requests end by their timeout
	}
	if len(out.Members) == 0 && c.host != nil {
		st := c.localStatus()
		info := MemberInfo{ID: st.MemberId, Address: st.Address}
		fillMember(&info, st)
		out.Members = append(out.Members, info)
	}
	sort.Slice(out.Members, func(i, j int) bool { return out.Members[i].Address < out.Members[j].Address })
	return &out, nil
}

// fillMember copies a member's answer into info.
func fillMember(info *MemberInfo, st *api.MemberStatus) {
	info.HTTP = st.Http
	info.BudgetBytes, info.UsedBytes, info.PinnedBytes, info.HighWater = st.BudgetBytes, st.UsedBytes, st.PinnedBytes, st.HighWaterBytes
	info.ModelsLoaded = int(st.ModelsLoaded)
	info.ActiveModels = st.ActiveModels
	info.Loads, info.Evictions, info.Activations = st.Loads, st.Evictions, st.Activations
	info.Goroutines, info.OpenFDs = st.Goroutines, st.OpenFds
}

// noteError counts an error the SDK answered itself (no model actor saw
// the request) in the member's metrics.
func (c *Client) noteError(model, code string) {
	if c.metrics != nil {
		c.metrics.ErrorHook()(model, code)
	}
}

// Metrics returns the member's Prometheus metrics (nil for a Connect client).
func (c *Client) Metrics() *ops.Metrics { return c.metrics }
