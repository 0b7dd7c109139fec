package pyworker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
)

// Supervisor runs W Python worker processes and loads models into them:
// each model into exactly one worker (the one holding the least model
// memory), once per supervisor however many times it is loaded, shared by
// reference count. It is a modelhost.Runtime. Create one with New; the
// registered "python" runtime uses a default one (see Configure).
type Supervisor struct {
	cfg    Config
	pkgDir string
	ctx    context.Context // cancelled by Close: ends loops, starts, loads
	cancel context.CancelFunc
	loops  sync.WaitGroup

	workers []*worker

	mu         sync.Mutex
	models     map[string]*shared // by id@version
	nextHandle uint64
	closed     bool
}

// shared is one model loaded in one worker, whatever the number of handles
// given out for it.
type shared struct {
	key       string // id@version
	handle    uint64
	w         *worker
	load      *api.WorkerLoad
	fileBytes int64 // the floor of the memory figure

	ready chan struct{} // closed when the first load is done
	err   error         // first load failed (set before ready closes)
	kind  api.InputKind // set before ready closes
	nfeat int
	class string
	proba bool

	memory   atomic.Int64 // estimate until loaded, then measured
	loadTime atomic.Int64 // ns

	refs int // guarded by Supervisor.mu

	// guarded by w.mu
	loadedIn      *process
	reloadErr     error
	reloadCrashes int
}

// New returns a supervisor. It checks the configuration, finds the
// interpreter and writes the worker's Python package out, but starts no
// process: workers start when a model is first assigned to them (or at
// Warm).
func New(cfg Config) (*Supervisor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if _, err := lookPython(cfg.Python); err != nil {
		return nil, err
	}
	dir, err := packageDir()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Supervisor{cfg: cfg, pkgDir: dir, ctx: ctx, cancel: cancel, models: make(map[string]*shared)}
	for i := 0; i < cfg.Workers; i++ {
		s.workers = append(s.workers, newWorker(s, i))
	}
	return s, nil
}

// Config returns the supervisor's configuration, defaults filled in.
func (s *Supervisor) Config() Config { return s.cfg }

// Warm starts every worker now rather than at first use, and returns the
// errors of those that could not start (a missing interpreter or package).
func (s *Supervisor) Warm(ctx context.Context) error {
	errs := make([]error, len(s.workers))
	var wg sync.WaitGroup
	for i, w := range s.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = w.acquire(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Load loads a model (format sklearn-joblib, python-class or xgboost) from
// dir, or shares the one already loaded for the same id@version: N
// concurrent Loads of one version cause one load. Each call returns its own
// handle; the model is unloaded when every handle is closed. Cancelling ctx
// abandons the wait, not the load (other callers may be waiting for it).
func (s *Supervisor) Load(ctx context.Context, m *modelhost.Manifest, dir string) (modelhost.Model, error) {
	if err := CheckManifest(m); err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrLoadFailed, err)
	}
	key := m.ID + "@" + m.Version
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	e := s.models[key]
	if e == nil {
		s.nextHandle++
		e = &shared{
			key:       key,
			handle:    s.nextHandle,
			load:      loadRequest(m, dir, s.nextHandle),
			fileBytes: fileBytes(m, dir),
			ready:     make(chan struct{}),
		}
		est := m.MemoryBytes
		if est <= 0 {
			est = e.fileBytes
		}
		e.memory.Store(est)
		e.w = s.pickLocked()
		s.models[key] = e
		go s.firstLoad(e)
	}
	e.refs++
	s.mu.Unlock()

	select {
	case <-e.ready:
	case <-ctx.Done():
		s.release(e)
		return nil, fmt.Errorf("load %s: %w", key, ctx.Err())
	}
	if e.err != nil {
		s.release(e)
		return nil, e.err
	}
	return &model{s: s, e: e}, nil
}

func loadRequest(m *modelhost.Manifest, dir string, handle uint64) *api.WorkerLoad {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	opts := make(map[string]string, len(m.Options))
	for k, v := range m.Options {
		opts[k] = v
	}
	return &api.WorkerLoad{
		Handle: handle, ModelId: m.ID, Version: m.Version, Format: m.Format,
		Dir: abs, Entrypoint: m.Entrypoint, Options: opts,
	}
}

// fileBytes is the size of the model's files: the manifest's figures, else
// the entrypoint's size on disk.
func fileBytes(m *modelhost.Manifest, dir string) int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	if n > 0 {
		return n
	}
	path, _, _ := strings.Cut(m.Entrypoint, ":")
	if st, err := os.Stat(filepath.Join(dir, path)); err == nil {
		return st.Size()
	}
	return 0
}

// pickLocked chooses the worker holding the least model memory, compared
// in MiB (RSS figures of small models are noise at finer grain), then the
// fewest models, then the lowest number. Call with s.mu held.
func (s *Supervisor) pickLocked() *worker {
	mem := make([]int64, len(s.workers))
	cnt := make([]int, len(s.workers))
	for _, e := range s.models {
		mem[e.w.idx] += e.memory.Load()
		cnt[e.w.idx]++
	}
	for i := range mem {
		mem[i] >>= 20
	}
	best := 0
	for i := range s.workers {
		if mem[i] < mem[best] || (mem[i] == mem[best] && cnt[i] < cnt[best]) {
			best = i
		}
	}
	return s.workers[best]
}

// firstLoad loads e into its worker, detached from any caller's context.
func (s *Supervisor) firstLoad(e *shared) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.StartTimeout+s.cfg.LoadTimeout+time.Second)
	defer cancel()
	w := e.w
	var res *api.WorkerLoadResult
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var p *process
		p, err = w.acquire(ctx)
		if err != nil {
			break
		}
		res, err = e.loadInto(ctx, p)
		if err != nil {
			if notStarted(err) {
				continue // another request killed the worker: try the new one
			}
			break
		}
		w.mu.Lock()
		if w.proc == p && p.deathErr() == nil {
			w.models[e.handle] = e
			e.loadedIn = p
			w.mu.Unlock()
			break
		}
		w.mu.Unlock()
		// The worker restarted between the load and now, without this
		// model: load it into the new process.
		err = fmt.Errorf("python worker %d restarted during the load", w.idx)
	}
	if err != nil && !errors.Is(err, api.ErrLoadFailed) && !isClosed(err) {
		err = fmt.Errorf("%w: load %s: %v", api.ErrLoadFailed, e.key, err)
	}

	s.mu.Lock()
	if err != nil {
		e.err = err
		if s.models[e.key] == e {
			delete(s.models, e.key)
		}
		close(e.ready)
		s.mu.Unlock()
		return
	}
	e.setResult(res)
	e.kind, e.nfeat, e.class, e.proba = res.InputKind, int(res.NFeatures), res.ModelClass, res.Probabilities
	close(e.ready)
	abandoned := e.refs == 0
	if abandoned && s.models[e.key] == e {
		delete(s.models, e.key)
	}
	s.mu.Unlock()
	if abandoned {
		s.unload(e)
	}
}

// loadInto sends e's Load to p. Errors wrap api.ErrLoadFailed (the model
// could not load) or api.ErrInternal (the worker died meanwhile).
func (e *shared) loadInto(ctx context.Context, p *process) (*api.WorkerLoadResult, error) {
	req := &api.WorkerRequest{Kind: &api.WorkerRequest_Load{Load: e.load}}
	resp, err := p.call(ctx, req, p.cfg.LoadTimeout, "load "+e.key)
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, pythonError(e.key, resp.Error)
	}
	res := resp.GetLoad()
	if res == nil {
		return nil, fmt.Errorf("%w: load %s: worker answered without a load result", api.ErrInternal, e.key)
	}
	return res, nil
}

// setResult records the measured memory of a (re)load: the worker's RSS
// growth over the load, at least the size of the model's files.
func (e *shared) setResult(res *api.WorkerLoadResult) {
	if res == nil {
		return
	}
	e.memory.Store(max(res.RssAfter-res.RssBefore, e.fileBytes, 1))
	e.loadTime.Store(res.LoadNanos)
}

// release drops one reference; the last one unloads the model.
func (s *Supervisor) release(e *shared) {
	s.mu.Lock()
	e.refs--
	if e.refs > 0 || s.models[e.key] != e {
		s.mu.Unlock()
		return
	}
	select {
	case <-e.ready:
	default:
		// Still loading: firstLoad sees refs == 0 and unloads it.
		s.mu.Unlock()
		return
	}
	delete(s.models, e.key)
	s.mu.Unlock()
	s.unload(e)
}

// unload removes e from its worker and frees it there.
func (s *Supervisor) unload(e *shared) {
	w := e.w
	w.mu.Lock()
	delete(w.models, e.handle)
	p := w.proc
	loaded := p != nil && e.loadedIn == p
	e.loadedIn = nil
	w.mu.Unlock()
	if !loaded {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.CallTimeout+time.Second)
	defer cancel()
	req := &api.WorkerRequest{Kind: &api.WorkerRequest_Unload{Unload: &api.WorkerUnload{Handle: e.handle}}}
	_, _ = p.call(ctx, req, s.cfg.CallTimeout, "unload "+e.key)
}

// call sends one request about model e to its worker. A request that
// could not be sent because the worker had just died goes to its successor;
// one sent to a worker that dies fails (it may have run).
func (s *Supervisor) call(ctx context.Context, e *shared, req *api.WorkerRequest, what string) (*api.WorkerResponse, error) {
	w := e.w
	for attempt := 0; ; attempt++ {
		p, err := w.acquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("model %s: %w", e.key, err)
			}
			return nil, fmt.Errorf("%w: model %s: %v", api.ErrInternal, e.key, err)
		}
		w.mu.Lock()
		loaded, rerr := e.loadedIn, e.reloadErr
		w.mu.Unlock()
		if loaded != p && rerr != nil {
			return nil, rerr
		}
		resp, err := p.call(ctx, req, s.cfg.CallTimeout, what)
		if err != nil {
			if notSent(err) && attempt < 3 {
				continue
			}
			return nil, fmt.Errorf("model %s: %w", e.key, err)
		}
		return resp, nil
	}
}

// Close shuts every worker down (the models in them are gone) and waits for
// them. Handles still open fail their calls with api.ErrInternal.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	var procs []*process
	for _, w := range s.workers {
		w.mu.Lock()
		w.closed = true
		if w.proc != nil {
			procs = append(procs, w.proc)
		}
		w.broadcast()
		w.mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.shutdown(2 * time.Second)
		}()
	}
	wg.Wait()
	s.cancel()
	s.loops.Wait()
	return nil
}

// WorkerInfo describes one worker slot.
type WorkerInfo struct {
	Index    int         `json:"index"`
	PID      int         `json:"pid,omitempty"` // 0 while down
	Running  bool        `json:"running"`
	RSS      int64       `json:"rss_bytes,omitempty"`
	Restarts int         `json:"restarts"`
	Err      string      `json:"error,omitempty"` // why the last start failed
	Models   []ModelInfo `json:"models"`
}

// ModelInfo describes one model loaded in a worker.
type ModelInfo struct {
	ID          string        `json:"id"`
	Version     string        `json:"version"`
	MemoryBytes int64         `json:"memory_bytes"`
	LoadTime    time.Duration `json:"load_time"`
	Batches     int64         `json:"batches"`
	Rows        int64         `json:"rows"`
	Errors      int64         `json:"errors"`
}

// Workers describes the worker slots, asking each running worker for its
// RSS and per-model counters (bounded by ctx).
func (s *Supervisor) Workers(ctx context.Context) []WorkerInfo {
	out := make([]WorkerInfo, len(s.workers))
	var wg sync.WaitGroup
	for i, w := range s.workers {
		w.mu.Lock()
		info := WorkerInfo{Index: i, Restarts: w.restarts}
		if w.startErr != nil {
			info.Err = w.startErr.Error()
		}
		p := w.proc
		models := make(map[uint64]*shared, len(w.models))
		for h, e := range w.models {
			models[h] = e
		}
		w.mu.Unlock()
		for _, e := range models {
			id, ver, _ := strings.Cut(e.key, "@")
			info.Models = append(info.Models, ModelInfo{ID: id, Version: ver, MemoryBytes: e.memory.Load(), LoadTime: time.Duration(e.loadTime.Load())})
		}
		sort.Slice(info.Models, func(a, b int) bool {
			return info.Models[a].ID+"@"+info.Models[a].Version < info.Models[b].ID+"@"+info.Models[b].Version
		})
		out[i] = info
		if p == nil {
			continue
		}
		out[i].PID, out[i].Running = p.pid, true
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &api.WorkerRequest{Kind: &api.WorkerRequest_Stats{Stats: &api.WorkerStatsRequest{}}}
			resp, err := p.call(ctx, req, s.cfg.CallTimeout, "stats")
			if err != nil || resp.GetStats() == nil {
				return
			}
			st := resp.GetStats()
			out[i].RSS = st.Rss
			for _, ms := range st.Models {
				e := models[ms.Handle]
				if e == nil {
					continue
				}
				for j := range out[i].Models {
					mi := &out[i].Models[j]
					if mi.ID+"@"+mi.Version == e.key {
						mi.Batches, mi.Rows, mi.Errors = ms.Batches, ms.Rows, ms.Errors
					}
				}
			}
		}()
	}
	wg.Wait()
	return out
}

func (s *Supervisor) logf(format string, args ...any) {
	fmt.Fprintf(s.cfg.Stderr, "pyworker: "+format+"\n", args...)
}

var _ modelhost.Runtime = (*Supervisor)(nil)
