package modelhost

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/manta-ml/manta/api"
)

func TestCacheSingleFlight(t *testing.T) {
	store := newDirStore(t)
	gate, open := newGate()
	m := putVersion(t, store, testManifest(uniqueID("sf"), 100, "gate", gate), nil)
	c := newCache(t, store, 1000)

	const n = 100
	var wg sync.WaitGroup
	leases := make([]*Lease, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			leases[i], errs[i] = c.Acquire(context.Background(), m)
		}(i)
	}
	eventually(t, "all Acquires waiting on the load", func() bool { return c.Stats().Shared == n-1 })
	open()
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("Acquire %d: %v", i, errs[i])
		}
		if leases[i].Model() != leases[0].Model() {
			t.Fatalf("Acquire %d got a different model", i)
		}
	}
	if got := loadsOf(m.Key()); got != 1 {
		t.Errorf("runtime loads = %d, want 1", got)
	}
	st := c.Stats()
	if st.Loads != 1 || st.Shared != n-1 || st.Pinned != 100 || st.Used != 100 {
		t.Errorf("stats = %+v, want 1 load, %d shared, 100 pinned and used", st, n-1)
	}
	for _, l := range leases {
		l.Release()
		l.Release() // idempotent
	}
	if st := c.Stats(); st.Pinned != 0 || st.Used != 100 || st.Models != 1 {
		t.Errorf("after release stats = %+v, want 0 pinned, model still loaded", st)
	}
	// A warm Acquire is a hit.
	l, err := c.Acquire(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if st := c.Stats(); st.Hits != 1 || st.Loads != 1 {
		t.Errorf("stats = %+v, want 1 hit 1 load", st)
	}
}

func TestCacheLRUEvictionKeepsPinned(t *testing.T) {
	store := newDirStore(t)
	var ms []*Manifest
	for i := 0; i < 4; i++ {
		ms = append(ms, putVersion(t, store, testManifest(uniqueID("lru"), 100), nil))
	}
	var mu sync.Mutex
	var evicted []string
	c, err := NewCache(store, CacheConfig{BudgetBytes: 300, OnEvent: func(ev CacheEvent) {
		if ev.Kind == EventEvict {
			mu.Lock()
			evicted = append(evicted, ev.ID)
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	acquire := func(m *Manifest) *Lease {
		t.Helper()
		l, err := c.Acquire(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	pinned := acquire(ms[0]) // oldest, but pinned throughout
	acquire(ms[1]).Release()
	acquire(ms[2]).Release()
	acquire(ms[1]).Release() // ms[1] is now more recent than ms[2]
	// Full: ms[0] pinned, ms[1], ms[2] unpinned. Loading ms[3] evicts ms[2].
	acquire(ms[3]).Release()
	mu.Lock()
	if len(evicted) != 1 || evicted[0] != ms[2].ID {
		t.Fatalf("evicted %v, want [%s] (least recently used, unpinned)", evicted, ms[2].ID)
	}
	mu.Unlock()
	if closesOf(ms[2].Key()) != 1 {
		t.Errorf("evicted model not closed")
	}
	keys := func() []string {
		var ks []string
		for _, e := range c.Loaded() {
			ks = append(ks, e.ID)
		}
		return ks
	}
	if got := keys(); len(got) != 3 {
		t.Fatalf("loaded %v, want 3 models", got)
	}
	// Reloading ms[2] evicts ms[1] then (still needing room? no: one victim
	// suffices), never ms[0].
	for i := 0; i < 5; i++ {
		acquire(ms[1+i%3]).Release()
	}
	for _, e := range c.Loaded() {
		if e.ID == ms[0].ID && e.Refs != 1 {
			t.Errorf("pinned model refs = %d", e.Refs)
		}
	}
	mu.Lock()
	for _, id := range evicted {
		if id == ms[0].ID {
			t.Fatalf("pinned model %s was evicted", id)
		}
	}
	mu.Unlock()
	if st := c.Stats(); st.HighWater > st.Budget || st.Pinned != 100 {
		t.Errorf("stats %+v: high water above budget or pinned wrong", st)
	}
	// Evict: refused for the pinned one, allowed for others.
	if err := c.Evict(ms[0].Key()); err == nil {
		t.Error("Evict of a pinned model succeeded")
	}
	if err := c.Evict("nope@1"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Evict unknown: %v, want ErrNotFound", err)
	}
	pinned.Release()
	if err := c.Evict(ms[0].Key()); err != nil {
		t.Errorf("Evict after release: %v", err)
	}
}

func TestCacheTooLarge(t *testing.T) {
	store := newDirStore(t)
	c := newCache(t, store, 1000)
	ctx := context.Background()
	big := putVersion(t, store, testManifest(uniqueID("big"), 1001), nil)
	_, err := c.Acquire(ctx, big)
	var tl *TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, api.ErrTooLarge) {
		t.Fatalf("Acquire: %v, want *TooLargeError wrapping ErrTooLarge", err)
	}
	if tl.Need != 1001 || tl.Largest != 1000 || tl.Model != big.Key() {
		t.Errorf("TooLargeError = %+v", tl)
	}
	if loadsOf(big.Key()) != 0 {
		t.Error("a too large model was loaded")
	}

	// Fits the budget, but not beside the pinned models.
	a := putVersion(t, store, testManifest(uniqueID("a"), 600), nil)
	la, err := c.Acquire(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	b := putVersion(t, store, testManifest(uniqueID("b"), 500), nil)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = c.Acquire(short, b)
	cancel()
	if !errors.Is(err, api.ErrOverloaded) || errors.Is(err, api.ErrTooLarge) {
		t.Fatalf("Acquire beside pinned: %v, want overloaded (it fits once the pinned model is released)", err)
	}
	got := make(chan error, 1)
	go func() {
		lb, err := c.Acquire(ctx, b) // waits for the release, then a is evicted
		if err == nil {
			lb.Release()
		}
		got <- err
	}()
	la.Release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}

	// The measured size counts: an estimate that fits but a model that
	// turns out bigger than the budget is refused and closed.
	liar := putVersion(t, store, testManifest(uniqueID("liar"), 10, "mem", "5000"), nil)
	if _, err := c.Acquire(ctx, liar); !errors.Is(err, api.ErrTooLarge) {
		t.Fatalf("Acquire of an underestimated model: %v, want too_large", err)
	}
	if closesOf(liar.Key()) != 1 {
		t.Error("refused model not closed")
	}
	if st := c.Stats(); st.Used != 500 || st.Failures != 3 {
		t.Errorf("stats %+v, want used 500 (b), 3 failures", st)
	}
}

func TestCacheBudgetInvariant(t *testing.T) {
	store := newDirStore(t)
	const budget = 1000
	rng := rand.New(rand.NewSource(1))
	var ms []*Manifest
	for i := 0; i < 30; i++ {
		ms = append(ms, putVersion(t, store, testManifest(uniqueID("inv"), int64(50+rng.Intn(250))), nil))
	}
	var violation sync.Once
	var bad string
	var c *Cache
	check := func(CacheEvent) {
		if st := c.Stats(); st.Used > budget || st.Pinned > budget {
			violation.Do(func() { bad = fmt.Sprintf("%+v", st) })
		}
	}
	c, err := NewCache(store, CacheConfig{BudgetBytes: budget, OnEvent: check})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			for i := 0; i < 200; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				l, err := c.Acquire(ctx, ms[rng.Intn(len(ms))])
				cancel()
				if err != nil {
					// Only admission refusals are expected under contention.
					if !errors.Is(err, api.ErrTooLarge) && !errors.Is(err, api.ErrOverloaded) {
						t.Error(err)
						return
					}
					continue
				}
				if _, err := l.Model().Predict(context.Background(), []Input{{}}); err != nil {
					t.Error(err)
				}
				l.Release()
			}
		}(int64(g))
	}
	wg.Wait()
	st := c.Stats()
	if bad != "" {
		t.Errorf("budget exceeded: %s", bad)
	}
	if st.HighWater > budget {
		t.Errorf("high water %d above budget %d", st.HighWater, budget)
	}
	if st.Pinned != 0 || st.Loading != 0 {
		t.Errorf("after all releases: %+v", st)
	}
	var sum int64
	for _, e := range c.Loaded() {
		sum += e.Bytes
	}
	if sum != st.Used {
		t.Errorf("loaded models sum to %d, Used = %d", sum, st.Used)
	}
	if st.Evictions == 0 {
		t.Errorf("no evictions: the test did not exercise the budget (%+v)", st)
	}
	t.Logf("stats: %+v", st)
}

func TestCacheUnderestimateOvershootBounded(t *testing.T) {
	// Models whose measured size exceeds their estimate: used may pass the
	// budget only by one load's underestimate, and is brought back at the
	// next admission.
	store := newDirStore(t)
	c := newCache(t, store, 1000)
	ctx := context.Background()
	var ms []*Manifest
	for i := 0; i < 6; i++ {
		ms = append(ms, putVersion(t, store, testManifest(uniqueID("under"), 200, "mem", "300"), nil))
	}
	for round := 0; round < 3; round++ {
		for _, m := range ms {
			l, err := c.Acquire(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			l.Release()
			if st := c.Stats(); st.Used > st.Budget {
				t.Fatalf("used %d above budget after settling", st.Used)
			}
		}
	}
	if st := c.Stats(); st.HighWater > 1000+100 {
		t.Errorf("high water %d: more than one underestimate above budget", st.HighWater)
	}
}

func TestCacheWaitsForRoomThenOverloaded(t *testing.T) {
	store := newDirStore(t)
	c := newCache(t, store, 1000)
	gate, open := newGate()
	defer open()
	// The slow load holds its reservation until the gate opens, then fails
	// (a success would pin it and make "other" too large beside it).
	slow := putVersion(t, store, testManifest(uniqueID("slow"), 800, "gate", gate, "fail", "slow failed"), nil)
	other := putVersion(t, store, testManifest(uniqueID("other"), 500), nil)

	slowDone := make(chan error, 1)
	go func() {
		l, err := c.Acquire(context.Background(), slow)
		if err == nil {
			l.Release()
		}
		slowDone <- err
	}()
	eventually(t, "slow load reserved", func() bool { return c.Stats().Used == 800 })

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Acquire(ctx, other)
	if !errors.Is(err, api.ErrOverloaded) {
		t.Fatalf("Acquire while room is held by a load: %v, want overloaded", err)
	}

	// With a patient caller, the admission goes through once the slow
	// load's reservation is returned.
	got := make(chan error, 1)
	go func() {
		l, err := c.Acquire(context.Background(), other)
		if err == nil {
			l.Release()
		}
		got <- err
	}()
	eventually(t, "patient Acquire waiting", func() bool { return c.Stats().Loading == 2 })
	open()
	if err := <-slowDone; !errors.Is(err, api.ErrLoadFailed) {
		t.Fatalf("slow load: %v", err)
	}
	if err := <-got; err != nil {
		t.Fatalf("patient Acquire: %v", err)
	}
	if st := c.Stats(); st.HighWater > 1000 {
		t.Errorf("high water %d", st.HighWater)
	}
}

func TestCacheAbandonedLoadIsCancelled(t *testing.T) {
	store := newDirStore(t)
	c := newCache(t, store, 1000)
	gate, open := newGate()
	defer open()
	m := putVersion(t, store, testManifest(uniqueID("abandon"), 100, "gate", gate), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := c.Acquire(ctx, m)
		done <- err
	}()
	eventually(t, "load started", func() bool { return loadsOf(m.Key()) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire: %v, want context.Canceled", err)
	}
	eventually(t, "load cancelled", func() bool { st := c.Stats(); return st.Loading == 0 && st.Used == 0 })
	if st := c.Stats(); st.Failures != 1 || st.Loads != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestCacheVerifyMismatchRefusesLoad(t *testing.T) {
	store := newDirStore(t)
	c := newCache(t, store, 1<<20)
	m := putVersion(t, store, &Manifest{ID: uniqueID("tamper"), Version: "3", Runtime: LinearRuntimeName,
		Entrypoint: "model.json"}, map[string][]byte{"model.json": []byte(`{"weights":[1,2],"bias":0}`)})
	// Same size, different content.
	p := filepath.Join(store.Root(), m.ID, "3", "model.json")
	if err := os.WriteFile(p, []byte(`{"weights":[9,2],"bias":0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := c.Acquire(context.Background(), m)
	if !errors.Is(err, api.ErrLoadFailed) {
		t.Fatalf("Acquire of a tampered model: %v, want load_failed", err)
	}
	for _, want := range []string{"load " + m.ID + " v3", "verify model.json", "sha256 mismatch", m.Files[0].SHA256} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if api.CodeOf(err) != api.ErrorCode_ERROR_CODE_LOAD_FAILED {
		t.Errorf("CodeOf = %v", api.CodeOf(err))
	}
	if st := c.Stats(); st.Models != 0 || st.Used != 0 || st.Loads != 0 {
		t.Errorf("stats after a refused load: %+v", st)
	}
}

func TestCacheRuntimeFailures(t *testing.T) {
	store := newDirStore(t)
	c := newCache(t, store, 1<<20)
	ctx := context.Background()
	cases := []struct {
		name string
		m    *Manifest
		want []string
	}{
		{"panic", testManifest(uniqueID("panic"), 10, "panic", "boom"), []string{"panicked", "boom"}},
		{"error", testManifest(uniqueID("fail"), 10, "fail", "no weights here"), []string{"no weights here"}},
		{"unknown go func", &Manifest{ID: uniqueID("nofunc"), Version: "1", Runtime: GoRuntimeName, Entrypoint: "no-such-func"},
			[]string{`"no-such-func" is not registered`, testFunc}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := putVersion(t, store, tc.m, nil)
			_, err := c.Acquire(ctx, m)
			if !errors.Is(err, api.ErrLoadFailed) {
				t.Fatalf("Acquire: %v, want load_failed", err)
			}
			for _, w := range append(tc.want, "load "+m.ID+" v1") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// Not cached: the next Acquire loads again.
			before := loadsOf(m.Key())
			c.Acquire(ctx, m)
			if m.Runtime == GoRuntimeName && m.Entrypoint == testFunc && loadsOf(m.Key()) != before+1 {
				t.Errorf("failed load was cached")
			}
		})
	}
	if st := c.Stats(); st.Used != 0 || st.Models != 0 {
		t.Errorf("stats %+v", st)
	}
}

// openOnly hides DirStore's Fetch, as a remote store without one.
type openOnly struct{ Store }

func TestCacheFetchesThroughOpen(t *testing.T) {
	ds := newDirStore(t)
	store := openOnly{ds}
	fetchDir := t.TempDir()
	c, err := NewCache(store, CacheConfig{BudgetBytes: 1 << 20, FetchDir: fetchDir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := putVersion(t, store, &Manifest{ID: uniqueID("remote"), Version: "2", Runtime: LinearRuntimeName,
		Entrypoint: "w/model.json"}, map[string][]byte{"w/model.json": []byte(`{"weights":[1,2],"bias":1}`)})
	l, err := c.Acquire(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.Model().Predict(context.Background(), []Input{{Payload: []byte(`{"features":[1,1]}`)}})
	if err != nil || string(out[0].Payload) != `{"prediction":4}` {
		t.Fatalf("Predict = %q, %v", out[0].Payload, err)
	}
	l.Release()
	if _, err := os.Stat(filepath.Join(fetchDir, m.ID, "2", "w", "model.json")); err != nil {
		t.Errorf("fetched file: %v", err)
	}
	// A corrupted store copy: evict, tamper, reload -> refused (the local
	// copy is fine, so tamper with it too).
	if err := c.Evict(m.Key()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(ds.Root(), m.ID, "2", "w", "model.json"), filepath.Join(fetchDir, m.ID, "2", "w", "model.json")} {
		if err := os.WriteFile(p, []byte(`{"weights":[7,2],"bias":1}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Acquire(context.Background(), m)
	if !errors.Is(err, api.ErrLoadFailed) || !strings.Contains(err.Error(), "verify w/model.json: sha256 mismatch") {
		t.Fatalf("Acquire of tampered remote model: %v", err)
	}
	if _, err := os.Stat(filepath.Join(fetchDir, m.ID, "2", "w", "model.json")); err == nil {
		// The bad local copy was replaced by a fetch that failed: it must
		// not be left claiming to be the file.
		b, _ := os.ReadFile(filepath.Join(fetchDir, m.ID, "2", "w", "model.json"))
		if sha(b) != m.Files[0].SHA256 && string(b) != `{"weights":[7,2],"bias":1}` {
			t.Errorf("unexpected local file %q", b)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(fetchDir, m.ID, "2", "w"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".manta-fetch-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestCacheClose(t *testing.T) {
	store := newDirStore(t)
	c, err := NewCache(store, CacheConfig{BudgetBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	m := putVersion(t, store, testManifest(uniqueID("close"), 10), nil)
	gate, open := newGate()
	defer open()
	stuck := putVersion(t, store, testManifest(uniqueID("stuck"), 10, "gate", gate), nil)
	l, err := c.Acquire(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	stuckErr := make(chan error, 1)
	go func() {
		_, err := c.Acquire(context.Background(), stuck)
		stuckErr <- err
	}()
	eventually(t, "stuck load started", func() bool { return loadsOf(stuck.Key()) == 1 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-stuckErr; err == nil {
		t.Error("Acquire of a load cut by Close succeeded")
	}
	if closesOf(m.Key()) != 1 {
		t.Error("Close did not close the loaded model")
	}
	l.Release()
	if _, err := c.Acquire(context.Background(), m); !errors.Is(err, ErrCacheClosed) {
		t.Errorf("Acquire after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCacheEstimateFromFiles(t *testing.T) {
	store := newDirStore(t)
	c := newCache(t, store, 1000)
	m := &Manifest{ID: uniqueID("est"), Version: "1", Runtime: GoRuntimeName, Entrypoint: testFunc,
		Options: map[string]string{"mem": "7"}}
	m = putVersion(t, store, m, map[string][]byte{"a.bin": make([]byte, 1500)})
	// Estimate = 1500 bytes of files > budget: refused before loading.
	if _, err := c.Acquire(context.Background(), m); !errors.Is(err, api.ErrTooLarge) {
		t.Fatalf("Acquire: %v, want too_large from the file-size estimate", err)
	}
	m2 := m.Clone()
	m2.MemoryBytes = 50 // memory_bytes overrides the file sizes
	m2.Version = "2"
	m2 = putVersion(t, store, m2, map[string][]byte{"a.bin": make([]byte, 1500)})
	l, err := c.Acquire(context.Background(), m2)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if st := c.Stats(); st.Used != 7 {
		t.Errorf("used %d, want the measured 7", st.Used)
	}
	if e := c.Loaded(); len(e) != 1 || e[0].Bytes != 7 || e[0].Refs != 1 || e[0].Version != "2" {
		t.Errorf("Loaded = %+v", e)
	}
	_ = strconv.Itoa
}
