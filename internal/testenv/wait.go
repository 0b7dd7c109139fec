package testenv

import (
	"testing"
	"time"
)

// pollEvery is how often Poll checks its condition.
const pollEvery = 5 * time.Millisecond

// Poll checks cond until it holds (true) or d has passed (false): waiting on
// a condition with a deadline, never for a fixed time. It checks at once,
// then on a ticker.
func Poll(d time.Duration, cond func() bool) bool { return PollEvery(d, pollEvery, cond) }

// PollEvery is Poll checking every every: for conditions that are costly
// to check (an HTTP call, a scan of every request id).
func PollEvery(d, every time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return true
			}
		case <-deadline.C:
			return cond()
		}
	}
}

// WaitFor fails the test unless cond holds within d; what names the
// condition in the failure.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// SkipShort skips a slow test under -short, except in CI, where every test
// runs.
func SkipShort(t testing.TB, why string) {
	t.Helper()
	if testing.Short() && !InCI() {
		t.Skip(why)
	}
}
