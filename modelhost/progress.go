package modelhost

import (
	"sync"
	"time"
)

// Progress is how far one transfer got, for drawing a progress bar: Push
// reports the bytes of a whole version (PushOptions.Progress), a store may
// report the bytes of each file it uploads (s3store.WithProgress).
type Progress struct {
	ID, Version string
	Path        string        // the file being transferred
	Bytes       int64         // transferred so far
	Total       int64         // expected; -1 if unknown
	Rate        float64       // bytes per second since the transfer started
	ETA         time.Duration // time left at Rate; -1 if unknown
	Done        bool          // the last report of the transfer
}

// ProgressInterval bounds how often a ProgressMeter reports.
const ProgressInterval = 100 * time.Millisecond

// ProgressMeter counts the bytes of one transfer and reports them to a
// function, with rate and ETA: at most every ProgressInterval while bytes
// move, and once more, with Done set, at Finish. It is the one progress
// reporter (Push, s3store's uploads, the CLI's bar all read it). Safe for
// concurrent use; fn is called without the meter's lock held and must not
// block for long.
type ProgressMeter struct {
	fn  func(Progress)
	now func() time.Time

	mu    sync.Mutex
	p     Progress
	start time.Time
	last  time.Time
}

// NewProgressMeter starts metering a transfer described by p (ID, Version,
// Path, Total; a negative Total means unknown) that reports to fn. A nil fn
// makes a meter that only counts.
func NewProgressMeter(fn func(Progress), p Progress) *ProgressMeter {
	if p.Total < 0 {
		p.Total = -1
	}
	p.Bytes, p.Done = 0, false
	return &ProgressMeter{fn: fn, now: time.Now, p: p, start: time.Now()}
}

// SetPath names the file now being transferred.
func (m *ProgressMeter) SetPath(path string) {
	m.mu.Lock()
	m.p.Path = path
	m.mu.Unlock()
}

// Add counts n more bytes and reports if ProgressInterval has passed since
// the last report.
func (m *ProgressMeter) Add(n int64) {
	m.mu.Lock()
	m.p.Bytes += n
	now := m.now()
	if m.fn == nil || now.Sub(m.last) < ProgressInterval {
		m.mu.Unlock()
		return
	}
	m.last = now
	p := m.snapshot(now)
	m.mu.Unlock()
	m.fn(p)
}

// Write counts len(b) bytes, so that a meter can sit behind an
// io.TeeReader or an io.MultiWriter. It never fails.
func (m *ProgressMeter) Write(b []byte) (int, error) {
	m.Add(int64(len(b)))
	return len(b), nil
}

// Finish reports the transfer complete (Done, ETA 0; Bytes is Total when
// Total is known).
func (m *ProgressMeter) Finish() {
	m.mu.Lock()
	if m.p.Total >= 0 {
		m.p.Bytes = m.p.Total
	}
	p := m.snapshot(m.now())
	m.mu.Unlock()
	p.Done, p.ETA = true, 0
	if m.fn != nil {
		m.fn(p)
	}
}

// snapshot computes rate and ETA; m.mu held.
func (m *ProgressMeter) snapshot(now time.Time) Progress {
	p := m.p
	p.ETA = -1
	if el := now.Sub(m.start).Seconds(); el > 0 {
		p.Rate = float64(p.Bytes) / el
	}
	if p.Rate > 0 && p.Total >= 0 {
		p.ETA = time.Duration(float64(max(p.Total-p.Bytes, 0)) / p.Rate * float64(time.Second))
	}
	return p
}
