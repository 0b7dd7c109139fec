package modelhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testFunc is the "go" function the cache tests load. Its behaviour comes
// from the manifest's options:
//
//	mem:   measured MemoryBytes (default: the manifest's memory_bytes)
//	gate:  name of a gate (newGate) the load waits on
//	panic: panic in Load
//	fail:  return this error text
const testFunc = "modelhost-test"

var (
	testLoads   sync.Map // key -> *atomic.Int64
	testGates   sync.Map // name -> chan struct{}
	testClosed  sync.Map // key -> *atomic.Int64
	gateCounter atomic.Int64
)

func init() {
	RegisterFunc(testFunc, func(ctx context.Context, m *Manifest, dir string) (Model, error) {
		n, _ := testLoads.LoadOrStore(m.Key(), new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		if g := m.Options["gate"]; g != "" {
			ch, _ := testGates.Load(g)
			select {
			case <-ch.(chan struct{}):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if m.Options["panic"] != "" {
			panic("test runtime panic: " + m.Options["panic"])
		}
		if msg := m.Options["fail"]; msg != "" {
			return nil, errors.New(msg)
		}
		mem := m.MemoryBytes
		if s := m.Options["mem"]; s != "" {
			mem, _ = strconv.ParseInt(s, 10, 64)
		}
		key := m.Key()
		return &testModel{key: key, mem: mem}, nil
	})
}

type testModel struct {
	key string
	mem int64
}

func (t *testModel) Predict(ctx context.Context, batch []Input) ([]Output, error) {
	out := make([]Output, len(batch))
	for i := range batch {
		out[i].Payload = []byte(t.key)
	}
	return out, nil
}
func (t *testModel) MemoryBytes() int64 { return t.mem }
func (t *testModel) Close() error {
	n, _ := testClosed.LoadOrStore(t.key, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	return nil
}

func loadsOf(key string) int64 {
	n, ok := testLoads.Load(key)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

func closesOf(key string) int64 {
	n, ok := testClosed.Load(key)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// newGate returns a gate name for the "gate" option and the func opening it.
func newGate() (string, func()) {
	name := fmt.Sprintf("gate-%d", gateCounter.Add(1))
	ch := make(chan struct{})
	testGates.Store(name, ch)
	var once sync.Once
	return name, func() { once.Do(func() { close(ch) }) }
}

var idCounter atomic.Int64

// uniqueID returns a model id not used by any other test in this process
// (the load counters are global).
func uniqueID(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, idCounter.Add(1))
}

// testManifest is a "go" manifest for testFunc with memory_bytes mem.
func testManifest(id string, mem int64, opts ...string) *Manifest {
	m := &Manifest{ID: id, Version: "1", Runtime: GoRuntimeName, Entrypoint: testFunc, MemoryBytes: mem,
		Options: map[string]string{}}
	for i := 0; i+1 < len(opts); i += 2 {
		m.Options[opts[i]] = opts[i+1]
	}
	return m
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// putVersion writes files and then the manifest of m (its Files filled in
// from files) into store.
func putVersion(t testing.TB, store Store, m *Manifest, files map[string][]byte) *Manifest {
	t.Helper()
	ctx := context.Background()
	m = m.Clone()
	m.Files = nil
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		b := files[p]
		m.Files = append(m.Files, File{Path: p, Size: int64(len(b)), SHA256: sha(b)})
		if err := store.Put(ctx, m.ID, m.Version, p, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, m.ID, m.Version, ManifestName, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	return m
}

func newDirStore(t testing.TB) *DirStore {
	t.Helper()
	s, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newCache(t testing.TB, store Store, budget int64) *Cache {
	t.Helper()
	c, err := NewCache(store, CacheConfig{BudgetBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually waits for cond with a deadline, checking it every millisecond.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
