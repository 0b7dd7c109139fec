// Package backoff is the project's one retry backoff: exponential, capped,
// with jitter so that many retriers (routers reconnecting to Redis, calls
// looking for a moved activation, restarting workers) do not retry in
// lockstep.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay is the wait before retry n+1 (n = 0 for the first retry): min·2^n,
// capped at max, then randomised to 50–100% of that.
func Delay(min, max time.Duration, n int) time.Duration {
	d := max
	if n < 62 && min<<n > 0 && min<<n < max {
		d = min << n
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Backoff counts the retries of one loop. Not safe for concurrent use: each
// loop has its own.
type Backoff struct {
	Min, Max time.Duration
	n        int
}

// New returns a Backoff from min doubling to max.
func New(min, max time.Duration) *Backoff { return &Backoff{Min: min, Max: max} }

// Next returns the next wait and counts it.
func (b *Backoff) Next() time.Duration {
	d := Delay(b.Min, b.Max, b.n)
	b.n++
	return d
}

// Reset starts again from Min after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Wait sleeps for Next; it returns false when ctx is done first.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
