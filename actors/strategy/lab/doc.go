// Package lab compares speculative strategies without a cluster: it replays
// a seeded synthetic trace of requests against simulated models (latency
// distributions: lognormal, heavy-tailed with stragglers, bimodal cold/warm;
// an accuracy and a failure rate each) on a virtual clock, runs every trial
// through the same strategy.Session a collector actor uses, and reports per
// trial p50, p99, p99.9, calls per request (the extra load), accuracy and
// agreement, deadline misses, fallbacks, hedges and which model answered.
//
// Trials share common random numbers: the n-th call of a model on a request
// takes the same time and answers the same in every trial, so differences
// between rows are the strategies', not the dice. The same Config gives the
// same Report.
//
// `manta lab` is ParseFlags, Run and Report.Print:
//
//	cfg, err := lab.ParseFlags(os.Args[2:], os.Stderr)
//	if err != nil { ... }
//	rep, err := lab.Run(ctx, cfg)
//	if err != nil { ... }
//	rep.Print(os.Stdout)
//
// From Go, start from a scenario and add a trial of your own strategy:
//
//	cfg, _ := lab.Scenario("fallback")
//	cfg.Trials = append(cfg.Trials, lab.Trial{Strategy: "unsure-hedge", Models: []string{"fast", "smart"}})
//	rep, err := lab.Run(ctx, cfg)
//
// The lab models no queueing: requests are independent, so a strategy's extra
// calls do not slow the others down. Read calls/req as the price.
package lab
