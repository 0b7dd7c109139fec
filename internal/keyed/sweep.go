package keyed

import (
	"sync"
	"sync/atomic"
	"time"
)

// Sweeper visits every value of a Table each interval, on one goroutine
// that runs only while the table holds values: it exits when a sweep finds
// the table empty, and Wake (called after each Add) starts it again. It
// reuses one snapshot buffer from sweep to sweep. It is the one lost-call
// sweeper: the SDK's (Refs past their deadline, or sent to an activation
// that is gone) and the collectors' (speculative calls sent to a stopped
// activation) both run on it.
type Sweeper[T any] struct {
	table *Table[T]
	every time.Duration
	visit func(now time.Time, v T)
	ended func() bool // optional: true stops the sweeper (the actor system stopped)

	running atomic.Bool
	stopped atomic.Bool
	mu      sync.Mutex
	exited  sync.Cond // signalled (under mu) when a run exits
}

// NewSweeper returns a sweeper calling visit on each value of t every
// interval; ended, if not nil, is asked at each sweep whether to stop for
// good. Nothing runs until Wake.
func NewSweeper[T any](t *Table[T], every time.Duration, visit func(now time.Time, v T), ended func() bool) *Sweeper[T] {
	s := &Sweeper[T]{table: t, every: every, visit: visit, ended: ended}
	s.exited.L = &s.mu
	return s
}

// Wake makes sure the sweeper runs; call it after adding a value. On the
// hot path it is one atomic load.
func (s *Sweeper[T]) Wake() {
	if s.running.Load() {
		return
	}
	s.mu.Lock()
	if !s.stopped.Load() && s.running.CompareAndSwap(false, true) {
		go s.run()
	}
	s.mu.Unlock()
}

// Stop ends the sweeper and waits for its goroutine to exit; Wake does
// nothing afterwards.
func (s *Sweeper[T]) Stop() {
	s.mu.Lock()
	s.stopped.Store(true)
	for s.running.Load() {
		s.exited.Wait()
	}
	s.mu.Unlock()
}

// Running reports whether the sweeper's goroutine is running.
func (s *Sweeper[T]) Running() bool { return s.running.Load() }

func (s *Sweeper[T]) done() bool {
	return s.stopped.Load() || s.ended != nil && s.ended()
}

func (s *Sweeper[T]) run() {
	t := time.NewTicker(s.every)
	defer t.Stop()
	var buf []T
	for range t.C {
		if !s.done() {
			buf = s.table.Snapshot(buf[:0])
		}
		if len(buf) == 0 || s.done() {
			// Mark idle before looking again: a value added since the
			// snapshot whose Wake saw the sweeper still running is seen
			// by the Len below, and the sweeper takes over again.
			s.running.Store(false)
			if s.done() || s.table.Len() == 0 || !s.running.CompareAndSwap(false, true) {
				s.mu.Lock()
				s.exited.Broadcast()
				s.mu.Unlock()
				return
			}
			continue
		}
		now := time.Now()
		for _, v := range buf {
			s.visit(now, v)
		}
		clear(buf)
	}
}
