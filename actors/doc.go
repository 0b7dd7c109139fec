// Package actors holds Manta's actors: the model actor (the grain of
// cluster kind "model", identity = model id) and its Host, the per-member
// state the model actors share (store, memory cache, stats).
//
// A model actor, on activation, resolves the version to serve (LATEST or
// the highest) and acquires it from the member's cache (single flight: N
// concurrent cold requests cause one load). Requests queue in its mailbox;
// the actor drains them into batches of up to batch.max_size (waiting at
// most batch.max_wait_ms when the model is already busy) and runs Predict
// on worker goroutines, so the mailbox keeps accepting while batches run.
// A panicking model answers internal for its batch; the member keeps
// serving. Idle past the idle timeout, or idle when the cache needs room
// (memory pressure), the actor releases its model and stops; requests that
// reach it while it stops are bounced back to the caller, which re-resolves
// the identity. A model that does not exist answers not_found and leaves no
// actor behind. ReloadRequest rolls out a new version: it is loaded beside
// the old one, swapped in, and the old one is released after its last
// batch. Loads and reloads are bounded (Host.LoadTimeout,
// Host.ReloadTimeout) and end when their actor stops, so a hung store
// never keeps an actor loading or reloading.
//
// Register the kind with the cluster:
//
//	host := actors.NewHost(store, cache, memberName)
//	member, err := cluster.Start(ctx, cfg, host.Kind())
package actors
