package manta_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/internal/modelgen"
)

// exampleStore writes two linear models into a temporary directory store.
func exampleStore() (string, func()) {
	root, err := os.MkdirTemp("", "manta-example-")
	if err != nil {
		panic(err)
	}
	if err := modelgen.Linear(root, "price", "1", []float64{2, 3}, 1, "identity"); err != nil {
		panic(err)
	}
	if err := modelgen.Linear(root, "churn", "1", []float64{1, -1}, 0, "logistic"); err != nil {
		panic(err)
	}
	return root, func() { os.RemoveAll(root) }
}

func exampleConfig(root string) manta.Config {
	cfg := manta.DefaultConfig()
	cfg.Store = root
	cfg.BudgetBytes = 64 << 20
	cfg.FetchDir = root + "/.fetch"
	return cfg
}

// exampleMember starts an embedded member over the example store; done
// closes it and removes the store.
func exampleMember(ctx context.Context) (*manta.Client, func()) {
	root, cleanup := exampleStore()
	c, err := manta.Start(ctx, exampleConfig(root))
	if err != nil {
		fmt.Println(err)
		cleanup()
		return nil, nil
	}
	return c, func() { c.Close(ctx); cleanup() }
}

// Predict returns a future at once; Get waits for the answer, which names
// the model version that produced it.
func Example() {
	root, cleanup := exampleStore()
	defer cleanup()
	ctx := context.Background()
	c, err := manta.Start(ctx, exampleConfig(root))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(ctx)

	ref := c.Model("price").Predict(ctx, []byte(`{"features":[1, 2]}`))
	res, err := ref.Get(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s (model %s version %s)\n", res.Output, res.Model, res.Version)
	// Output: {"prediction":9} (model price version 1)
}

// GetAll waits for many futures and returns their results in input order.
func ExampleGetAll() {
	ctx := context.Background()
	c, done := exampleMember(ctx)
	if c == nil {
		return
	}
	defer done()

	var refs []*manta.Ref
	for i := 0; i < 3; i++ {
		refs = append(refs, c.Model("price").Predict(ctx, []byte(fmt.Sprintf(`{"features":[%d, 0]}`, i))))
	}
	results, err := manta.GetAll(ctx, refs)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range results {
		fmt.Println(string(r.Output))
	}
	// Output:
	// {"prediction":1}
	// {"prediction":3}
	// {"prediction":5}
}

// Wait returns as soon as n of the futures are ready, like ray.wait.
func ExampleWait() {
	ctx := context.Background()
	c, done := exampleMember(ctx)
	if c == nil {
		return
	}
	defer done()

	refs := []*manta.Ref{
		c.Model("price").Predict(ctx, []byte(`{"features":[1, 1]}`)),
		c.Model("churn").Predict(ctx, []byte(`{"features":[0, 0]}`)),
	}
	ready, pending, err := manta.Wait(ctx, refs, 2)
	fmt.Println(len(ready), len(pending), err)
	// Output: 2 0 <nil>
}

// Errors are checked with errors.Is against the SDK's sentinels.
func ExampleRef_Get_errors() {
	ctx := context.Background()
	c, done := exampleMember(ctx)
	if c == nil {
		return
	}
	defer done()

	_, err := c.Model("no-such-model").Predict(ctx, []byte(`{}`)).Get(ctx)
	fmt.Println(errors.Is(err, manta.ErrNotFound))
	_, err = c.Model("price").Predict(ctx, []byte(`{"features":[1]}`)).Get(ctx)
	fmt.Println(errors.Is(err, manta.ErrBadInput))
	// Output:
	// true
	// true
}
