package placesim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Config describes the simulated cluster, workload and trace. Zero fields
// take DefaultConfig's values.
type Config struct {
	Seed    uint64 `json:"seed"`
	Members int    `json:"members"`
	Models  int    `json:"models"`
	// Sizes: lognormal with this median and σ, clipped to [MinBytes, MaxBytes].
	MinBytes    int64   `json:"min_bytes"`
	MaxBytes    int64   `json:"max_bytes"`
	MedianBytes int64   `json:"median_bytes"`
	Sigma       float64 `json:"sigma"`
	// Alpha is the Zipf exponent of request volumes (and of the trace).
	Alpha float64 `json:"alpha"`
	// Slack is the members' total budget over the models' total size.
	Slack float64 `json:"slack"`
	// Cycles of rebalancing (the knapsack remaps once per cycle too);
	// the drift happens after half of them.
	Cycles int `json:"cycles"`
	// MaxMoves is K, the rebalancer's moves per cycle; CoolDown is how
	// many cycles a moved model stays put.
	MaxMoves int `json:"max_moves"`
	CoolDown int `json:"cool_down"`
	// HotRate is the volume one activation is meant to serve, as a
	// multiple of one member's mean volume (the cluster's measured volume
	// over Members): the simulator's unit for the live RebalanceConfig.
	// HotRate (requests/s). A model measured above it gets replicas by the
	// live leader's rule (see adjustReplicas); 0: the default; negative:
	// no replicas.
	HotRate float64 `json:"hot_rate"`
	// MaxReplicas bounds a model's replicas (activations beyond its
	// first), as the live RebalanceConfig.MaxReplicas does.
	MaxReplicas int `json:"max_replicas"`
	// Staleness is how many placements pass between gossip rounds: a
	// directory sees other directories' placements only that late.
	Staleness int `json:"staleness"`
	// WindowRequests is the requests measured per cycle (volumes are
	// Poisson counts of it, smoothed by an EWMA): the measurement noise.
	WindowRequests float64 `json:"window_requests"`
	// DriftHot hot models swap popularity with as many random models
	// half-way through.
	DriftHot int `json:"drift_hot"`
	// TraceRequests and CacheFraction set up the cache simulation: a Zipf
	// trace of that many requests, a budget of that fraction of the total
	// size.
	TraceRequests int     `json:"trace_requests"`
	CacheFraction float64 `json:"cache_fraction"`
}

// DefaultConfig is the benchmark of the issue: 8 members, 10^4 models,
// 10 MB–2 GB (median 100 MB), Zipf α = 1, budgets 15% above the total
// size, 20 cycles of at most 16 moves, 10^6 requests a window, 20 hot
// models drifting, and a 10^6-request cache trace within 10% of the total.
func DefaultConfig() Config {
	return Config{
		Seed:           1,
		Members:        8,
		Models:         10_000,
		MinBytes:       10_000_000,
		MaxBytes:       2_000_000_000,
		MedianBytes:    100_000_000,
		Sigma:          1.0,
		Alpha:          1.0,
		Slack:          1.15,
		Cycles:         20,
		MaxMoves:       16,
		CoolDown:       5,
		HotRate:        0.5,
		MaxReplicas:    15,
		Staleness:      64,
		WindowRequests: 1e6,
		DriftHot:       20,
		TraceRequests:  1_000_000,
		CacheFraction:  0.10,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	if c.Members <= 0 {
		c.Members = d.Members
	}
	if c.Models <= 0 {
		c.Models = d.Models
	}
	if c.MinBytes <= 0 {
		c.MinBytes = d.MinBytes
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = d.MaxBytes
	}
	if c.MedianBytes <= 0 {
		c.MedianBytes = d.MedianBytes
	}
	if c.Sigma <= 0 {
		c.Sigma = d.Sigma
	}
	if c.Alpha <= 0 {
		c.Alpha = d.Alpha
	}
	if c.Slack <= 0 {
		c.Slack = d.Slack
	}
	if c.Cycles <= 0 {
		c.Cycles = d.Cycles
	}
	if c.MaxMoves <= 0 {
		c.MaxMoves = d.MaxMoves
	}
	if c.CoolDown < 0 {
		c.CoolDown = d.CoolDown
	}
	if c.HotRate == 0 {
		c.HotRate = d.HotRate
	}
	if c.MaxReplicas <= 0 {
		c.MaxReplicas = d.MaxReplicas
	}
	if c.Staleness <= 0 {
		c.Staleness = d.Staleness
	}
	if c.WindowRequests <= 0 {
		c.WindowRequests = d.WindowRequests
	}
	if c.DriftHot < 0 {
		c.DriftHot = 0
	}
	if c.TraceRequests <= 0 {
		c.TraceRequests = d.TraceRequests
	}
	if c.CacheFraction <= 0 {
		c.CacheFraction = d.CacheFraction
	}
	return c
}

// Validate names the first impossible setting.
func (c Config) Validate() error {
	if c.MaxReplicas < 0 {
		return fmt.Errorf("placesim: max_replicas %d is negative", c.MaxReplicas)
	}
	c = c.withDefaults()
	switch {
	case c.MinBytes > c.MaxBytes:
		return fmt.Errorf("placesim: min_bytes %d > max_bytes %d", c.MinBytes, c.MaxBytes)
	case c.Members < 2:
		return fmt.Errorf("placesim: need at least 2 members, got %d", c.Members)
	case c.CacheFraction > 1:
		return fmt.Errorf("placesim: cache_fraction %g > 1", c.CacheFraction)
	case c.DriftHot > c.Models/2:
		return fmt.Errorf("placesim: drift_hot %d > half the models", c.DriftHot)
	}
	return nil
}

// workload is the generated cluster and models.
type workload struct {
	ids     []string
	sizes   []int64
	vol     []float64 // true volume share (sums to 1); changes at the drift
	arrival []int     // order of first requests
	members []string  // addresses
	budgets []int64
	total   int64 // total size
}

func newRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream))
}

// lognormalSizes draws n sizes, clipped to [min, max].
func lognormalSizes(rng *rand.Rand, n int, median, lo, hi int64, sigma float64) []int64 {
	mu := math.Log(float64(median))
	out := make([]int64, n)
	for i := range out {
		s := int64(math.Exp(mu + sigma*rng.NormFloat64()))
		out[i] = min(max(s, lo), hi)
	}
	return out
}

// zipfShares returns shares ∝ 1/rank^alpha over a random permutation of n
// models (popularity independent of size), summing to 1.
func zipfShares(rng *rand.Rand, n int, alpha float64) []float64 {
	w := make([]float64, n)
	var total float64
	for r := range w {
		w[r] = 1 / math.Pow(float64(r+1), alpha)
		total += w[r]
	}
	perm := rng.Perm(n)
	out := make([]float64, n)
	for r, i := range perm {
		out[i] = w[r] / total
	}
	return out
}

func newWorkload(c Config) *workload {
	w := &workload{}
	w.ids = make([]string, c.Models)
	for i := range w.ids {
		w.ids[i] = fmt.Sprintf("model-%05d", i)
	}
	w.sizes = lognormalSizes(newRand(c.Seed, 1), c.Models, c.MedianBytes, c.MinBytes, c.MaxBytes, c.Sigma)
	for _, s := range w.sizes {
		w.total += s
	}
	w.vol = zipfShares(newRand(c.Seed, 2), c.Models, c.Alpha)
	// Models are first requested roughly in order of popularity: the
	// first request of model i comes after an exponential wait of mean
	// 1/volume.
	rng := newRand(c.Seed, 3)
	first := make([]float64, c.Models)
	for i := range first {
		first[i] = rng.ExpFloat64() / w.vol[i]
	}
	w.arrival = make([]int, c.Models)
	for i := range w.arrival {
		w.arrival[i] = i
	}
	sort.Slice(w.arrival, func(a, b int) bool { return first[w.arrival[a]] < first[w.arrival[b]] })
	w.members = make([]string, c.Members)
	w.budgets = make([]int64, c.Members)
	per := int64(float64(w.total) * c.Slack / float64(c.Members))
	for i := range w.members {
		w.members[i] = fmt.Sprintf("10.0.%d.1:4020", i)
		w.budgets[i] = per
	}
	return w
}

// drift swaps the volumes of the k most popular models with those of k
// random less popular ones.
func (w *workload) drift(rng *rand.Rand, k int) {
	if k <= 0 {
		return
	}
	byVol := make([]int, len(w.vol))
	for i := range byVol {
		byVol[i] = i
	}
	sort.Slice(byVol, func(a, b int) bool { return w.vol[byVol[a]] > w.vol[byVol[b]] })
	rest := byVol[k:]
	for j := 0; j < k; j++ {
		r := j + rng.IntN(len(rest)-j)
		rest[j], rest[r] = rest[r], rest[j]
		a, b := byVol[j], rest[j]
		w.vol[a], w.vol[b] = w.vol[b], w.vol[a]
	}
}

// poisson draws a Poisson count of mean m (normal approximation above 30).
func poisson(rng *rand.Rand, m float64) float64 {
	if m <= 0 {
		return 0
	}
	if m > 30 {
		return math.Max(0, math.Round(m+math.Sqrt(m)*rng.NormFloat64()))
	}
	l, k, p := math.Exp(-m), 0.0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// measure is one window of request counts, folded into the EWMA est
// (nil: start it).
func (w *workload) measure(rng *rand.Rand, window float64, est []float64) []float64 {
	if est == nil {
		est = make([]float64, len(w.vol))
		for i, v := range w.vol {
			est[i] = poisson(rng, v*window)
		}
		return est
	}
	for i, v := range w.vol {
		est[i] = 0.5*est[i] + 0.5*poisson(rng, v*window)
	}
	return est
}
