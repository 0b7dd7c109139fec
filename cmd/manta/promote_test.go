package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/modelhost"
)

// TestPromoteIfBetter: `manta models promote --if-better --canary 25%`
// both ways, with labels flowing (truth y = x): v2 (exact) against the
// served v1 (10% high) is promoted; v3 (twice too high) against v2 is not,
// LATEST stays and the canary ends.
func TestPromoteIfBetter(t *testing.T) {
	root := t.TempDir()
	for v, w := range map[string]float64{"1": 1.1, "2": 1, "3": 2} {
		if err := modelgen.Write(root, modelhost.Manifest{ID: "eta", Version: v, Runtime: "linear", Format: "linear-json",
			Entrypoint: "model.json", MemoryBytes: 4096, Monitor: true},
			map[string][]byte{"model.json": modelgen.LinearJSON([]float64{w}, 0, "identity")}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := modelhost.OpenStore(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.SetLatest(ctx, "eta", "1"); err != nil {
		t.Fatal(err)
	}
	cfg := manta.DefaultConfig()
	cfg.Store, cfg.BudgetBytes, cfg.FetchDir, cfg.HTTPAddr = root, 64<<20, t.TempDir(), "127.0.0.1:0"
	cfg.Cluster = cluster.DefaultConfig()
	cfg.PollInterval = -1
	cfg.Quality.Window = 40
	c, err := manta.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })

	// traffic with labels until stop
	traffic := func() (stop func()) {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				id := fmt.Sprintf("%d-%d", time.Now().UnixNano(), i)
				x := 1 + float64(i%10)/10
				if _, err := c.Model("eta").Predict(ctx, []byte(fmt.Sprintf(`{"features":[%g]}`, x)), manta.WithRequestID(id)).Get(ctx); err != nil {
					t.Error(err)
					return
				}
				if _, err := c.Model("eta").Feedback(ctx, id, x); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		return func() { close(done); wg.Wait() }
	}
	promote := func(version string) (int, string, string) {
		stop := traffic()
		defer stop()
		return runCLI("models", "promote", "eta", version, "--store", root, "--if-better", "--canary", "25%",
			"--addr", c.HTTPAddr(), "--poll", "50ms", "--wait", "2m")
	}

	code, out, errOut := promote("2")
	if code != exitOK || !strings.Contains(out, "v2 promoted") {
		t.Fatalf("promote v2: exit %d\n%s%s", code, out, errOut)
	}
	if v, _ := st.Latest(ctx, "eta"); v != "2" {
		t.Fatalf("LATEST %s after promoting v2", v)
	}
	t.Log(strings.TrimSpace(out))

	code, out, errOut = promote("3")
	if code != exitFail || !strings.Contains(errOut, "v3 not promoted") || !strings.Contains(errOut, "LATEST stays 2") {
		t.Fatalf("promote v3: exit %d\n%s%s", code, out, errOut)
	}
	if v, _ := st.Latest(ctx, "eta"); v != "2" {
		t.Fatalf("LATEST %s after refusing v3", v)
	}
	t.Log(strings.TrimSpace(errOut))
	// the canary ended: every request gets v2
	for i := range 40 {
		res, err := c.Model("eta").Predict(ctx, []byte(`{"features":[1]}`), manta.WithRequestID(fmt.Sprint("after-", i))).Get(ctx)
		if err != nil || res.Version != "2" {
			t.Fatalf("after the refused canary: %+v %v", res, err)
		}
	}
	if code, _, _ := runCLI("models", "promote", "eta", "3", "--store", root, "--if-better", "--canary", "150%"); code != exitUsage {
		t.Errorf("--canary 150%%: exit %d", code)
	}
	// bad canaries are bad_input; a missing version not_found
	for _, c2 := range []struct {
		version string
		share   float64
		want    error
	}{{"x", 0.1, manta.ErrBadInput}, {"3", 1.5, manta.ErrBadInput}, {"9", 0.1, manta.ErrNotFound}} {
		if _, err := c.Model("eta").Canary(ctx, c2.version, c2.share); !errors.Is(err, c2.want) {
			t.Errorf("Canary(%s, %v): %v, want %v", c2.version, c2.share, err, c2.want)
		}
	}
	if err := postJSON("http://"+c.HTTPAddr()+"/v1/models/eta/canary", []byte(`{"version":"3"}`)); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("canary without a share: %v", err)
	}
}
