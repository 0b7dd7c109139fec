// Package router is Manta's Redis Streams ingestion: a consumer in a
// consumer group on one or more request streams, serving every entry
// through a Dispatcher (the SDK's client) and writing the result to the
// entry's reply_to stream.
//
// Guarantees (docs/ARCHITECTURE.md §2.2):
//   - At least once: an entry is acknowledged (XACK) only after its result
//     or dead letter has been written (XADD). Results carry the request id,
//     so consumers can drop the duplicates a reclaim can cause.
//   - Nothing dropped silently: a malformed entry goes to the dead stream
//     with its original fields and a machine-readable reason
//     (missing_model, bad_model_id, payload_too_large, bad_deadline, …), and
//     is then acknowledged. A model error is a normal result with its error
//     field set ("not_found: …").
//   - Recovery: entries left pending by a router that died are claimed with
//     XAUTOCLAIM once idle for Config.MinIdle; one delivered more than
//     Config.MaxDeliveries times is dead-lettered (max_deliveries).
//   - Backpressure: at most Config.InFlight entries are read and not yet
//     acknowledged; when full the router stops reading.
//   - Redis outages: every call is retried with exponential backoff; a group
//     lost by a restart without persistence is recreated.
//
// Wiring, as the manta command does it:
//
//	cfg := router.DefaultConfig()
//	cfg.URL = "redis://127.0.0.1:6379/0"
//	cfg.Consumer = memberName
//	r, err := router.New(cfg, client) // client: *manta.Client
//	if err != nil { … }
//	go r.Run(ctx)                     // cancelling ctx is an immediate stop
//	…
//	err = r.Shutdown(shutdownCtx)     // graceful: finish in-flight entries
package router
