package actors

import (
	"context"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/manta-ml/manta/modelhost"
)

// lifetime is a model actor's life as the goroutines it starts see it.
// Every load and reload the actor waits on runs under ctx, which ends when
// the actor stops (a deactivation, a move, the member shutting down), so
// no store read or load outlives the activation that wanted it.
//
// It also hands loaded leases to the actor without losing one: a message
// sent to an actor that stops before reading it is dropped by Proto.Actor
// (behind the PoisonPill in the mailbox, or dead-lettered once the actor
// is gone), and the pinned memory of a lease in it would never come back.
// A lease is registered as pending while its message is on the way; the
// actor takes it on receipt, and end releases whatever is still pending.
type lifetime struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	ended   bool
	pending map[*modelhost.Lease]struct{}
}

func newLifetime() *lifetime {
	ctx, cancel := context.WithCancel(context.Background())
	return &lifetime{ctx: ctx, cancel: cancel, pending: map[*modelhost.Lease]struct{}{}}
}

// deliver sends msg, which carries lease (nil for none), to the actor at
// pid; once the actor has stopped nothing is sent and the lease is
// released.
func (l *lifetime) deliver(sys *actor.ActorSystem, pid *actor.PID, lease *modelhost.Lease, msg any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		if lease != nil {
			lease.Release()
		}
		return
	}
	if lease != nil {
		l.pending[lease] = struct{}{}
	}
	sys.Root.Send(pid, msg)
}

// received is called by the actor when a delivered lease reaches it: the
// lease is the actor's to keep or release from now on.
func (l *lifetime) received(lease *modelhost.Lease) {
	if lease == nil {
		return
	}
	l.mu.Lock()
	delete(l.pending, lease)
	l.mu.Unlock()
}

// end cancels ctx and releases the leases still on their way. Called by
// the actor when it stops; deliveries after it release their lease.
func (l *lifetime) end() {
	l.cancel()
	l.mu.Lock()
	l.ended = true
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	for lease := range pending {
		lease.Release()
	}
}
