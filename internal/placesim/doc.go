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
//     every cycle the live leader's round (cluster/rebalance.go): replicas
//     of hot models, then cluster/placement's Plan (≤ K moves, hysteresis,
//     cool-down).
//
// Replicas follow the live leader's rule, in the simulator's units: one
// activation is meant to serve HotRate × one member's mean measured volume
// (hot; the live HotRate is in requests/s, so HotRate here is the live
// value over the cluster's rate per member); a model measured at r gets
// min(⌈r/hot⌉−1, MaxReplicas) replicas at once, and loses one a cycle
// once it has more than it wants and r < 0.6 × hot × its replicas. Its
// volume is split evenly over its copies (as Lookup.Route spreads
// requests) and every copy takes the model's bytes on its member. Manta
// places a replica as the leader does: placement.Choose over all members
// on the loads before the cycle, the replica counted at hot, away from the
// members hosting the model's other copies (a replica that fits only
// beside another copy waits for the next cycle); a replicated model's
// activations stay put (the plan freezes them). The table is decided once
// a cycle from the shared measurements and the baselines get it too, each
// placing copies its own way: rendezvous on the next members of the
// model's rendezvous ranking, the knapsack as one item per copy (never two
// on a member). HotRate 0.5 and MaxReplicas 15 are the defaults (the live
// cluster's MaxReplicas is 3, too few: see below); HotRate < 0 turns
// replicas off.
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
// and memory at the end of each phase, moves during it, replicas placed
// and the hottest model's copies):
//
//	budgets 15% over the total size    volume  memory  moves  unplaced  replicas  top copies
//	rendezvous            steady        1.344   1.049      0   0.00%     1         2
//	knapsack              steady        1.002   1.104  87063   0.00%     1         2
//	manta (+ rebalancer)  steady        1.037   1.008     52   0.00%     1         2
//	manta (+ rebalancer)  after drift   1.039   1.012     39   0.00%     1         2
//	budgets 3% over the total size
//	rendezvous            steady        1.344   1.032      0   0.30%     1         2
//	knapsack              steady        1.003   1.030  87303   0.00%     1         2
//	manta (+ rebalancer)  steady        1.037   1.009     51   0.00%     1         2
//	manta (+ rebalancer)  after drift   1.042   1.009     58   0.00%     1         2
//
// Without replicas (--hot-rate -1) manta's steady volume is 1.047 after
// 160 moves and rendezvous's 1.722.
//
// At 64 members and 10^5 models (`--members 64 --models 100000`) the top
// model carries 8.3% of requests, 5.3 members' mean: on one activation no
// placement can balance it (manta's steady volume is 5.47 without
// replicas). The live cap of 3 replicas leaves its 4 copies at 1.33 of a
// member's mean each (the knapsack 1.32, manta 1.65); a hot rate of one
// member's mean (6 copies of 0.88) leaves manta at 1.28, because the
// members hosting the copies keep their hundreds of small models, more
// than K moves a cycle can shed. With the defaults the top model has 11
// copies and manta's steady row is 1.036 volume, 1.006 memory after 67
// moves (27 replicas; 1.041 with the live K = 8); after the drift 1.20:
// the new hot models sit where they were placed cold, and once replicated
// they stay put, so two copies of different hot models may share a
// member. Rendezvous with the same replicas is at 2.25, the knapsack at
// 1.009 after moving ~10^6 models a phase.
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
