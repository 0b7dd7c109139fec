package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/modelhost"
)

// The two models. The ensemble is a Go function registered under
// ensembleFunc; the fallback is a `linear` model (JSON coefficients).
const (
	ensembleID   = "fraud-ensemble"
	ensembleFunc = "fraud-ensemble"
	fallbackID   = "fraud-linear"
)

// Features of a transaction, in this order: log10(amount), hour of day / 24,
// foreign card (0/1), transactions on the card in the last hour, new device
// (0/1).
const nFeatures = 5

// fallbackWeights is the logistic fallback: fast, and a bit worse.
var (
	fallbackWeights = []float64{1.1, -0.4, 1.6, 0.35, 1.2}
	fallbackBias    = -6.2
)

// ensembleLatency is the injected latency of one ensemble batch: lognormal
// around median, and with probability straggler a straggler of 35-80 ms
// (a GC pause, a cold cache, a noisy neighbour).
type ensembleLatency struct {
	median    time.Duration
	sigma     float64
	straggler float64

	mu  sync.Mutex
	rng *rand.Rand
}

func (l *ensembleLatency) sample() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rng.Float64() < l.straggler {
		return 35*time.Millisecond + time.Duration(l.rng.Int64N(int64(45*time.Millisecond)))
	}
	return time.Duration(float64(l.median) * math.Exp(l.sigma*l.rng.NormFloat64()))
}

// registerEnsemble registers the ensemble's Go function with the given
// latency: three logistic scorers on different views of the transaction,
// averaged. It must be called once per process.
func registerEnsemble(seed uint64) {
	lat := &ensembleLatency{median: 14 * time.Millisecond, sigma: 0.35, straggler: 0.08, rng: rand.New(rand.NewPCG(seed, 2))}
	modelhost.RegisterFunc(ensembleFunc, func(context.Context, *modelhost.Manifest, string) (modelhost.Model, error) {
		return modelhost.NewFuncModel(func(ctx context.Context, batch []modelhost.Input) ([]modelhost.Output, error) {
			t := time.NewTimer(lat.sample()) // the ensemble's compute time, simulated
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			out := make([]modelhost.Output, len(batch))
			for i, in := range batch {
				x, err := features(in.Payload)
				if err != nil {
					out[i].Err = err
					continue
				}
				out[i].Payload = fmt.Appendf(nil, `{"prediction":%.4f}`, ensembleScore(x))
			}
			return out, nil
		}, 64<<20), nil
	})
}

// ensembleScore averages three scorers; it knows that velocity matters
// mostly on foreign cards, which the linear model cannot express.
func ensembleScore(x []float64) float64 {
	a := sigmoid(1.2*x[0] + 1.5*x[2] + 1.3*x[4] - 5.8)
	b := sigmoid(0.9*x[3]*(1+2*x[2]) + 0.8*x[0] - 7.2)
	c := sigmoid(2.5*x[2]*x[4] + 0.6*x[3] - 0.5*x[1] - 3.9)
	return (a + b + c) / 3
}

func sigmoid(y float64) float64 { return 1 / (1 + math.Exp(-y)) }

func features(payload []byte) ([]float64, error) {
	var in struct {
		Features []float64 `json:"features"`
	}
	if err := json.Unmarshal(payload, &in); err != nil {
		return nil, fmt.Errorf("%w: %v", manta.ErrBadInput, err)
	}
	if len(in.Features) != nFeatures {
		return nil, fmt.Errorf("%w: want %d features, got %d", manta.ErrBadInput, nFeatures, len(in.Features))
	}
	return in.Features, nil
}

// writeModels writes both models into a directory store.
func writeModels(root string) error {
	if err := modelgen.Write(root, modelhost.Manifest{
		ID: ensembleID, Version: "1", Runtime: "go", Entrypoint: ensembleFunc, MemoryBytes: 64 << 20,
		Description: "three-scorer ensemble, slow with stragglers",
		Quality:     &modelhost.Quality{Metric: "auc", Value: 0.97, HigherIsBetter: true},
		Batch:       modelhost.Batch{MaxSize: 16, MaxWaitMS: 1},
	}, nil); err != nil {
		return err
	}
	return modelgen.Write(root, modelhost.Manifest{
		ID: fallbackID, Version: "1", Runtime: "linear", Format: "linear-json", Entrypoint: "model.json", MemoryBytes: 4096,
		Description: "logistic fallback",
		Quality:     &modelhost.Quality{Metric: "auc", Value: 0.91, HigherIsBetter: true},
	}, map[string][]byte{"model.json": modelgen.LinearJSON(fallbackWeights, fallbackBias, "logistic")})
}

// transaction draws one synthetic transaction and whether it is fraud.
func transaction(r *rand.Rand) ([]float64, bool) {
	fraud := r.Float64() < 0.03
	amount := math.Exp(3 + 1.2*r.NormFloat64())
	foreign, device := 0.0, 0.0
	velocity := float64(r.IntN(3))
	if fraud {
		amount *= 4
		velocity += float64(2 + r.IntN(6))
		if r.Float64() < 0.7 {
			foreign = 1
		}
		if r.Float64() < 0.6 {
			device = 1
		}
	} else {
		if r.Float64() < 0.08 {
			foreign = 1
		}
		if r.Float64() < 0.05 {
			device = 1
		}
	}
	return []float64{math.Log10(1 + amount), float64(r.IntN(24)) / 24, foreign, velocity, device}, fraud
}
