package router

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is an exponential backoff with jitter between min and max, for
// retrying while Redis is unreachable. Not safe for concurrent use: each
// loop has its own.
type backoff struct {
	min, max time.Duration
	next     time.Duration
}

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max, next: min}
}

// wait sleeps for the next backoff interval (randomised to 50–100% of it,
// so that many routers do not reconnect in lockstep) and doubles it. It
// returns false when ctx is done first.
func (b *backoff) wait(ctx context.Context) bool {
	d := b.next/2 + rand.N(b.next/2+1)
	b.next *= 2
	if b.next > b.max {
		b.next = b.max
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// reset starts again from the minimum after a success.
func (b *backoff) reset() { b.next = b.min }
