package manta_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
)

// startMember starts an embedded member over a fresh directory store.
func startMember(t testing.TB, root string, mod func(*manta.Config)) *manta.Client {
	t.Helper()
	cfg := manta.DefaultConfig()
	cfg.Store = root
	cfg.BudgetBytes = 64 << 20
	cfg.FetchDir = t.TempDir()
	cfg.Cluster = cluster.DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := manta.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

func mustLinear(t testing.TB, root, id, version string, w []float64, b float64) {
	t.Helper()
	if err := modelgen.Linear(root, id, version, w, b, "identity"); err != nil {
		t.Fatal(err)
	}
}

func prediction(t testing.TB, out []byte) float64 {
	t.Helper()
	var v struct {
		Prediction float64 `json:"prediction"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("output %s: %v", out, err)
	}
	return v.Prediction
}

func TestPredictLinear(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "lin", "1", []float64{1, 2, 3}, 0.5)
	c := startMember(t, root, nil)
	ctx := context.Background()
	res, err := c.Model("lin").Predict(ctx, []byte(`{"features":[1,1,1]}`)).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := prediction(t, res.Output); got != 6.5 {
		t.Fatalf("prediction = %v, want 6.5", got)
	}
	if res.Version != "1" || res.Model != "lin" || res.ServedBy != c.MemberName() {
		t.Fatalf("result names %s v%s by %s", res.Model, res.Version, res.ServedBy)
	}
}

func TestUnknownModelNotFound(t *testing.T) {
	root := t.TempDir()
	c := startMember(t, root, nil)
	ctx := context.Background()
	for _, id := range []string{"nope", "Bad/ID", "../etc"} {
		_, err := c.Model(id).Predict(ctx, []byte(`{}`), manta.WithTimeout(5*time.Second)).Get(ctx)
		want := manta.ErrNotFound
		if id != "nope" {
			want = manta.ErrBadInput // an id no model can have (TestInvalidModelIDIsBadInput)
		}
		if !errors.Is(err, want) {
			t.Fatalf("%s: err = %v, want %v", id, err, want)
		}
	}
	// no actor is left behind
	waitFor(t, 5*time.Second, func() bool { return len(c.Host().Active()) == 0 }, "no active actors")
}

func TestBadInput(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "lin", "1", []float64{1, 2, 3}, 0)
	c := startMember(t, root, nil)
	ctx := context.Background()
	_, err := c.Model("lin").Predict(ctx, []byte(`{"features":[1,1]}`)).Get(ctx)
	if !errors.Is(err, manta.ErrBadInput) {
		t.Fatalf("err = %v, want ErrBadInput", err)
	}
}

func waitFor(t testing.TB, d time.Duration, cond func() bool, what string) {
	t.Helper()
	testenv.WaitFor(t, d, what, cond)
}

var _ = fmt.Sprint
var _ = sync.Mutex{}
var _ atomic.Int64
var _ = api.ErrNotFound
var _ = modelhost.ContentTypeJSON
