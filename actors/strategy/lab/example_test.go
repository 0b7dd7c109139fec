package lab_test

import (
	"context"
	"fmt"

	"github.com/manta-ml/manta/actors/strategy/lab"
)

// Compare the built-ins of the "fallback" scenario: a smart model that
// misses a 30 ms budget 9% of the time, and deadline-fallback, which never
// does. Figures are virtual time: the same on every machine.
func ExampleRun() {
	cfg, err := lab.Scenario("fallback")
	if err != nil {
		panic(err)
	}
	cfg.Requests = 2000
	rep, err := lab.Run(context.Background(), cfg)
	if err != nil {
		panic(err)
	}
	for _, label := range []string{"smart-only", "deadline-fallback(smart,fast)"} {
		r, _ := rep.Row(label)
		fmt.Printf("%s: deadline misses %.1f%%, calls/req %.2f\n", label, 100*float64(r.DeadlineMisses)/float64(r.Requests), r.CallsPerRequest)
	}
	// rep.Print(os.Stdout) writes the whole side-by-side table.

	// Output:
	// smart-only: deadline misses 8.5%, calls/req 1.00
	// deadline-fallback(smart,fast): deadline misses 0.0%, calls/req 2.00
}
