package actors

import (
	"runtime"

	"github.com/asynkron/protoactor-go/actor"
)

// poolDispatcher runs mailboxes on reused goroutines. protoactor's default
// dispatcher starts a new goroutine every time a mailbox gets work, and that
// goroutine grows its stack afresh on every run (stack copying was a tenth
// of the CPU at high request rates). A run takes an idle worker if there is
// one and otherwise starts a goroutine, so it never waits; after a run a
// worker parks as idle if fewer than maxIdle are parked, else it exits. The
// pool is shared by every model actor in the process, so at most maxIdle
// goroutines stay parked.
type poolDispatcher struct {
	throughput int
	idle       chan chan func()
}

var _ actor.Dispatcher = (*poolDispatcher)(nil)

// mailboxes is the dispatcher of all model actors in this process.
var mailboxes = newPoolDispatcher(300, 16*runtime.GOMAXPROCS(0)+32)

func newPoolDispatcher(throughput, maxIdle int) *poolDispatcher {
	return &poolDispatcher{throughput: throughput, idle: make(chan chan func(), maxIdle)}
}

// Schedule runs fn on an idle worker or a new goroutine.
func (d *poolDispatcher) Schedule(fn func()) {
	select {
	case w := <-d.idle:
		w <- fn
	default:
		go d.worker(fn)
	}
}

// Throughput is how many messages a mailbox run handles before yielding.
func (d *poolDispatcher) Throughput() int { return d.throughput }

func (d *poolDispatcher) worker(fn func()) {
	work := make(chan func(), 1)
	for {
		fn()
		select {
		case d.idle <- work:
		default:
			return // enough idle workers already
		}
		fn = <-work
	}
}
