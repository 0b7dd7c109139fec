package strategy

import (
	"fmt"

	"github.com/manta-ml/manta/api"
)

// Names of the built-in strategies.
const (
	NameDeadlineFallback = "deadline-fallback"
	NameHedged           = "hedged"
	NameFirstSuccess     = "first-success"
	NameMajorityVote     = "majority-vote"
	NameBestQuality      = "best-quality"
	NameWeightedAverage  = "weighted-average"
	NameCascade          = "cascade"
)

func init() {
	RegisterStrategy(NameDeadlineFallback, NewDeadlineFallback)
	RegisterStrategy(NameHedged, NewHedged)
	RegisterStrategy(NameFirstSuccess, NewFirstSuccess)
	RegisterStrategy(NameMajorityVote, NewMajorityVote)
	RegisterStrategy(NameBestQuality, NewBestQuality)
	RegisterStrategy(NameWeightedAverage, NewWeightedAverage)
	RegisterStrategy(NameCascade, NewCascade)
}

// pick returns the model named by a param, or the candidate at index def.
func pick(strategy, param, named string, cands []Candidate, def int) (string, error) {
	if named != "" {
		for _, c := range cands {
			if c.Model == named {
				return named, nil
			}
		}
		return "", fmt.Errorf("%w: %s: %s=%s is not one of the candidates", api.ErrBadInput, strategy, param, named)
	}
	if def < len(cands) {
		return cands[def].Model, nil
	}
	return "", fmt.Errorf("%w: %s needs at least %d candidates (got %d) or %s=", api.ErrBadInput, strategy, def+1, len(cands), param)
}

// launchAll launches every candidate now, once each.
func launchAll(cands []Candidate) []Launch {
	seen := map[string]bool{}
	var ls []Launch
	for _, c := range cands {
		if !seen[c.Model] {
			seen[c.Model] = true
			ls = append(ls, Launch{Model: c.Model})
		}
	}
	return ls
}

// failAll is the decision when every call failed.
func failAll(name string, p *Progress) Decision {
	if err := p.LastError(); err != nil {
		return Fail(fmt.Errorf("%s: every call failed, last: %w", name, err))
	}
	return Fail(fmt.Errorf("%w: %s: no result", api.ErrInternal, name))
}
