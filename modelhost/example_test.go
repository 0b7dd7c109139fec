package modelhost_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/manta-ml/manta/modelhost"
)

// A model directory is pushed to a store, then loaded through a cache and
// called.
func Example() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "modelhost-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	// A model directory: a manifest with id, runtime and entrypoint, and
	// the artifact.
	dir := filepath.Join(tmp, "fraud-lr")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "manifest.json"),
		[]byte(`{"id":"fraud-lr","runtime":"linear","entrypoint":"model.json"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "model.json"),
		[]byte(`{"weights":[0.5,-1],"bias":0,"link":"logistic"}`), 0o644)

	store, err := modelhost.OpenStore(ctx, filepath.Join(tmp, "models"))
	if err != nil {
		log.Fatal(err)
	}
	m, err := modelhost.Push(ctx, store, dir, modelhost.PushOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pushed", m.ID, "version", m.Version)

	cache, err := modelhost.NewCache(store, modelhost.CacheConfig{BudgetBytes: 1 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	version, _ := store.Latest(ctx, "fraud-lr")
	m, _ = store.Manifest(ctx, "fraud-lr", version)
	lease, err := cache.Acquire(ctx, m)
	if err != nil {
		log.Fatal(err)
	}
	defer lease.Release()
	out, err := modelhost.SafePredict(ctx, lease.Model(), []modelhost.Input{
		{Payload: []byte(`{"features":[2,1]}`)},
		{Payload: []byte(`{"features":[[4,0],[0,4]]}`)},
		{Payload: []byte(`{"features":[1]}`)},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range out {
		if o.Err != nil {
			fmt.Println("error:", o.Err)
			continue
		}
		fmt.Println(string(o.Payload))
	}
	// Output:
	// pushed fraud-lr version 1
	// {"prediction":0.5}
	// {"predictions":[0.8807970779778823,0.01798620996209156]}
	// error: manta: bad_input: linear fraud-lr: features: got 1 values, want 2
}
