// Command strategy compares a researcher's own strategy, "unsure-hedge"
// (unsure_hedge.go), with the built-ins in the lab, on a virtual clock:
//
//	go run ./examples/strategy                 # the comparison table
//	go run ./examples/strategy -requests 50000 -seed 3
//
// The strategy is registered by its init function, so `manta lab` built with
// this package linked in could run it too; here main does what `manta lab`
// does with a config of its own.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/manta-ml/manta/actors/strategy"
	"github.com/manta-ml/manta/actors/strategy/lab"
)

// Config is the comparison: a fast, less accurate model and a smart,
// heavy-tailed one under a 40 ms budget.
func Config() lab.Config {
	const ms = time.Millisecond
	models := []string{"fast", "smart"}
	return lab.Config{
		Seed:     1,
		Requests: 20000,
		Deadline: 40 * ms,
		Models: []lab.Model{
			{Name: "fast", Accuracy: 0.85, Latency: lab.Latency{Dist: lab.DistLogNormal, Median: 2 * ms, Sigma: 0.3}},
			{Name: "smart", Accuracy: 0.95, Latency: lab.Latency{Dist: lab.DistHeavyTail, Median: 12 * ms, Sigma: 0.2,
				StragglerProb: 0.04, StragglerMin: 3, StragglerMax: 10}},
		},
		Trials: []lab.Trial{
			{Label: "fast-only", Strategy: strategy.NameFirstSuccess, Models: []string{"fast"}},
			{Label: "smart-only", Strategy: strategy.NameFirstSuccess, Models: []string{"smart"}},
			{Label: "hedged(smart)", Strategy: strategy.NameHedged, Models: []string{"smart"}},
			{Label: "deadline-fallback", Strategy: strategy.NameDeadlineFallback, Models: []string{"smart", "fast"}},
			{Label: "cascade", Strategy: strategy.NameCascade, Models: models},
			{Label: "unsure-hedge", Strategy: "unsure-hedge", Models: models},
			{Label: "unsure-hedge,max=2", Strategy: "unsure-hedge", Params: map[string]string{"max": "2"}, Models: models},
		},
	}
}

func main() {
	cfg := Config()
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the synthetic trace")
	flag.IntVar(&cfg.Requests, "requests", cfg.Requests, "requests per trial")
	flag.Parse()
	rep, err := lab.Run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := rep.Print(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
