package actors

import (
	"context"
	"testing"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/modelhost"
)

// A lease loaded for an actor is never lost: taken by the actor on
// receipt, released by end while its message is on the way (the actor
// stopped before reading it), or released at once when delivered after
// end.
func TestLifetimeNeverLosesALease(t *testing.T) {
	root := t.TempDir()
	if err := modelgen.Linear(root, "lin", "1", []float64{1}, 0, "identity"); err != nil {
		t.Fatal(err)
	}
	store, err := modelhost.NewDirStore(root)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := modelhost.NewCache(store, modelhost.CacheConfig{BudgetBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cache.Close() })
	m, err := store.Manifest(context.Background(), "lin", "1")
	if err != nil {
		t.Fatal(err)
	}
	lease := func() *modelhost.Lease {
		l, err := cache.Acquire(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	pinned := func() int64 { return cache.Stats().Pinned }
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	got := make(chan *modelhost.Lease, 1)
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if msg, ok := ctx.Message().(*loaded); ok {
			got <- msg.lease
		}
	}))
	silent := sys.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))

	// received: the actor owns it, end leaves it alone
	l := newLifetime()
	a := lease()
	l.deliver(sys, pid, a, &loaded{lease: a})
	l.received(<-got)
	l.end()
	if pinned() == 0 {
		t.Fatal("end released a lease the actor had taken")
	}
	a.Release()

	// on the way when the actor stops: end releases it
	l = newLifetime()
	b := lease()
	l.deliver(sys, silent, b, &loaded{lease: b})
	l.end()
	if n := pinned(); n != 0 {
		t.Fatalf("pinned %d after end with a lease on its way", n)
	}
	if l.ctx.Err() == nil {
		t.Fatal("end left the lifetime's context running")
	}

	// delivered after end: released, not sent
	c := lease()
	l.deliver(sys, pid, c, &loaded{lease: c})
	if n := pinned(); n != 0 {
		t.Fatalf("pinned %d after a delivery to an ended lifetime", n)
	}
	select {
	case <-got:
		t.Fatal("a lease was sent to an actor whose life had ended")
	default:
	}
}
