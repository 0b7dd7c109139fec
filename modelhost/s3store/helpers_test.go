package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
)

// testRuntime is registered so test manifests validate; nothing loads it.
const testRuntime = "s3store-test"

type nopRuntime struct{}

func (nopRuntime) Load(context.Context, *modelhost.Manifest, string) (modelhost.Model, error) {
	return nil, errors.New("s3store test runtime loads nothing")
}

func init() { modelhost.RegisterRuntime(testRuntime, nopRuntime{}) }

// newStore opens a store on a fresh bucket of m, with its own disk cache.
// Parts are small so that megabyte files take the parallel path.
func newStore(t testing.TB, m *testenv.MinIO, mut ...func(*Config)) *Store {
	t.Helper()
	cfg := testConfig(m)
	cfg.Bucket = "t-" + hex.EncodeToString(randBytes(t, 6))
	cfg.CacheDir = t.TempDir()
	for _, f := range mut {
		f(&cfg)
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func testConfig(m *testenv.MinIO) Config {
	cfg := DefaultConfig()
	cfg.Endpoint = m.Endpoint
	cfg.Secure = false
	cfg.AccessKey = m.AccessKey
	cfg.SecretKey = m.SecretKey
	cfg.Prefix = "models"
	cfg.ParallelThreshold = 4 << 20
	cfg.PartSize = 1 << 20
	return cfg
}

// reopen opens a second Store on the same bucket and cache directory, as a
// restarted member would.
func reopen(t testing.TB, s *Store) *Store {
	t.Helper()
	s2, err := Open(context.Background(), s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s2
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// pseudo returns n deterministic pseudo-random bytes (fast for big files).
func pseudo(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1})
	_, _ = r.Read(b)
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// push writes a version the way modelhost.Push does: artifacts first,
// manifest.json last.
func push(t testing.TB, ctx context.Context, s *Store, id, version string, files map[string][]byte) *modelhost.Manifest {
	t.Helper()
	m := &modelhost.Manifest{ID: id, Version: version, Runtime: testRuntime, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		b := files[p]
		if err := s.Put(ctx, id, version, p, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatalf("put %s: %v", p, err)
		}
		m.Files = append(m.Files, modelhost.File{Path: p, Size: int64(len(b)), SHA256: sum(b)})
	}
	m.Entrypoint = paths[0]
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, id, version, manifestName, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("put manifest: %v", err)
	}
	return m
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, timeout, what, cond)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
