// Package placesim simulates Manta's placement and cache policies on a
// synthetic cluster with a fixed seed, so the numbers are the same on every
// run and every machine: `manta bench placement` prints them, and the
// package's tests and benchmarks check them.
//
// The placement simulation has 8 members and 10^4 models with lognormal
// sizes (10 MB–2 GB) and Zipf(α≈1) request volumes. It compares, over the
// same arrival order and the same noisy volume measurements:
//
//   - rendezvous: disthash's rule (the identity's rendezvous owner hosts it,
//     blind to size and volume; a model that does not fit is unplaced);
//   - knapsack: the seed design's periodic mapping, recomputed from scratch
//     every cycle: items weigh max(1, measured volume) and their memory, and
//     a greedy vector bin-packing assigns them;
//   - manta: cluster/placement's Choose on first activation (cold models by
//     memory alone, over gossip that is Staleness placements old), then
//     cluster/placement's Plan every cycle (≤ K moves, hysteresis,
//     cool-down).
//
// Half-way through, the popularity of a fraction of the models drifts, so
// the second half measures how each strategy follows change.
//
// The cache simulation replays a Zipf trace through modelhost's real
// policies (LRU, GDSF) and Belady's offline rule (evict the model used
// furthest in the future) with a budget of 10% of the total size, and
// reports byte and object miss ratios.
package placesim
