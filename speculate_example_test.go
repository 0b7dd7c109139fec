package manta_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/internal/modelgen"
)

// Speculate serves one request with a strategy over several models: here
// deadline-fallback, the smart model's answer if it comes within 50 ms, else
// the fast one's. The result names the strategy, the model and version that
// answered, and the calls made; SpeculationStats counts wins per model.
func ExampleClient_Speculate() {
	root, err := os.MkdirTemp("", "manta-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)
	if err := modelgen.Linear(root, "score-smart", "3", []float64{0.5, 0.25}, 0, "identity"); err != nil {
		panic(err)
	}
	if err := modelgen.Linear(root, "score-fast", "1", []float64{0.5, 0}, 0, "identity"); err != nil {
		panic(err)
	}
	ctx := context.Background()
	c, err := manta.Start(ctx, exampleConfig(root))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(ctx)

	ref := c.Speculate(ctx, "deadline-fallback", []string{"score-smart", "score-fast"}, []byte(`{"features":[1, 2]}`),
		manta.WithParams(map[string]string{"fallback_at": "20ms"}), manta.WithTimeout(5*time.Second))
	res, err := ref.Get(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s by %s: %s v%s, fallback %v\n", res.Output, res.Strategy, res.Model, res.Version, res.Fallback)
	for _, st := range c.SpeculationStats() {
		fmt.Printf("%s: %d request, wins %v\n", st.Strategy, st.Requests, st.Wins)
	}
	// Output:
	// {"prediction":1} by deadline-fallback: score-smart v3, fallback false
	// deadline-fallback: 1 request, wins map[score-smart:1]
}
