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
// reports byte and object miss ratios, with two bounds: the static oracle
// (keeps the models the trace requests most: the best an online policy can
// do on independent draws) and Belady.
//
// Figures (seed 1, `manta bench placement`; max/mean of per-member volume
// and memory at the end of each phase, moves during it):
//
//	budgets 15% over the total size    volume  memory  moves  unplaced
//	rendezvous            steady        1.722   1.049      0   0.00%
//	knapsack              steady        1.002   1.149  86709   0.00%
//	manta (+ rebalancer)  steady        1.047   1.003    160   0.00%
//	manta (+ rebalancer)  after drift   1.040   1.004     18   0.00%
//	budgets 3% over the total size
//	rendezvous            steady        1.722   1.032      0   0.30%
//	knapsack              steady        1.185   1.030  72894   0.00%
//	manta (+ rebalancer)  steady        1.048   1.009    160   0.00%
//	manta (+ rebalancer)  after drift   1.049   1.009     25   0.00%
//
//	cache, budget 10% of the total      byte miss  object miss  / belady
//	lru                                 0.3347     0.3294       1.761
//	gdsf (shipped default)              0.2738     0.2618       1.441
//	static oracle                       0.2422     0.2421       1.274
//	belady (offline)                    0.1901     0.1891       1.000
//
// GDSF loads 18% fewer bytes than LRU and is within 1.13× of the static
// oracle; no online policy comes within 1.2× of Belady on this trace (the
// oracle itself is 1.27×): Belady knows each request's next use.
package placesim
