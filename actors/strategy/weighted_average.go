package strategy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/manta-ml/manta/api"
)

// WeightedAverage calls every candidate at once and averages their numeric
// outputs ({"prediction": 41.5} by default) with weights, answering
// {"prediction": average} once every call returned, or at the deadline with
// what arrived (marked Fallback when some are missing). Confidence is the
// share of the total weight that answered. Outputs without the number count
// as failures.
//
// Weights come from params, else from the candidates' quality (quality when
// higher is better, 1/quality when lower is better), else are equal.
//
// Params:
//   - weights: "model:w,model:w" (models not listed weigh 0);
//   - key: the number's field in input and output (default "prediction");
//   - min: results needed to answer at the deadline (default 1).
type WeightedAverage struct {
	weights map[string]float64
	key     string
	min     int

	w     map[string]float64
	total float64
}

// NewWeightedAverage is the factory of "weighted-average".
func NewWeightedAverage(params map[string]string) (Strategy, error) {
	pr := ReadParams(params)
	s := &WeightedAverage{key: pr.String("key", "prediction"), min: pr.Int("min", 1)}
	for _, kv := range pr.List("weights") {
		m, v, ok := strings.Cut(kv, ":")
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || err != nil || f < 0 || f != f {
			pr.Failf("weights: %q: want model:weight with weight >= 0", kv)
			continue
		}
		if s.weights == nil {
			s.weights = map[string]float64{}
		}
		s.weights[strings.TrimSpace(m)] = f
	}
	if s.min < 1 {
		s.min = 1
	}
	if err := pr.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// Name implements Strategy.
func (*WeightedAverage) Name() string { return NameWeightedAverage }

// Start implements Strategy.
func (s *WeightedAverage) Start(req *Request, cands []Candidate) Plan {
	s.w = map[string]float64{}
	var ls []Launch
	for _, l := range launchAll(cands) {
		c, _ := candidate(cands, l.Model)
		w := 1.0
		switch {
		case s.weights != nil:
			w = s.weights[c.Model]
		case allHaveQuality(cands):
			w = c.Quality
			if !c.HigherIsBetter {
				w = 0
				if c.Quality > 0 {
					w = 1 / c.Quality
				}
			}
		}
		if w <= 0 {
			continue // a model that weighs nothing is not worth a call
		}
		s.w[c.Model] = w
		s.total += w
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		return Plan{Err: fmt.Errorf("%w: %s: no candidate has a positive weight", api.ErrBadInput, NameWeightedAverage)}
	}
	return Plan{Launches: ls}
}

func allHaveQuality(cands []Candidate) bool {
	for _, c := range cands {
		if !c.HasQuality {
			return false
		}
	}
	return len(cands) > 0
}

// OnEvent implements Strategy.
func (s *WeightedAverage) OnEvent(ev Event, p *Progress) Decision {
	if ev.Kind != EventDeadline && !p.Idle() {
		return Wait()
	}
	var sum, wsum float64
	var models, versions []string
	for _, r := range p.Successes() {
		x, ok := Number(r.Output, s.key)
		if !ok {
			continue
		}
		w := s.w[r.Model]
		sum += w * x
		wsum += w
		models = append(models, r.Model)
		versions = append(versions, r.Version)
	}
	if len(models) < s.min || wsum == 0 {
		if p.Idle() {
			if len(p.Successes()) > 0 {
				return Fail(fmt.Errorf("%w: %s: %d numeric %q outputs, need %d", api.ErrInternal, NameWeightedAverage, len(models), s.key, s.min))
			}
			return failAll(NameWeightedAverage, p)
		}
		return Wait()
	}
	out, err := json.Marshal(map[string]float64{s.key: sum / wsum})
	if err != nil {
		return Fail(fmt.Errorf("%w: %s: %v", api.ErrInternal, NameWeightedAverage, err))
	}
	return Decision{
		Done: true, Output: out, Models: models, Versions: versions,
		Confidence: wsum / s.total,
		Fallback:   len(models) < len(s.w),
	}
}

var _ Strategy = (*WeightedAverage)(nil)
