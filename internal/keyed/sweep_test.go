package keyed

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/manta-ml/manta/internal/testenv"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, what, cond)
}

func TestSweeperRunsWhileValuesAreHeld(t *testing.T) {
	var tab Table[int]
	var visits atomic.Int64
	s := NewSweeper(&tab, time.Millisecond, func(time.Time, int) { visits.Add(1) }, nil)
	if s.Running() {
		t.Fatal("running before Wake")
	}
	k := tab.Add(1)
	s.Wake()
	waitFor(t, "a visit", func() bool { return visits.Load() > 0 })
	tab.Remove(k)
	waitFor(t, "the sweeper to stop when the table is empty", func() bool { return !s.Running() })
	// Added again: woken again.
	tab.Add(2)
	s.Wake()
	n := visits.Load()
	waitFor(t, "a visit after the restart", func() bool { return visits.Load() > n })
	s.Stop()
	if s.Running() {
		t.Fatal("running after Stop")
	}
	s.Wake()
	if s.Running() {
		t.Fatal("Wake restarted a stopped sweeper")
	}
}

func TestSweeperEnded(t *testing.T) {
	var tab Table[int]
	var ended atomic.Bool
	s := NewSweeper(&tab, time.Millisecond, func(time.Time, int) {}, ended.Load)
	tab.Add(1)
	s.Wake()
	ended.Store(true)
	waitFor(t, "the sweeper to end with the system", func() bool { return !s.Running() })
}

// Every Wake after an Add is followed by a visit of that value, however
// it interleaves with the sweeper going idle.
func TestSweeperNoLostWake(t *testing.T) {
	var tab Table[int]
	seen := make(chan int, 1)
	s := NewSweeper(&tab, 50*time.Microsecond, func(_ time.Time, v int) {
		select {
		case seen <- v:
		default:
		}
	}, nil)
	defer s.Stop()
	for i := range 300 {
		k := tab.Add(i)
		s.Wake()
		select {
		case <-seen:
		case <-time.After(5 * time.Second):
			t.Fatalf("value %d never visited", i)
		}
		tab.Remove(k)
		for len(seen) > 0 {
			<-seen
		}
	}
}
