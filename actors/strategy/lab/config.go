package lab

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/manta-ml/manta/actors/strategy"
)

// Latency distributions of simulated models.
const (
	// DistLogNormal: Median·e^(Sigma·Z), Z standard normal.
	DistLogNormal = "lognormal"
	// DistHeavyTail: lognormal, and with StragglerProb a straggler, slower
	// by a factor drawn log-uniformly in [StragglerMin, StragglerMax] (a GC
	// pause, a noisy neighbour, a retransmit).
	DistHeavyTail = "heavy-tail"
	// DistBimodal: lognormal around Median when warm and, with ColdProb,
	// lognormal around ColdMedian (a cold start: the model is loading).
	DistBimodal = "bimodal"
)

// Latency describes how long a simulated model takes per call.
type Latency struct {
	Dist   string        `json:"dist"`
	Median time.Duration `json:"median"`
	// Sigma is the lognormal shape (default 0.25).
	Sigma float64 `json:"sigma,omitempty"`

	StragglerProb float64 `json:"straggler_prob,omitempty"`
	StragglerMin  float64 `json:"straggler_min,omitempty"`
	StragglerMax  float64 `json:"straggler_max,omitempty"`

	ColdProb   float64       `json:"cold_prob,omitempty"`
	ColdMedian time.Duration `json:"cold_median,omitempty"`
}

func (l Latency) sigma() float64 {
	if l.Sigma == 0 {
		return 0.25
	}
	return l.Sigma
}

// Sample draws one latency.
func (l Latency) Sample(r *rand.Rand) time.Duration {
	med := float64(l.Median)
	switch l.Dist {
	case DistBimodal:
		if r.Float64() < l.ColdProb {
			med = float64(l.ColdMedian)
		}
	}
	d := med * math.Exp(l.sigma()*r.NormFloat64())
	if l.Dist == DistHeavyTail && r.Float64() < l.StragglerProb {
		lo, hi := math.Log(l.StragglerMin), math.Log(l.StragglerMax)
		d *= math.Exp(lo + (hi-lo)*r.Float64())
	}
	if d < 1 {
		d = 1
	}
	return time.Duration(d)
}

// Validate checks the distribution's parameters.
func (l Latency) Validate() error {
	if l.Median <= 0 {
		return errors.New("median must be > 0")
	}
	if l.Sigma < 0 {
		return errors.New("sigma must be >= 0")
	}
	switch l.Dist {
	case "", DistLogNormal:
	case DistHeavyTail:
		if l.StragglerProb < 0 || l.StragglerProb > 1 || l.StragglerMin < 1 || l.StragglerMax < l.StragglerMin {
			return errors.New("heavy-tail wants 0 <= straggler_prob <= 1 and 1 <= straggler_min <= straggler_max")
		}
	case DistBimodal:
		if l.ColdProb < 0 || l.ColdProb > 1 || l.ColdMedian <= 0 {
			return errors.New("bimodal wants 0 <= cold_prob <= 1 and cold_median > 0")
		}
	default:
		return fmt.Errorf("unknown dist %q (want %s, %s or %s)", l.Dist, DistLogNormal, DistHeavyTail, DistBimodal)
	}
	return nil
}

func (l Latency) String() string {
	switch l.Dist {
	case DistHeavyTail:
		return fmt.Sprintf("heavy-tail %v σ%.2g, %.1f%% stragglers ×%g-%g", l.Median, l.sigma(), 100*l.StragglerProb, l.StragglerMin, l.StragglerMax)
	case DistBimodal:
		return fmt.Sprintf("bimodal %v σ%.2g, %.1f%% cold %v", l.Median, l.sigma(), 100*l.ColdProb, l.ColdMedian)
	}
	return fmt.Sprintf("lognormal %v σ%.2g", l.Median, l.sigma())
}

// Model is a simulated model: a binary classifier that answers
// {"label": 0|1, "prediction": P(1), "confidence": c, "probabilities": [P(0), P(1)]}.
type Model struct {
	Name    string  `json:"name"`
	Version string  `json:"version,omitempty"` // default "1"
	Latency Latency `json:"latency"`
	// Accuracy is the probability its label is right. Its confidence is
	// informative: higher, on average, when it is right.
	Accuracy float64 `json:"accuracy"`
	// FailRate is the probability a call fails (api.ErrOverloaded).
	FailRate float64 `json:"fail_rate,omitempty"`
	// NoQuality hides the accuracy from the strategies (by default the
	// candidate's manifest quality is the accuracy, higher is better).
	NoQuality bool `json:"no_quality,omitempty"`
}

// Trial is one strategy the lab compares: a registered strategy, its params,
// and the candidate models in order.
type Trial struct {
	// Label names the row (default: the strategy and its models).
	Label    string            `json:"label,omitempty"`
	Strategy string            `json:"strategy"`
	Params   map[string]string `json:"params,omitempty"`
	Models   []string          `json:"models"`
	// Deadline overrides Config.Deadline for this run.
	Deadline time.Duration `json:"deadline,omitempty"`
}

// Name is the row's label.
func (r Trial) Name() string {
	if r.Label != "" {
		return r.Label
	}
	return r.Strategy + "(" + strings.Join(r.Models, ",") + ")"
}

// Config is what the lab simulates. The zero value of every field but Models
// and Trials has a default (see DefaultConfig).
type Config struct {
	// Seed makes the run reproducible: the same seed, the same report.
	Seed uint64 `json:"seed"`
	// Requests is the length of the synthetic trace (default 20000).
	Requests int `json:"requests"`
	// Deadline is every request's deadline (default 100ms).
	Deadline time.Duration `json:"deadline"`
	// Positive is the share of requests whose true label is 1 (default 0.5).
	Positive float64 `json:"positive"`
	// StatsSamples is how many draws estimate each model's p50/p95/p99
	// handed to the strategies, as the model actor's live stats would
	// (default 20000).
	StatsSamples int     `json:"stats_samples"`
	Models       []Model `json:"models"`
	Trials       []Trial `json:"trials"`
	// Trace, when set, replaces the synthetic trace and the simulated
	// models: its requests are replayed (Requests is its length), its
	// models are the candidates, with their latency stats from the trace
	// and their live quality, the accuracy of their answers over its
	// labels (ReadTrace).
	Trace []TraceRequest `json:"trace,omitempty"`
}

func (c *Config) defaults() {
	if len(c.Trace) > 0 {
		c.Requests = len(c.Trace)
		c.Models, _ = traceModels(c.Trace)
	}
	if c.Requests == 0 {
		c.Requests = 20000
	}
	if c.Deadline == 0 {
		c.Deadline = 100 * time.Millisecond
	}
	if c.Positive == 0 {
		c.Positive = 0.5
	}
	if c.StatsSamples == 0 {
		c.StatsSamples = 20000
	}
	for i := range c.Models {
		if c.Models[i].Version == "" {
			c.Models[i].Version = "1"
		}
		if c.Models[i].Latency.Dist == "" {
			c.Models[i].Latency.Dist = DistLogNormal
		}
	}
}

// Validate checks the config: known distributions, models named once, runs
// naming registered strategies with params they accept and known models.
func (c *Config) Validate() error {
	var errs []error
	if c.Requests < 0 || c.Deadline < 0 || c.StatsSamples < 0 {
		errs = append(errs, errors.New("requests, deadline and stats_samples must be >= 0"))
	}
	if c.Positive < 0 || c.Positive > 1 {
		errs = append(errs, errors.New("positive must be in [0, 1]"))
	}
	names := map[string]bool{}
	for _, m := range c.Models {
		if m.Name == "" || names[m.Name] {
			errs = append(errs, fmt.Errorf("model %q: empty or duplicate name", m.Name))
		}
		names[m.Name] = true
		if err := m.Latency.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("model %s: latency: %w", m.Name, err))
		}
		if m.Accuracy < 0 || m.Accuracy > 1 || m.FailRate < 0 || m.FailRate > 1 {
			errs = append(errs, fmt.Errorf("model %s: accuracy and fail_rate must be in [0, 1]", m.Name))
		}
	}
	if len(c.Trials) == 0 {
		errs = append(errs, errors.New("no trials"))
	}
	labels := map[string]bool{}
	for _, r := range c.Trials {
		if labels[r.Name()] {
			errs = append(errs, fmt.Errorf("run %s: duplicate label", r.Name()))
		}
		labels[r.Name()] = true
		if _, err := strategy.New(r.Strategy, r.Params); err != nil {
			errs = append(errs, fmt.Errorf("run %s: %w", r.Name(), err))
		}
		if len(r.Models) == 0 {
			errs = append(errs, fmt.Errorf("run %s: no models", r.Name()))
		}
		for _, m := range r.Models {
			if !names[m] {
				errs = append(errs, fmt.Errorf("run %s: unknown model %q", r.Name(), m))
			}
		}
	}
	return errors.Join(errs...)
}

// Scenarios lists the named configs Scenario knows, sorted.
func Scenarios() []string {
	out := make([]string, 0, len(scenarios))
	for n := range scenarios {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Scenario returns a named config:
//   - "tail": one model whose p99 is about 10× its p50; a single call vs
//     hedged (the figure of "The Tail at Scale");
//   - "fallback": a smart slow model and a fast one under a 30 ms budget:
//     deadline-fallback and cascade vs each alone;
//   - "ensemble": three models (lognormal, heavy-tailed, cold/warm bimodal):
//     first-success, majority-vote, best-quality, weighted-average;
//   - "all": every model and run of the three.
func Scenario(name string) (Config, error) {
	f, ok := scenarios[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(Scenarios(), ", "))
	}
	c := f()
	c.defaults()
	return c, nil
}

// DefaultConfig is Scenario("all").
func DefaultConfig() Config {
	c, _ := Scenario("all")
	return c
}

const ms = time.Millisecond

// TailModel is the "tail" scenario's model: 10 ms median, and 2% stragglers
// 5-20× slower, so that its p99 is about 10× its p50.
var TailModel = Model{
	Name: "svc", Accuracy: 0.9,
	Latency: Latency{Dist: DistHeavyTail, Median: 10 * ms, Sigma: 0.1, StragglerProb: 0.02, StragglerMin: 5, StragglerMax: 20},
}

var scenarios = map[string]func() Config{
	"tail": func() Config {
		return Config{
			Seed: 1, Deadline: time.Second, Models: []Model{TailModel},
			Trials: []Trial{
				{Label: "single", Strategy: strategy.NameFirstSuccess, Models: []string{"svc"}},
				{Label: "hedged@p95", Strategy: strategy.NameHedged, Models: []string{"svc"}},
				{Label: "hedged@p95,max=2", Strategy: strategy.NameHedged, Params: map[string]string{"max": "2"}, Models: []string{"svc"}},
				{Label: "hedged@p99", Strategy: strategy.NameHedged, Params: map[string]string{"at": "p99"}, Models: []string{"svc"}},
			},
		}
	},
	"fallback": func() Config {
		return Config{
			Seed: 1, Deadline: 30 * ms,
			Models: []Model{
				{Name: "smart", Accuracy: 0.95, Latency: Latency{Dist: DistHeavyTail, Median: 18 * ms, Sigma: 0.3, StragglerProb: 0.05, StragglerMin: 2, StragglerMax: 6}},
				{Name: "fast", Accuracy: 0.85, Latency: Latency{Dist: DistLogNormal, Median: 2 * ms, Sigma: 0.3}},
			},
			Trials: []Trial{
				{Label: "smart-only", Strategy: strategy.NameFirstSuccess, Models: []string{"smart"}},
				{Label: "fast-only", Strategy: strategy.NameFirstSuccess, Models: []string{"fast"}},
				{Strategy: strategy.NameDeadlineFallback, Models: []string{"smart", "fast"}},
				{Label: "deadline-fallback@20ms", Strategy: strategy.NameDeadlineFallback, Params: map[string]string{"fallback_at": "20ms"}, Models: []string{"smart", "fast"}},
				{Strategy: strategy.NameCascade, Models: []string{"fast", "smart"}},
			},
		}
	},
	"ensemble": func() Config {
		return Config{
			Seed: 1, Deadline: 50 * ms,
			Models: []Model{
				{Name: "a", Accuracy: 0.90, Latency: Latency{Dist: DistLogNormal, Median: 8 * ms, Sigma: 0.3}},
				{Name: "b", Accuracy: 0.88, Latency: Latency{Dist: DistHeavyTail, Median: 6 * ms, Sigma: 0.2, StragglerProb: 0.03, StragglerMin: 4, StragglerMax: 12}},
				{Name: "c", Accuracy: 0.86, FailRate: 0.01, Latency: Latency{Dist: DistBimodal, Median: 5 * ms, Sigma: 0.2, ColdProb: 0.05, ColdMedian: 40 * ms}},
			},
			Trials: []Trial{
				{Label: "a-only", Strategy: strategy.NameFirstSuccess, Models: []string{"a"}},
				{Strategy: strategy.NameFirstSuccess, Models: []string{"a", "b", "c"}},
				{Strategy: strategy.NameMajorityVote, Params: map[string]string{"key": "label"}, Models: []string{"a", "b", "c"}},
				{Strategy: strategy.NameBestQuality, Models: []string{"a", "b", "c"}},
				{Strategy: strategy.NameWeightedAverage, Models: []string{"a", "b", "c"}},
			},
		}
	},
}

func init() {
	scenarios["all"] = allScenario
}

func allScenario() Config {
	c := Config{Seed: 1, Deadline: 50 * ms}
	for _, n := range []string{"tail", "fallback", "ensemble"} {
		s := scenarios[n]()
		c.Models = append(c.Models, s.Models...)
		for _, r := range s.Trials {
			if r.Label == "" {
				r.Label = r.Name()
			}
			if r.Deadline == 0 {
				r.Deadline = s.Deadline
			}
			if n == "tail" {
				r.Label = "tail/" + r.Label
			}
			c.Trials = append(c.Trials, r)
		}
	}
	return c
}
