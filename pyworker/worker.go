package pyworker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/backoff"
)

// worker is one of the supervisor's W slots. It runs at most one process at
// a time; its loop starts the process, reloads the slot's models into it,
// waits for it to die, and starts the next one after a backoff. The loop
// runs while the slot has models (or a caller waiting); an empty slot whose
// process died stays down until it is needed again.
//
// Locking: Supervisor.mu before worker.mu; worker.mu guards every field
// below and the loadedIn/reloadErr fields of the slot's models.
type worker struct {
	s   *Supervisor
	idx int

	mu       sync.Mutex
	proc     *process // the ready process, nil while none
	running  bool     // the loop goroutine is alive
	startErr error    // why the last start failed (nil once one succeeds)
	change   chan struct{}
	models   map[uint64]*shared
	restarts int
	lastPID  int
	closed   bool
}

func newWorker(s *Supervisor, idx int) *worker {
	return &worker{s: s, idx: idx, change: make(chan struct{}), models: make(map[uint64]*shared)}
}

// broadcast wakes everyone waiting for a state change. Call with mu held.
func (w *worker) broadcast() {
	close(w.change)
	w.change = make(chan struct{})
}

// acquire returns the slot's ready process, starting the slot if it is
// down. While the slot restarts after a crash it waits (bounded by ctx);
// when the last start failed it returns that error at once.
func (w *worker) acquire(ctx context.Context) (*process, error) {
	waited := false
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return nil, errClosed
		}
		if p := w.proc; p != nil && p.deathErr() == nil {
			w.mu.Unlock()
			return p, nil
		}
		// A failed start is reported to those who waited for it, and to
		// those who come while the loop backs off before the next try.
		if w.startErr != nil && (waited || w.running) {
			err := w.startErr
			w.mu.Unlock()
			return nil, err
		}
		if w.proc != nil {
			// Dead, and the loop has not noticed yet: wait for it to.
		} else if !w.running {
			w.running = true
			w.startErr = nil
			w.s.loops.Add(1)
			go w.loop()
		}
		ch := w.change
		w.mu.Unlock()
		select {
		case <-ch:
			waited = true
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for python worker %d: %w", w.idx, ctx.Err())
		}
	}
}

func (w *worker) loop() {
	defer w.s.loops.Done()
	bo := backoff.New(w.s.cfg.RestartBackoff, w.s.cfg.MaxRestartBackoff)
	for {
		ctx, cancel := context.WithTimeout(w.s.ctx, w.s.cfg.StartTimeout)
		p, err := startProcess(ctx, &w.s.cfg, w.idx, w.s.pkgDir)
		cancel()
		if err == nil {
			err = w.reload(p)
		}
		if err != nil {
			err = fmt.Errorf("%w: %v", api.ErrLoadFailed, err)
			w.mu.Lock()
			w.startErr = err
			w.broadcast()
			if w.closed || len(w.models) == 0 {
				w.running = false
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			if !w.wait(bo.Next()) {
				w.stop()
				return
			}
			continue
		}

		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			p.shutdown(2 * time.Second)
			w.stop()
			return
		}
		w.proc = p
		w.lastPID = p.pid
		w.startErr = nil
		w.broadcast()
		w.mu.Unlock()

		<-p.dead

		w.mu.Lock()
		w.proc = nil
		w.restarts++
		if w.closed || len(w.models) == 0 {
			w.running = false
			w.broadcast()
			w.mu.Unlock()
			return
		}
		w.broadcast()
		w.mu.Unlock()
		if time.Since(p.started) > 30*time.Second {
			bo.Reset()
		}
		d := bo.Next()
		w.s.logf("python worker %d: %v; restarting in %v", w.idx, p.deathErr(), d)
		if !w.wait(d) {
			w.stop()
			return
		}
	}
}

// wait waits d, or less if the supervisor closes (then false).
func (w *worker) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.s.ctx.Done():
		return false
	}
}

func (w *worker) stop() {
	w.mu.Lock()
	w.running = false
	w.broadcast()
	w.mu.Unlock()
}

// reload loads the slot's models into a fresh process. A model that fails
// to load is marked broken (its requests get that error); only the death
// of the process fails the reload as a whole. A model whose load killed the
// process three times in a row is not tried again.
func (w *worker) reload(p *process) error {
	w.mu.Lock()
	todo := make([]*shared, 0, len(w.models))
	for _, m := range w.models {
		if m.reloadCrashes < 3 {
			todo = append(todo, m)
		}
	}
	w.mu.Unlock()
	for _, m := range todo {
		ctx, cancel := context.WithTimeout(w.s.ctx, w.s.cfg.LoadTimeout+time.Second)
		res, err := m.loadInto(ctx, p)
		cancel()
		if p.deathErr() != nil {
			w.mu.Lock()
			m.reloadCrashes++
			if m.reloadCrashes >= 3 {
				m.reloadErr = fmt.Errorf("%w: model %s: reloading it killed python worker %d three times: %v", api.ErrInternal, m.key, w.idx, p.deathErr())
			}
			w.mu.Unlock()
			return p.deathErr()
		}
		w.mu.Lock()
		_, still := w.models[m.handle]
		if err != nil {
			m.reloadErr = fmt.Errorf("%w: model %s: reload after a worker restart failed: %v", api.ErrInternal, m.key, err)
			m.loadedIn = nil
		} else {
			m.reloadErr = nil
			m.reloadCrashes = 0
			m.loadedIn = p
			m.setResult(res)
		}
		w.mu.Unlock()
		if err == nil && !still {
			// Closed while it was reloading: nobody will unload it later.
			ctx, cancel := context.WithTimeout(w.s.ctx, w.s.cfg.CallTimeout+time.Second)
			req := &api.WorkerRequest{Kind: &api.WorkerRequest_Unload{Unload: &api.WorkerUnload{Handle: m.handle}}}
			_, _ = p.call(ctx, req, w.s.cfg.CallTimeout, "unload "+m.key)
			cancel()
		}
	}
	return nil
}

var errClosed = fmt.Errorf("%w: pyworker: supervisor closed", api.ErrInternal)

// isClosed reports whether err says the supervisor is closed.
func isClosed(err error) bool { return errors.Is(err, errClosed) }
