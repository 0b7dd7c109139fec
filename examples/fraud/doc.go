// Fraud is seed 002's fraud-detection budget under Manta's deadline-fallback
// strategy: every card transaction must be scored within 30 ms. A slower,
// better ensemble (a Go-function model with injected latency: lognormal
// around 14 ms with 8% stragglers of 35-80 ms) answers when it is in time;
// otherwise a fast logistic `linear` model, called beside it, answers as
// the fallback. Both run on an embedded member over a temporary directory
// store, so it needs nothing else:
//
//	go run ./examples/fraud
//	go run ./examples/fraud -requests 5000 -concurrency 32 -budget 20ms
//
// It prints how often each model answered (with its version: the audit of
// "why was transaction T scored like that?"), the end-to-end latency
// percentiles, the budget misses, and the strategy's counters (calls per
// request, late results of the ensemble dropped after the fallback answered).
package main
