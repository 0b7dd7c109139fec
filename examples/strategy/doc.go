// Strategy is the researcher's example: a speculative strategy of one's own
// in one file (unsure_hedge.go: "hedge only when the fast model is unsure"),
// registered with strategy.RegisterStrategy, passing the conformance suite
// (unsure_hedge_test.go: strategytest.Run) and compared with the built-ins in
// the lab with one command:
//
//	go run ./examples/strategy
//
// To write your own, copy unsure_hedge.go, rename the type and the
// registered name, and change Start and OnEvent; the test file shows how to
// run the suite and unit-test it on a fake clock.
package main
