package manta_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/modelhost"
)

// hungStore is a directory store whose version reads (Latest, Manifest)
// or artifact reads (Open) hang while armed: until the caller's ctx ends,
// or release closes. (Placement's size estimate reads versions too; a
// first load is hung at Open, which only the load calls.)
type hungStore struct {
	modelhost.Store
	versions atomic.Bool   // Latest and Manifest hang
	files    atomic.Bool   // Open hangs
	blocked  atomic.Int32  // reads hanging now
	entered  chan struct{} // a value per read that starts hanging
	release  chan struct{} // closed by the test's cleanup
}

func newHungStore(t *testing.T, root string) *hungStore {
	t.Helper()
	ds, err := modelhost.NewDirStore(root)
	if err != nil {
		t.Fatal(err)
	}
	return &hungStore{Store: ds, entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (s *hungStore) hang(ctx context.Context, armed *atomic.Bool) error {
	if !armed.Load() {
		return nil
	}
	s.blocked.Add(1)
	defer s.blocked.Add(-1)
	select {
	case s.entered <- struct{}{}:
	default:
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.release:
		return nil
	}
}

func (s *hungStore) Latest(ctx context.Context, id string) (string, error) {
	if err := s.hang(ctx, &s.versions); err != nil {
		return "", err
	}
	return s.Store.Latest(ctx, id)
}

func (s *hungStore) Manifest(ctx context.Context, id, version string) (*modelhost.Manifest, error) {
	if err := s.hang(ctx, &s.versions); err != nil {
		return nil, err
	}
	return s.Store.Manifest(ctx, id, version)
}

func (s *hungStore) Open(ctx context.Context, id, version, path string) (io.ReadCloser, error) {
	if err := s.hang(ctx, &s.files); err != nil {
		return nil, err
	}
	return s.Store.Open(ctx, id, version, path)
}

// waitEntered waits until a store read hangs.
func (s *hungStore) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-s.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no store read reached the hung store")
	}
}

// startHung starts a member over a hung store holding model lin v1. The
// store's hanging reads are released before the member closes.
func startHung(t *testing.T, mod func(*manta.Config)) (*manta.Client, *hungStore) {
	t.Helper()
	root := t.TempDir()
	mustLinear(t, root, "lin", "1", []float64{1}, 0)
	store := newHungStore(t, root)
	c := startMember(t, root, func(cfg *manta.Config) {
		cfg.StoreImpl = store
		cfg.PollInterval = -1 // only the test reads versions
		if mod != nil {
			mod(cfg)
		}
	})
	t.Cleanup(func() { close(store.release) }) // runs before the member closes
	return c, store
}

func isActive(c *manta.Client, identity string) bool {
	for _, id := range c.Host().Active() {
		if id == identity {
			return true
		}
	}
	return false
}

// A reload whose store reads hang answers load_failed once ReloadTimeout
// passes (it and the reload waiting behind it), and the actor is no longer
// "reloading": it gives its model up on memory pressure like any idle one.
// Before, the reload ran on context.Background: never answered, and the
// actor never went idle.
func TestReloadTimesOutOnHungStore(t *testing.T) {
	c, store := startHung(t, func(cfg *manta.Config) { cfg.ReloadTimeout = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := c.Model("lin").Predict(ctx, []byte(`{"features":[1]}`)).Get(ctx); err != nil {
		t.Fatal(err)
	}
	store.versions.Store(true)
	errs := make(chan error, 2)
	reload := func() {
		_, _, err := c.Model("lin").Reload(ctx)
		errs <- err
	}
	go reload()
	store.waitEntered(t)
	go reload() // waits behind the running reload
	for i := 0; i < 2; i++ {
		err := <-errs
		if !errors.Is(err, manta.ErrLoadFailed) || !strings.Contains(err.Error(), "reload timed out") {
			t.Fatalf("reload %d on a hung store: %v; want load_failed, reload timed out", i, err)
		}
	}
	// The old version still serves.
	res, err := c.Model("lin").Predict(ctx, []byte(`{"features":[2]}`)).Get(ctx)
	if err != nil || res.Version != "1" {
		t.Fatalf("after the failed reload: %+v, %v", res, err)
	}
	waitFor(t, 10*time.Second, func() bool {
		c.Host().Pressure(1) // idle actors deactivate
		return !isActive(c, "lin")
	}, "the actor to go idle after its reload timed out")
}

// A load that hangs runs out at LoadTimeout with load_failed (it had a
// hard-coded 10 minutes).
func TestLoadTimesOutOnHungStore(t *testing.T) {
	c, store := startHung(t, func(cfg *manta.Config) { cfg.LoadTimeout = 200 * time.Millisecond })
	store.files.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err := c.Model("lin").Predict(ctx, []byte(`{"features":[1]}`), manta.WithTimeout(10*time.Second)).Get(ctx)
	if !errors.Is(err, manta.ErrLoadFailed) || !strings.Contains(err.Error(), "load timed out") {
		t.Fatalf("predict on a hung store: %v; want load_failed, load timed out", err)
	}
	waitFor(t, 10*time.Second, func() bool { return !isActive(c, "lin") }, "no activation left behind")
}

// Stopping an activation whose load or reload hangs ends the hung store
// read (its context is the actor's life) and answers whoever waits: the
// caller retries on a fresh activation. Before, the read hung on (the
// acquire's 10-minute context, the reload's context.Background) and the
// reload's caller was never answered.
func TestStopEndsHungLoadAndReload(t *testing.T) {
	for _, reload := range []bool{false, true} {
		name := "load"
		if reload {
			name = "reload"
		}
		t.Run(name, func(t *testing.T) {
			c, store := startHung(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			m := c.Model("lin")
			if reload {
				if _, err := m.Predict(ctx, []byte(`{"features":[1]}`)).Get(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// a reload hangs re-reading the version, a first load
			// fetching the files
			armed := &store.files
			if reload {
				armed = &store.versions
			}
			armed.Store(true)
			done := make(chan error, 1)
			go func() {
				if reload {
					_, _, err := m.Reload(ctx)
					done <- err
					return
				}
				_, err := m.Predict(ctx, []byte(`{"features":[1]}`)).Get(ctx)
				done <- err
			}()
			store.waitEntered(t)
			armed.Store(false) // the retry on a fresh activation reads the store as usual
			if !c.Host().Stop("lin") {
				t.Fatal("no activation to stop")
			}
			waitFor(t, 10*time.Second, func() bool { return store.blocked.Load() == 0 }, "the hung store read to end with its activation")
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("the %s's caller, answered after the stop: %v", name, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the %s's caller was never answered", name)
			}
		})
	}
}
