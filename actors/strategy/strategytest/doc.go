// Package strategytest is the conformance suite every strategy runs, built-in
// or a researcher's own, in the manner of testing/slogtest.
//
// Run drives the strategy through a Session on a fake clock against scripted
// models (fast, slow, failing, silent, with malformed outputs, and a few
// hundred seeded random mixes) and checks that it:
//
//   - always answers, exactly once, by the deadline;
//   - never panics, whatever the results (errors, non-JSON outputs), and
//     never launches a model that is not a candidate or loops on wake-ups;
//   - handles candidates that all fail (and a request with none is answered
//     bad_input by the Session without calling Start);
//   - answers with a success when every model answers the same, quickly;
//   - names in its answer only models that answered successfully;
//   - ignores results and timers after it decided;
//   - is deterministic under a fixed clock (same inputs, same actions).
//
// It needs no cluster and never sleeps. Example, in the strategy's package:
//
//	func TestConformance(t *testing.T) {
//		strategytest.Run(t, NewUnsureHedge)
//	}
//
// or with params and options:
//
//	strategytest.Run(t, strategy.NewHedged,
//		strategytest.WithParams(map[string]string{"delay": "5ms", "max": "2"}))
package strategytest
