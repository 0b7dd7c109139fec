package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
)

func TestRoundTrip(t *testing.T) {
	mc := testenv.StartMinIO(t)
	s := newStore(t, mc)
	ctx := ctxT(t)

	if ids, err := s.List(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("List on empty store = %v, %v", ids, err)
	}
	if _, err := s.Versions(ctx, "eta"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("Versions of unknown model: %v, want not_found", err)
	}
	if _, err := s.Latest(ctx, "eta"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("Latest of unknown model: %v, want not_found", err)
	}

	m1 := push(t, ctx, s, "eta", "1", map[string][]byte{"model.bin": []byte("v1"), "sub/extra.json": []byte(`{}`)})
	push(t, ctx, s, "eta", "2", map[string][]byte{"model.bin": []byte("v2")})
	push(t, ctx, s, "eta", "10", map[string][]byte{"model.bin": []byte("v10")})
	push(t, ctx, s, "fraud", "1", map[string][]byte{"model.bin": []byte("f1")})
	// A version without manifest (half pushed) is invisible.
	if err := s.Put(ctx, "eta", "11", "model.bin", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}

	ids, err := s.List(ctx)
	if err != nil || !slices.Equal(ids, []string{"eta", "fraud"}) {
		t.Fatalf("List = %v, %v", ids, err)
	}
	vs, err := s.Versions(ctx, "eta")
	if err != nil || !slices.Equal(vs, []string{"1", "2", "10"}) {
		t.Fatalf("Versions = %v, %v (want numeric order, no half-pushed 11)", vs, err)
	}
	if v, err := s.Latest(ctx, "eta"); err != nil || v != "10" {
		t.Fatalf("Latest = %q, %v; want the highest, 10", v, err)
	}
	got, err := s.Manifest(ctx, "eta", "1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "eta" || got.Version != "1" || len(got.Files) != 2 || got.Files[0] != m1.Files[0] {
		t.Fatalf("Manifest = %+v, want %+v", got, m1)
	}
	if _, err := s.Manifest(ctx, "eta", "11"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("Manifest of half-pushed version: %v, want not_found", err)
	}
	rc, err := s.Open(ctx, "eta", "1", "sub/extra.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "{}" {
		t.Fatalf("Open read %q", b)
	}
	if _, err := s.Open(ctx, "eta", "1", "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("Open of missing file: %v, want not_found", err)
	}

	// Promote / roll back.
	if err := s.SetLatest(ctx, "eta", "2"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Latest(ctx, "eta"); err != nil || v != "2" {
		t.Fatalf("Latest after SetLatest(2) = %q, %v", v, err)
	}
	if err := s.SetLatest(ctx, "eta", "11"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("SetLatest to a version without manifest: %v, want not_found", err)
	}

	// Deleting the LATEST version removes LATEST: the highest remains.
	if err := s.Delete(ctx, "eta", "2"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Latest(ctx, "eta"); err != nil || v != "10" {
		t.Fatalf("Latest after deleting v2 = %q, %v", v, err)
	}
	if err := s.Delete(ctx, "eta", "2"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("second Delete: %v, want not_found", err)
	}
	if err := s.Delete(ctx, "eta", ""); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.List(ctx); err != nil || !slices.Equal(ids, []string{"fraud"}) {
		t.Fatalf("List after deleting eta = %v, %v", ids, err)
	}
}

func TestFetchVerifiedAndCached(t *testing.T) {
	mc := testenv.StartMinIO(t)
	s := newStore(t, mc)
	ctx := ctxT(t)
	small := pseudo(100<<10, 1)
	big := pseudo(9<<20+12345, 2) // parallel path: 10 ranged parts, last one short
	m := push(t, ctx, s, "eta", "1", map[string][]byte{"small.bin": small, "dir/big.bin": big, "empty": nil})

	dir, err := s.Fetch(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string][]byte{"small.bin": small, "dir/big.bin": big, "empty": nil} {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, %v; want %d bytes", p, len(got), err, len(want))
		}
	}
	st := s.Stats()
	if st.Downloads != 3 || st.Bytes != int64(len(small)+len(big)) {
		t.Fatalf("after cold fetch: %+v", st)
	}

	// Warm: no request at all.
	before := s.Stats()
	if dir2, err := s.Fetch(ctx, m); err != nil || dir2 != dir {
		t.Fatalf("warm Fetch = %q, %v", dir2, err)
	}
	after := s.Stats()
	if after.Requests != before.Requests || after.Hits-before.Hits != 3 || after.Downloads != before.Downloads {
		t.Fatalf("warm fetch touched the server: before %+v after %+v", before, after)
	}

	// A restarted member (new Store, same cache dir) trusts the markers.
	s2 := reopen(t, s)
	if _, err := s2.Fetch(ctx, m); err != nil {
		t.Fatal(err)
	}
	if st := s2.Stats(); st.Requests != 0 || st.Hits != 3 || st.Rehashes != 0 {
		t.Fatalf("restarted member: %+v; want 3 hits, no request, no rehash", st)
	}
	if st := s2.Stats(); st.CacheUsed != int64(len(small)+len(big)) {
		t.Fatalf("restarted member's cache index: %d bytes, want %d", st.CacheUsed, len(small)+len(big))
	}

	// Without markers (e.g. a crash between rename and marker), files are
	// rehashed, not downloaded.
	if err := os.RemoveAll(filepath.Join(s.cfg.CacheDir, "meta")); err != nil {
		t.Fatal(err)
	}
	s3 := reopen(t, s)
	if _, err := s3.Fetch(ctx, m); err != nil {
		t.Fatal(err)
	}
	if st := s3.Stats(); st.Requests != 0 || st.Rehashes != 3 {
		t.Fatalf("no markers: %+v; want 3 rehashes, no request", st)
	}

	// A cached file changed on disk (same size) is not trusted: it fails
	// the rehash and is downloaded again.
	p := filepath.Join(dir, "small.bin")
	bad := bytes.Clone(small)
	bad[0] ^= 0xff
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	s4 := reopen(t, s)
	if _, err := s4.Fetch(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, small) {
		t.Fatal("tampered cache file was not replaced")
	}
	if st := s4.Stats(); st.Downloads != 1 {
		t.Fatalf("tampered cache file: %+v; want 1 download", st)
	}
}

// corrupt overwrites an object in the bucket with bytes of the same size
// but different content, behind the store's back.
func corrupt(t *testing.T, s *Store, id, version, path string, data []byte) {
	t.Helper()
	bad := bytes.Clone(data)
	bad[len(bad)/2] ^= 0x01
	key := s.keys.file(id, version, path)
	if _, err := s.Client().PutObject(context.Background(), s.cfg.Bucket, key, bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestFetchCorrupted(t *testing.T) {
	mc := testenv.StartMinIO(t)
	s := newStore(t, mc)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		size int
	}{{"single", 200 << 10}, {"parallel", 6<<20 + 7}} {
		t.Run(tc.name, func(t *testing.T) {
			data := pseudo(tc.size, 3)
			id := "corrupt-" + tc.name
			m := push(t, ctx, s, id, "1", map[string][]byte{"ok.bin": []byte("fine"), "weights.bin": data})
			corrupt(t, s, id, "1", "weights.bin", data)

			_, err := s.Fetch(ctx, m)
			if !errors.Is(err, api.ErrLoadFailed) {
				t.Fatalf("Fetch of corrupted object: %v, want load_failed", err)
			}
			if api.CodeOf(err) != api.ErrorCode_ERROR_CODE_LOAD_FAILED {
				t.Fatalf("code %v", api.CodeOf(err))
			}
			if !strings.Contains(err.Error(), "weights.bin") || !strings.Contains(err.Error(), "sha256 mismatch") {
				t.Fatalf("error does not name the file and the problem: %v", err)
			}
			t.Logf("error: %v", err)
			if _, err := os.Stat(filepath.Join(s.cache.versionDir(id, "1"), "weights.bin")); !os.IsNotExist(err) {
				t.Fatalf("corrupted file is in the cache: %v", err)
			}
			if ents, _ := os.ReadDir(s.cache.tmpDir()); len(ents) != 0 {
				t.Fatalf("partial files left in %s: %v", s.cache.tmpDir(), ents)
			}
		})
	}
}

func TestOutage(t *testing.T) {
	mc := testenv.StartMinIO(t)
	s := newStore(t, mc)
	ctx := ctxT(t)
	warm := push(t, ctx, s, "warm", "1", map[string][]byte{"model.bin": pseudo(5<<20, 4)})
	cold := push(t, ctx, s, "cold", "1", map[string][]byte{"model.bin": pseudo(1<<20, 5)})
	// The member resolves and fetches "warm" while the store is up.
	v, err := s.Latest(ctx, "warm")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Manifest(ctx, "warm", v)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := s.Fetch(ctx, m)
	if err != nil {
		t.Fatal(err)
	}

	mc.Stop()

	// Disk-cached: resolves and loads without the server, also after a
	// member restart (new Store on the same cache directory).
	for i, st := range []*Store{s, reopen(t, s)} {
		v, err := st.Latest(ctx, "warm")
		if err != nil || v != "1" {
			t.Fatalf("store %d: Latest during outage = %q, %v", i, v, err)
		}
		m2, err := st.Manifest(ctx, "warm", v)
		if err != nil {
			t.Fatalf("store %d: Manifest during outage: %v", i, err)
		}
		if d, err := st.Fetch(ctx, m2); err != nil || d != dir {
			t.Fatalf("store %d: Fetch of disk-cached model during outage = %q, %v", i, d, err)
		}
		if got := st.Stats().Offline; got != 2 {
			t.Fatalf("store %d: Offline = %d, want 2", i, got)
		}
	}
	_ = warm

	// Cold: fails fast with a clear error.
	start := time.Now()
	_, err = s.Fetch(ctx, cold)
	took := time.Since(start)
	if !errors.Is(err, api.ErrLoadFailed) || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("cold Fetch during outage: %v; want load_failed and ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), mc.Endpoint) || !strings.Contains(err.Error(), "model.bin") {
		t.Fatalf("error should name the endpoint and the file: %v", err)
	}
	t.Logf("cold fetch during outage failed in %v: %v", took, err)
	if _, err := s.Latest(ctx, "never-seen"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Latest of an unknown model during outage: %v, want ErrUnreachable", err)
	}

	mc.Restart()
	if _, err := s.Fetch(ctx, cold); err != nil {
		t.Fatalf("cold Fetch after the store came back: %v", err)
	}
	if v, err := s.Latest(ctx, "cold"); err != nil || v != "1" {
		t.Fatalf("Latest after restart = %q, %v", v, err)
	}
}

func TestConcurrentColdFetch(t *testing.T) {
	mc := testenv.StartMinIO(t)
	s := newStore(t, mc)
	ctx := ctxT(t)
	m := push(t, ctx, s, "hot", "1", map[string][]byte{
		"a.bin": pseudo(6<<20, 6), // parallel
		"b.bin": pseudo(300<<10, 7),
		"c.bin": []byte("c"),
	})
	const n = 100
	var wg sync.WaitGroup
	dirs := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { dirs[i], errs[i] = s.Fetch(ctx, m) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("fetch %d = %q, %v", i, dirs[i], errs[i])
		}
	}
	st := s.Stats()
	if st.Downloads != 3 {
		t.Fatalf("%d concurrent cold fetches: %d downloads, want exactly 3 (one per file): %+v", n, st.Downloads, st)
	}
	// a.bin: HEAD + 6 ranged GETs; b and c: one GET each.
	if st.GETs != 6+2 {
		t.Fatalf("GETs = %d, want 8: %+v", st.GETs, st)
	}
	t.Logf("stats: %+v", st)
}

// A caller that gives up does not abort the download others wait for.
func TestFetchCancelOneCaller(t *testing.T) {
	mc := testenv.StartMinIO(t)
	s := newStore(t, mc)
	ctx := ctxT(t)
	m := push(t, ctx, s, "m", "1", map[string][]byte{"a.bin": pseudo(8<<20, 8)})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Fetch(cctx, m); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch with cancelled ctx: %v", err)
	}
	if _, err := s.Fetch(ctx, m); err != nil {
		t.Fatal(err)
	}
}

func TestDiskCacheBudget(t *testing.T) {
	mc := testenv.StartMinIO(t)
	s := newStore(t, mc, func(c *Config) { c.CacheBudget = 2<<20 + 1000 })
	ctx := ctxT(t)
	var ms = map[string]*modelhost.Manifest{}
	for _, id := range []string{"a", "b", "c"} {
		ms[id] = push(t, ctx, s, id, "1", map[string][]byte{"m.bin": pseudo(1<<20, uint64(id[0]))})
	}
	for _, id := range []string{"a", "b", "a", "c"} { // c evicts b, the least recently used
		if _, err := s.Fetch(ctx, ms[id]); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.Evictions != 1 || st.CacheUsed != 2<<20 {
		t.Fatalf("after a,b,a,c with room for 2: %+v", st)
	}
	if _, err := os.Stat(s.cache.versionDir("b", "1")); !os.IsNotExist(err) {
		t.Fatalf("b should have been evicted: %v", err)
	}
	before := s.Stats().Downloads
	if _, err := s.Fetch(ctx, ms["a"]); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Downloads != before {
		t.Fatal("a was evicted, but c should have been (LRU)")
	}
	// The index survives a restart: the next eviction follows last use.
	s2 := reopen(t, s)
	if _, err := s2.Fetch(ctx, ms["b"]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.cache.versionDir("c", "1")); !os.IsNotExist(err) {
		t.Fatalf("after restart, c (least recently used) should have been evicted: %v", err)
	}
}

func TestPutProgress(t *testing.T) {
	mc := testenv.StartMinIO(t)
	s := newStore(t, mc)
	data := pseudo(40<<20, 9) // multipart: 3 parts of 16 MiB
	for _, tc := range []struct {
		name string
		r    func() io.Reader
	}{
		{"ReaderAt", func() io.Reader { return bytes.NewReader(data) }},
		{"plain reader", func() io.Reader { return struct{ io.Reader }{bytes.NewReader(data)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var reports []modelhost.Progress
			ctx := WithProgress(ctxT(t), func(p modelhost.Progress) {
				mu.Lock()
				reports = append(reports, p)
				mu.Unlock()
			})
			if err := s.Put(ctx, "big", "1", "w.bin", tc.r(), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(reports) < 2 {
				t.Fatalf("progress reports: %+v", reports)
			}
			last := reports[len(reports)-1]
			if !last.Done || last.Bytes != int64(len(data)) || last.Total != int64(len(data)) || last.Path != "w.bin" || last.ETA != 0 || last.Rate <= 0 {
				t.Fatalf("last report %+v", last)
			}
			for i := 1; i < len(reports); i++ {
				if reports[i].Bytes < reports[i-1].Bytes || reports[i].Done && i != len(reports)-1 {
					t.Fatalf("progress went backwards or finished early: %+v", reports)
				}
			}
			t.Logf("%d reports, last %+v", len(reports), last)
			info, err := s.Client().StatObject(ctx, s.cfg.Bucket, s.keys.file("big", "1", "w.bin"), minio.StatObjectOptions{})
			if err != nil || info.Size != int64(len(data)) || !strings.HasSuffix(info.ETag, "-3") {
				t.Fatalf("uploaded object: size %d etag %q (want a 3-part multipart upload), %v", info.Size, info.ETag, err)
			}
		})
	}
}

// TestOpenStoreAndPush goes through modelhost: OpenStore with an s3:// URL
// (credentials from the environment), Push of a directory, then Fetch.
func TestOpenStoreAndPush(t *testing.T) {
	mc := testenv.StartMinIO(t)
	s := newStore(t, mc) // creates the bucket
	t.Setenv("MANTA_S3_ACCESS_KEY", mc.AccessKey)
	t.Setenv("MANTA_S3_SECRET_KEY", mc.SecretKey)
	ctx := ctxT(t)
	spec := fmt.Sprintf("s3://%s/pushed?endpoint=%s&secure=false&cache_dir=%s", s.cfg.Bucket, mc.Endpoint, url.QueryEscape(t.TempDir()))
	st, err := modelhost.OpenStore(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	weights := pseudo(20<<20, 10)
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), weights, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"id":"pushed","runtime":"`+testRuntime+`","entrypoint":"w.bin"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var last int64
	for want := range 2 {
		m, err := modelhost.Push(ctx, st, dir, modelhost.PushOptions{SetLatest: true, Progress: func(p modelhost.Progress) { last = p.Bytes }})
		if err != nil {
			t.Fatal(err)
		}
		if m.Version != fmt.Sprint(want+1) || last != int64(len(weights)) {
			t.Fatalf("push %d: version %s, progress %d", want, m.Version, last)
		}
	}
	v, err := st.Latest(ctx, "pushed")
	if err != nil || v != "2" {
		t.Fatalf("Latest = %q, %v", v, err)
	}
	m, err := st.Manifest(ctx, "pushed", v)
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.(modelhost.Fetcher).Fetch(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(d, "w.bin")); !bytes.Equal(got, weights) {
		t.Fatal("fetched bytes differ")
	}
	// Also through modelhost's generic path (Open + verify into a dir).
	if err := modelhost.FetchTo(ctx, st, m, t.TempDir()); err != nil {
		t.Fatal(err)
	}
}

func TestWebhook(t *testing.T) {
	changes := make(chan string, 100)
	var handler http.Handler // set once the store exists
	var hmu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hmu.Lock()
		h := handler
		hmu.Unlock()
		if h == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	const target = "manta"
	mc := testenv.StartMinIO(t,
		testenv.WithMinIOWebhook(target, srv.URL+"/v1/hooks/minio"),
		testenv.WithMinIOEnv("MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_"+target, "tok3n"))
	s := newStore(t, mc)
	hmu.Lock()
	handler = s.WebhookHandler(func(id string) { changes <- id }, WebhookToken("tok3n"))
	hmu.Unlock()
	ctx := ctxT(t)
	if err := s.SubscribeWebhook(ctx, testenv.MinIOWebhookARN(target)); err != nil {
		t.Fatal(err)
	}
	if err := s.SubscribeWebhook(ctx, testenv.MinIOWebhookARN(target)); err != nil {
		t.Fatalf("second subscribe: %v", err)
	}

	expect := func(want string) {
		t.Helper()
		select {
		case got := <-changes:
			if got != want {
				t.Fatalf("webhook change for %q, want %q", got, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no webhook event for %s", want)
		}
	}
	push(t, ctx, s, "eta", "1", map[string][]byte{"model.bin": []byte("x")})
	expect("eta") // only the manifest counts, not model.bin
	if err := s.SetLatest(ctx, "eta", "1"); err != nil {
		t.Fatal(err)
	}
	expect("eta")
	// Objects outside the prefix or not in the layout: no change.
	if _, err := s.Client().PutObject(ctx, s.cfg.Bucket, "elsewhere/x/1/manifest.json", strings.NewReader("{}"), 2, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	push(t, ctx, s, "fraud", "1", map[string][]byte{"model.bin": []byte("y")})
	expect("fraud")
	if err := s.Delete(ctx, "fraud", "1"); err != nil {
		t.Fatal(err)
	}
	expect("fraud")
	select {
	case got := <-changes:
		t.Fatalf("unexpected change %q", got)
	default:
	}
}

func TestSecretsNeverShown(t *testing.T) {
	mc := testenv.StartMinIO(t)
	const secret = "s3cr3t-VALUE-never-printed"
	ctx := ctxT(t)
	check := func(what, s string) {
		t.Helper()
		if strings.Contains(s, secret) {
			t.Fatalf("%s shows the secret: %s", what, s)
		}
	}
	// Wrong credentials against the real server.
	s := newStore(t, mc)
	cfg := s.cfg
	cfg.AccessKey, cfg.SecretKey = "someone", secret
	bad, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Versions(ctx, "eta")
	if err == nil {
		t.Fatal("wrong credentials accepted")
	}
	check("auth error", err.Error())
	t.Logf("auth error: %v", err)
	_, err = bad.Fetch(ctx, &modelhost.Manifest{ID: "eta", Version: "1", Runtime: testRuntime, Entrypoint: "m", Files: []modelhost.File{{Path: "m", Size: 1, SHA256: strings.Repeat("a", 64)}}})
	check("fetch error", fmt.Sprint(err))
	// Unreachable server.
	cfg.Endpoint = "127.0.0.1:1"
	cfg.MaxRetries = 1
	down, _ := Open(ctx, cfg)
	_, err = down.List(ctx)
	check("unreachable error", fmt.Sprint(err))
	// Printing the config.
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		check("Config "+f, fmt.Sprintf(f, cfg))
		check("*Config "+f, fmt.Sprintf(f, &cfg))
	}
	// Environment credentials.
	t.Setenv("MANTA_S3_ACCESS_KEY", mc.AccessKey)
	t.Setenv("MANTA_S3_SECRET_KEY", mc.SecretKey)
	envCfg := s.cfg
	envCfg.AccessKey, envCfg.SecretKey = "", ""
	es, err := Open(ctx, envCfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := es.List(ctx); err != nil {
		t.Fatalf("credentials from MANTA_S3_*: %v", err)
	}
	check("Config with env credentials", fmt.Sprintf("%+v", es.Config()))
}

// An interrupted download leaves nothing a later load could trust: the
// temporary file is removed and nothing is renamed into the cache. Leftovers
// of a crash in tmp/ are removed when the cache is opened.
func TestInterruptedDownload(t *testing.T) {
	mc := testenv.StartMinIO(t)
	s := newStore(t, mc)
	ctx := ctxT(t)
	for _, size := range []int{3 << 20, 40 << 20} { // single stream, parallel
		id := fmt.Sprintf("big%d", size>>20)
		m := push(t, ctx, s, id, "1", map[string][]byte{"w.bin": pseudo(size, uint64(size))})
		before := s.Stats()
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			for s.Stats().Bytes == before.Bytes && cctx.Err() == nil {
				runtime.Gosched()
			}
			cancel()
		}()
		_, err := s.Fetch(cctx, m)
		cancel()
		if err == nil {
			t.Logf("%s: download finished before the cancel", id)
		} else if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: %v, want context.Canceled", id, err)
		}
		waitFor(t, 30*time.Second, "tmp/ to be empty", func() bool {
			ents, _ := os.ReadDir(s.cache.tmpDir())
			return len(ents) == 0
		})
		if err != nil {
			if _, err := os.Stat(filepath.Join(s.cache.versionDir(id, "1"), "w.bin")); !os.IsNotExist(err) {
				t.Fatalf("%s: interrupted download left a file in the cache: %v", id, err)
			}
		}
		if _, err := s.Fetch(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// A crash's leftovers.
	junk := filepath.Join(s.cfg.CacheDir, "tmp", "dl-123")
	if err := os.WriteFile(junk, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := reopen(t, s)
	if _, err := s2.Fetch(ctx, push(t, ctx, s, "small", "1", map[string][]byte{"a": []byte("a")})); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(junk); !os.IsNotExist(err) {
		t.Fatalf("leftover of a crash not removed: %v", err)
	}
}
