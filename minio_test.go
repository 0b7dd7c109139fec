package manta_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/modelhost/s3store"
)

// pushLinear pushes a linear model version with modelhost.Push (the code
// behind `manta models push`).
func pushLinear(t testing.TB, st modelhost.Store, id string, w []float64) *modelhost.Manifest {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.json"), modelgen.LinearJSON(w, 0, "identity"), 0o644); err != nil {
		t.Fatal(err)
	}
	man := fmt.Sprintf(`{"id":%q,"runtime":"linear","entrypoint":"model.json","memory_bytes":%d}`, id, len(w)*8+1024)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(man), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := modelhost.Push(context.Background(), st, dir, modelhost.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Models from a real MinIO: push -> predict, rollout under load noticed by
// MinIO's webhook, rollback, a corrupted object, MinIO going away.
func TestMinIOStoreEndToEnd(t *testing.T) {
	httpPort := testenv.FreePort(t)
	hook := fmt.Sprintf("http://127.0.0.1:%d/v1/hooks/minio", httpPort)
	mi := testenv.StartMinIO(t, testenv.WithMinIOWebhook("manta", hook))
	ctx := context.Background()
	cfg := s3store.DefaultConfig()
	cfg.Endpoint, cfg.Secure, cfg.Bucket = mi.Endpoint, false, "models"
	cfg.AccessKey, cfg.SecretKey = mi.AccessKey, mi.SecretKey
	cfg.CacheDir = t.TempDir()
	st, err := s3store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.SubscribeWebhook(ctx, testenv.MinIOWebhookARN("manta")); err != nil {
		t.Fatal(err)
	}
	pushLinear(t, st, "road", []float64{1, 1})
	pushLinear(t, st, "rail", []float64{3, 3})
	c := startMember(t, "", func(mc *manta.Config) {
		mc.StoreImpl = st
		mc.Store = ""
		mc.HTTPAddr = "127.0.0.1:" + strconv.Itoa(httpPort)
		mc.PollInterval = -1 // only the webhook and Reload notice versions here
		mc.IdleTimeout = 300 * time.Millisecond
	})
	predict := func(id string) (*manta.Result, error) {
		return c.Model(id).Predict(ctx, []byte(`{"features":[1,1]}`), manta.WithTimeout(10*time.Second)).Get(ctx)
	}
	res, err := predict("road")
	if err != nil || res.Version != "1" || prediction(t, res.Output) != 2 {
		t.Fatalf("push -> predict: %+v %v", res, err)
	}

	// A load generator runs while v2 is pushed: every request succeeds and
	// the answers switch from v1 to v2 when MinIO's webhook reaches us.
	var ok1, ok2, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lastErr atomic.Value
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := predict("road")
				switch {
				case err != nil:
					failed.Add(1)
					lastErr.Store(err.Error())
				case res.Version == "1":
					ok1.Add(1)
				case res.Version == "2":
					ok2.Add(1)
				}
			}
		}()
	}
	waitFor(t, 10*time.Second, func() bool { return ok1.Load() > 50 }, "v1 traffic")
	pushLinear(t, st, "road", []float64{5, 5})
	waitFor(t, 30*time.Second, func() bool { return ok2.Load() > 50 }, "v2 answers after the webhook")
	close(stop)
	wg.Wait()
	t.Logf("rollout under load: v1 %d, v2 %d, failed %d", ok1.Load(), ok2.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed during the rollout (last: %v)", failed.Load(), lastErr.Load())
	}

	// Rollback: LATEST back to 1; the webhook event on LATEST switches back.
	if err := st.SetLatest(ctx, "road", "1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool {
		res, err := predict("road")
		return err == nil && res.Version == "1" && prediction(t, res.Output) == 2
	}, "rollback to v1")

	// A corrupted object: v3's artifact in the bucket does not match its
	// manifest. The load fails naming the file; v1 keeps serving.
	good := modelgen.LinearJSON([]float64{7, 7}, 0, "identity")
	sum := sha256.Sum256(good)
	bad := bytes.Replace(good, []byte("7"), []byte("9"), 1)
	if err := st.Put(ctx, "road", "3", "model.json", bytes.NewReader(bad), int64(len(bad))); err != nil {
		t.Fatal(err)
	}
	m3 := modelhost.Manifest{ID: "road", Version: "3", Runtime: "linear", Entrypoint: "model.json", CreatedAt: time.Now().UTC(),
		Files: []modelhost.File{{Path: "model.json", Size: int64(len(good)), SHA256: hex.EncodeToString(sum[:])}}}
	mb, _ := json.Marshal(m3)
	if err := st.Put(ctx, "road", "3", "manifest.json", bytes.NewReader(mb), int64(len(mb))); err != nil {
		t.Fatal(err)
	}
	if err := st.SetLatest(ctx, "road", "3"); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Model("road").Reload(ctx)
	if !errors.Is(err, manta.ErrLoadFailed) || !strings.Contains(err.Error(), "model.json") {
		t.Fatalf("reload of a corrupted version: %v, want load_failed naming model.json", err)
	}
	res, err = predict("road")
	if err != nil || res.Version != "1" {
		t.Fatalf("after a failed rollout the previous version must keep serving: %+v %v", res, err)
	}
	if err := st.SetLatest(ctx, "road", "1"); err != nil {
		t.Fatal(err)
	}

	// 100 concurrent requests to a cold model: exactly one download.
	pushLinear(t, st, "burst", []float64{2, 2})
	before := st.Stats().Downloads
	refs := make([]*manta.Ref, 100)
	for i := range refs {
		refs[i] = c.Model("burst").Predict(ctx, []byte(`{"features":[1,1]}`))
	}
	if _, err := manta.GetAll(ctx, refs); err != nil {
		t.Fatal(err)
	}
	if d := st.Stats().Downloads - before; d != 1 {
		t.Fatalf("100 concurrent cold requests caused %d downloads, want 1", d)
	}

	// MinIO goes away: the warm model keeps serving; a model on the local
	// disk cache reloads without MinIO; a cold one fails fast and clearly.
	if _, err := predict("rail"); err != nil { // rail is now on the disk cache
		t.Fatal(err)
	}
	pushLinear(t, st, "cold", []float64{1, 1})
	mi.Stop()
	if res, err := predict("road"); err != nil || res.Version != "1" {
		t.Fatalf("warm model with MinIO down: %+v %v", res, err)
	}
	// drop rail from memory once idle: it must reload from the disk cache
	waitFor(t, 10*time.Second, func() bool {
		for _, e := range c.Cache().Loaded() {
			if e.ID == "rail" {
				return c.Cache().Evict(e.Key) == nil
			}
		}
		return false
	}, "rail idle and evicted from memory")
	loads := c.Cache().Stats().Loads
	if res, err := predict("rail"); err != nil || prediction(t, res.Output) != 6 {
		t.Fatalf("disk-cached model with MinIO down: %+v %v", res, err)
	}
	if c.Cache().Stats().Loads != loads+1 {
		t.Fatal("rail was not reloaded")
	}
	start := time.Now()
	_, err = predict("cold")
	if err == nil || !(errors.Is(err, manta.ErrLoadFailed) || errors.Is(err, manta.ErrNotFound)) {
		t.Fatalf("cold model with MinIO down: %v, want a clear load_failed/not_found", err)
	}
	t.Logf("cold model with MinIO down failed in %v: %v", time.Since(start), err)
	mi.Restart()
	waitFor(t, 30*time.Second, func() bool {
		res, err := predict("cold")
		return err == nil && res.Version == "1"
	}, "the cold model once MinIO is back")
}
