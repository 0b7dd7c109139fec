package modelhost

import (
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/manta-ml/manta/api"
)

// recordingStore records the order of Puts.
type recordingStore struct {
	Store
	mu   sync.Mutex
	puts []string
}

func (r *recordingStore) Put(ctx context.Context, id, version, path string, rd io.Reader, size int64) error {
	r.mu.Lock()
	r.puts = append(r.puts, path)
	r.mu.Unlock()
	return r.Store.Put(ctx, id, version, path, rd, size)
}

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPushThenAcquire(t *testing.T) {
	ds := newDirStore(t)
	store := &recordingStore{Store: ds}
	ctx := context.Background()
	dir := writeDir(t, map[string]string{
		"manifest.json":   `{"id":"fraud-lr","runtime":"linear","entrypoint":"model.json","description":"fraud","batch":{"max_size":32}}`,
		"model.json":      `{"weights":[1,2,3],"bias":0.5,"link":"identity"}`,
		"docs/README.txt": "how this was trained",
	})
	var last, total int64
	calls, done := 0, false
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	m, err := Push(ctx, store, dir, PushOptions{
		Progress: func(p Progress) { calls++; last, total, done = p.Bytes, p.Total, p.Done },
		Now:      func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "1" || len(m.Files) != 2 || m.Files[0].Path != "docs/README.txt" || m.Files[1].Path != "model.json" ||
		!m.CreatedAt.Equal(now) || m.Description != "fraud" || m.Batch.MaxSize != 32 {
		t.Fatalf("pushed manifest = %+v", m)
	}
	if calls == 0 || !done || last != total || total != m.FilesSize() {
		t.Errorf("progress: %d calls, last %d of %d, want all of %d", calls, last, total, m.FilesSize())
	}
	if n := len(store.puts); n != 3 || store.puts[n-1] != ManifestName {
		t.Errorf("puts = %v, want manifest.json last", store.puts)
	}

	// Second push: version 2, LATEST moved on request.
	os.WriteFile(filepath.Join(dir, "model.json"), []byte(`{"weights":[1,1,1],"bias":0}`), 0o644)
	m2, err := Push(ctx, store, dir, PushOptions{SetLatest: true})
	if err != nil {
		t.Fatal(err)
	}
	if m2.Version != "2" {
		t.Fatalf("second push version = %s", m2.Version)
	}
	if v, _ := ds.Latest(ctx, "fraud-lr"); v != "2" {
		t.Errorf("Latest = %s", v)
	}
	// Push with a store version 9 present: next is 10.
	if err := ds.SetLatest(ctx, "fraud-lr", "1"); err != nil {
		t.Fatal(err)
	}
	putVersion(t, ds, &Manifest{ID: "fraud-lr", Version: "9", Runtime: GoRuntimeName, Entrypoint: testFunc}, nil)
	m10, err := Push(ctx, store, dir, PushOptions{})
	if err != nil || m10.Version != "10" {
		t.Fatalf("push after v9 = %v, %v", m10, err)
	}
	if v, _ := ds.Latest(ctx, "fraud-lr"); v != "1" {
		t.Errorf("Latest moved without SetLatest: %s", v)
	}

	// The store's view of version 1 loads and predicts.
	c := newCache(t, ds, 1<<20)
	got, err := ds.Manifest(ctx, "fraud-lr", "1")
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Acquire(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	out, err := l.Model().Predict(ctx, []Input{{Payload: []byte(`{"features":[1,1,1]}`)}})
	if err != nil || out[0].Err != nil || string(out[0].Payload) != `{"prediction":6.5}` {
		t.Fatalf("Predict = %q %v %v", out[0].Payload, out[0].Err, err)
	}
	if l.Manifest().Version != "1" {
		t.Errorf("lease manifest version %s", l.Manifest().Version)
	}
}

func TestPushRefusesBadDirs(t *testing.T) {
	store := newDirStore(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		files  map[string]string
		errHas string
	}{
		{"no manifest", map[string]string{"model.json": "{}"}, "no manifest.json"},
		{"no id", map[string]string{"manifest.json": `{"runtime":"linear","entrypoint":"m.json"}`, "m.json": "{}"}, "id is required"},
		{"no runtime", map[string]string{"manifest.json": `{"id":"x","entrypoint":"m.json"}`, "m.json": "{}"}, "runtime is required"},
		{"no entrypoint", map[string]string{"manifest.json": `{"id":"x","runtime":"linear"}`, "m.json": "{}"}, "entrypoint is required"},
		{"bad id", map[string]string{"manifest.json": `{"id":"X/y","runtime":"linear","entrypoint":"m.json"}`}, "invalid model id"},
		{"entrypoint missing", map[string]string{"manifest.json": `{"id":"x","runtime":"linear","entrypoint":"m.json"}`, "other.json": "{}"}, `entrypoint "m.json" is not one of the files`},
		{"unknown runtime", map[string]string{"manifest.json": `{"id":"x","runtime":"onnx","entrypoint":"m.onnx"}`, "m.onnx": "x"}, `unknown runtime "onnx"`},
		{"bad json", map[string]string{"manifest.json": `{"id":`}, "manifest.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Push(ctx, store, writeDir(t, tc.files), PushOptions{})
			if !errors.Is(err, api.ErrBadInput) || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("Push: %v, want bad_input containing %q", err, tc.errHas)
			}
		})
	}
	if ids, _ := store.List(ctx); len(ids) != 0 {
		t.Errorf("failed pushes left models %v", ids)
	}
}

func TestFetchTo(t *testing.T) {
	ds := newDirStore(t)
	ctx := context.Background()
	m := putVersion(t, ds, &Manifest{ID: "f", Version: "1", Runtime: LinearRuntimeName, Entrypoint: "a/m.json"},
		map[string][]byte{"a/m.json": []byte(`{"weights":[1]}`), "b.bin": []byte("bbbb")})
	dst := t.TempDir()
	if err := FetchTo(ctx, openOnly{ds}, m, dst); err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		if err := VerifyFile(filepath.Join(dst, filepath.FromSlash(f.Path)), f); err != nil {
			t.Error(err)
		}
	}
	// Store copy corrupted (longer, and then different): refused, named,
	// and the temporary file deleted.
	os.Remove(filepath.Join(dst, "b.bin"))
	os.WriteFile(filepath.Join(ds.Root(), "f", "1", "b.bin"), []byte("bbbbb"), 0o644)
	err := FetchTo(ctx, openOnly{ds}, m, dst)
	if !errors.Is(err, api.ErrLoadFailed) || !strings.Contains(err.Error(), "verify b.bin: size mismatch") {
		t.Errorf("FetchTo of a longer file: %v", err)
	}
	os.WriteFile(filepath.Join(ds.Root(), "f", "1", "b.bin"), []byte("cccc"), 0o644)
	err = FetchTo(ctx, openOnly{ds}, m, dst)
	if !errors.Is(err, api.ErrLoadFailed) || !strings.Contains(err.Error(), "verify b.bin: sha256 mismatch") {
		t.Errorf("FetchTo of a changed file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "b.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mismatched file left in place: %v", err)
	}
	ents, _ := os.ReadDir(dst)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".manta-fetch") {
			t.Errorf("temporary %s left", e.Name())
		}
	}
	// A file missing from the store.
	os.Remove(filepath.Join(ds.Root(), "f", "1", "b.bin"))
	if err := FetchTo(ctx, openOnly{ds}, m, dst); !errors.Is(err, api.ErrLoadFailed) || !strings.Contains(err.Error(), "b.bin") {
		t.Errorf("FetchTo with a file missing in the store: %v", err)
	}
}

func TestOpenStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, spec := range []string{dir, "file://" + dir, filepath.Join(dir, "sub", "models")} {
		s, err := OpenStore(ctx, spec)
		if err != nil {
			t.Fatalf("OpenStore(%s): %v", spec, err)
		}
		if _, ok := s.(*DirStore); !ok {
			t.Errorf("OpenStore(%s) = %T, want *DirStore", spec, s)
		}
	}
	_, err := OpenStore(ctx, "gopher://bucket/x")
	if !errors.Is(err, api.ErrBadInput) || !strings.Contains(err.Error(), `unknown scheme "gopher"`) || !strings.Contains(err.Error(), "file") {
		t.Errorf("unknown scheme: %v", err)
	}
	if _, err := OpenStore(ctx, ""); !errors.Is(err, api.ErrBadInput) {
		t.Errorf("empty spec: %v", err)
	}
	if _, err := OpenStore(ctx, "file://otherhost/x"); err == nil {
		t.Error("file URL with a host accepted")
	}

	var gotURL *url.URL
	RegisterStore("memtest", func(ctx context.Context, u *url.URL) (Store, error) {
		gotURL = u
		return NewDirStore(filepath.Join(dir, u.Host))
	})
	s, err := OpenStore(ctx, "MEMTEST://bucket/prefix?endpoint=127.0.0.1:9000")
	if err != nil || s == nil {
		t.Fatalf("registered scheme: %v", err)
	}
	if gotURL.Host != "bucket" || gotURL.Query().Get("endpoint") != "127.0.0.1:9000" {
		t.Errorf("opener got %v", gotURL)
	}
	found := false
	for _, sc := range StoreSchemes() {
		found = found || sc == "memtest"
	}
	if !found {
		t.Errorf("StoreSchemes = %v", StoreSchemes())
	}
	RegisterStore("failtest", func(ctx context.Context, u *url.URL) (Store, error) {
		return nil, errors.New("no credentials")
	})
	if _, err := OpenStore(ctx, "failtest://user:hunter2@b/x"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("opener error: %v (must not show the password)", err)
	}
}

func TestRegistriesPanic(t *testing.T) {
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	mustPanic("RegisterRuntime nil", func() { RegisterRuntime("x-nil", nil) })
	mustPanic("RegisterRuntime empty", func() { RegisterRuntime("", linearRuntime{}) })
	mustPanic("RegisterRuntime dup", func() { RegisterRuntime(LinearRuntimeName, linearRuntime{}) })
	mustPanic("RegisterFunc nil", func() { RegisterFunc("x-nil", nil) })
	mustPanic("RegisterFunc empty", func() { RegisterFunc("", func(context.Context, *Manifest, string) (Model, error) { return nil, nil }) })
	mustPanic("RegisterFunc dup", func() {
		RegisterFunc(testFunc, func(context.Context, *Manifest, string) (Model, error) { return nil, nil })
	})
	open := func(context.Context, *url.URL) (Store, error) { return nil, nil }
	mustPanic("RegisterStore nil", func() { RegisterStore("x-nil", nil) })
	mustPanic("RegisterStore empty", func() { RegisterStore("", open) })
	mustPanic("RegisterStore file", func() { RegisterStore("file", open) })
	RegisterStore("duptest", open)
	mustPanic("RegisterStore dup", func() { RegisterStore("DupTest", open) })

	rts := Runtimes()
	if len(rts) < 2 || rts[0] > rts[len(rts)-1] {
		t.Errorf("Runtimes = %v, want sorted, with the built-ins", rts)
	}
	if _, ok := LookupRuntime(LinearRuntimeName); !ok {
		t.Error("linear not registered")
	}
	if _, ok := LookupRuntime(GoRuntimeName); !ok {
		t.Error("go not registered")
	}
}

func TestFuncModel(t *testing.T) {
	m := NewFuncModel(func(ctx context.Context, batch []Input) ([]Output, error) {
		out := make([]Output, len(batch))
		for i, in := range batch {
			out[i].Payload = append([]byte("echo:"), in.Payload...)
		}
		return out, nil
	}, 42)
	out, err := m.Predict(context.Background(), []Input{{Payload: []byte("a")}})
	if err != nil || string(out[0].Payload) != "echo:a" || m.MemoryBytes() != 42 || m.Close() != nil {
		t.Errorf("func model: %q %v", out[0].Payload, err)
	}
}

func TestPushFollowsFileSymlinks(t *testing.T) {
	store := newDirStore(t)
	dir := writeDir(t, map[string]string{
		"manifest.json": `{"id":"linked","runtime":"linear","entrypoint":"model.json"}`,
	})
	target := filepath.Join(t.TempDir(), "real.json")
	os.WriteFile(target, []byte(`{"weights":[1]}`), 0o644)
	if err := os.Symlink(target, filepath.Join(dir, "model.json")); err != nil {
		t.Skip("symlinks not supported:", err)
	}
	m, err := Push(context.Background(), store, dir, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := m.File("model.json"); !ok || f.Size != int64(len(`{"weights":[1]}`)) {
		t.Errorf("files = %+v", m.Files)
	}
	if _, err := store.Fetch(context.Background(), m); err != nil {
		t.Errorf("Fetch of pushed version: %v", err)
	}
}

func TestConstructorsRefuseBadConfig(t *testing.T) {
	if _, err := NewCache(nil, CacheConfig{BudgetBytes: 1}); !errors.Is(err, api.ErrBadInput) {
		t.Errorf("NewCache(nil store): %v", err)
	}
	if _, err := NewCache(newDirStore(t), CacheConfig{}); !errors.Is(err, api.ErrBadInput) {
		t.Errorf("NewCache without budget: %v", err)
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	if _, err := NewDirStore(file); err == nil {
		t.Error("NewDirStore on a file succeeded")
	}
	if _, err := NewDirStore(""); !errors.Is(err, api.ErrBadInput) {
		t.Errorf("NewDirStore(\"\"): %v", err)
	}
}
