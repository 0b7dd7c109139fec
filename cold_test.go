package manta_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/modelhost"
)

// gatedStore is a directory store whose Latest waits for gate to close:
// the placement estimate and the model's load both read it, so nothing
// cold resolves or loads until the test says so.
type gatedStore struct {
	*modelhost.DirStore
	gate chan struct{}
}

func (s *gatedStore) Latest(ctx context.Context, id string) (string, error) {
	select {
	case <-s.gate:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return s.DirStore.Latest(ctx, id)
}

// TestPredictOnColdModelsDoesNotBlock: Predict returns at once, with the
// Ref, even when the model's activation is not resolved yet (the store
// read, the placement and the activation run off the caller's goroutine);
// a fan-out over cold models is sent all at once, and every Ref answers
// once the store does. Predict used to resolve on the caller's goroutine,
// one cold model after another.
func TestPredictOnColdModelsDoesNotBlock(t *testing.T) {
	root := t.TempDir()
	const n = 6
	for i := range n {
		mustLinear(t, root, fmt.Sprintf("cold-%d", i), "1", []float64{float64(i)}, 0)
	}
	dir, err := modelhost.NewDirStore(root)
	if err != nil {
		t.Fatal(err)
	}
	store := &gatedStore{DirStore: dir, gate: make(chan struct{})}
	c := startMember(t, root, func(cfg *manta.Config) {
		cfg.StoreImpl = store
		// the placement's store read waits for the gate, not for a timeout
		cfg.Cluster.Placement.FailureDetection = time.Minute
	})
	released := false
	release := func() {
		if !released {
			released = true
			close(store.gate)
		}
	}
	defer release()

	ctx := context.Background()
	refs := make([]*manta.Ref, n)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range refs {
			refs[i] = c.Model(fmt.Sprintf("cold-%d", i)).Predict(ctx, []byte(`{"features":[2]}`))
		}
	}()
	select {
	case <-sent:
	case <-time.After(20 * time.Second):
		release()
		<-sent
		t.Fatal("Predict on a cold model blocked until the store answered")
	}
	for i, r := range refs {
		if r.Ready() {
			t.Fatalf("ref %d is ready before the store answered", i)
		}
	}
	release()
	res, err := manta.GetAll(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if got := prediction(t, r.Output); got != float64(2*i) {
			t.Errorf("cold-%d: prediction %v, want %d", i, got, 2*i)
		}
	}
}
