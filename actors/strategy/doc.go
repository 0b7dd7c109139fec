// Package strategy is Manta's extension point for speculative and fallback
// execution: the Strategy interface a researcher implements, the registry of
// strategies by name, the seven built-ins, and the Session that drives a
// strategy through one request.
//
// It imports neither the actors nor the cluster: a strategy is plain,
// synchronous, single-goroutine code that decides on every event (a result
// arrived, a timer it asked for fired, the deadline came), so it can finish
// early (a quorum agrees), hedge late (a model is slower than its p95) or
// fall back, and it is unit-tested on a fake clock (package strategytest) and
// compared with others in the lab (package lab), without a cluster.
//
// # How it fits
//
// A collector actor builds one Strategy per request with New(name, params),
// wraps it in a Session with the candidates (model ids with their live
// latency stats and manifest quality) and performs the Actions the Session
// returns: ActLaunch (send the request to a model actor), ActCancel, ActWake
// (arm its one timer) and ActFinish (answer, exactly once). It feeds results
// back with OnResult and timer ticks with OnTimer. The Session guarantees the
// request ends by its deadline, drops and counts late results, and turns a
// panicking strategy into an api.ErrInternal error for that request. Stats
// counts requests, wins per model, fallbacks, hedges and late results per
// strategy.
//
// # Driving a Session (what the collector actor does)
//
//	st, err := strategy.New(name, params) // unknown name or param: api.ErrBadInput
//	se := strategy.NewSession(st, &strategy.Request{ID: id, Payload: payload,
//		ContentType: ct, Deadline: deadline, Params: params}, cands)
//	do(se.Start(time.Now()))
//	// for every model response, even after the answer:
//	do(se.OnResult(time.Now(), strategy.Result{Model: m, Version: v, Output: out, Err: err}))
//	// when the timer fires:
//	do(se.OnTimer(time.Now()))
//
// where do performs each Action in order: ActLaunch sends the payload to
// a.Model with deadline se.Deadline(); ActCancel cancels (or forgets) the
// outstanding calls of a.Model; ActWake (re)arms the one timer at a.At (a
// later Wake replaces the earlier; an early or extra OnTimer is harmless);
// ActFinish replies with a.Response and counts it with stats.Record. When the
// collector stops, stats.AddLate(se.Name(), se.Late()) counts the results it
// dropped. Candidates come from the model actors' stats and manifests:
//
//	strategy.Candidate{Model: id, Version: v,
//		Latency: strategy.Latency{P50: time.Duration(st.P50), P95: time.Duration(st.P95),
//			P99: time.Duration(st.P99), Count: st.Count},
//		Quality: q.Value, HasQuality: q != nil, HigherIsBetter: strategy.HigherIsBetter(q.Metric)}
//
// # Built-ins
//
// deadline-fallback (smart + fast), hedged (a backup after the p95),
// first-success, majority-vote (k of n), best-quality, weighted-average and
// cascade (fast first, the slow model only when the fast one is unsure). Each
// type's comment lists its params.
//
// # Writing a strategy
//
// Implement the three methods, register a factory in init, and run the
// conformance suite in a test:
//
//	type quick struct{}
//
//	func (quick) Name() string { return "quick" }
//
//	func (quick) Start(req *strategy.Request, cands []strategy.Candidate) strategy.Plan {
//		return strategy.Plan{Launches: []strategy.Launch{{Model: cands[0].Model}}}
//	}
//
//	func (quick) OnEvent(ev strategy.Event, p *strategy.Progress) strategy.Decision {
//		if ev.Kind == strategy.EventResult {
//			if ev.Result.OK() {
//				return strategy.Answer(ev.Result)
//			}
//			return strategy.Fail(ev.Result.Err)
//		}
//		return strategy.Wait()
//	}
//
//	func init() {
//		strategy.RegisterStrategy("quick", func(map[string]string) (strategy.Strategy, error) {
//			return quick{}, nil
//		})
//	}
//
// and in quick_test.go: strategytest.Run(t, factory). See examples/strategy
// for a complete one compared in the lab.
package strategy
