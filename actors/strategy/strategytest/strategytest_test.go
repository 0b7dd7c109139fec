package strategytest_test

import (
	"testing"

	"github.com/manta-ml/manta/actors/strategy"
	"github.com/manta-ml/manta/actors/strategy/strategytest"
)

func TestBuiltins(t *testing.T) {
	builtins := map[string][]map[string]string{
		strategy.NameDeadlineFallback: {nil, {"fallback_at": "5ms"}, {"smart": "m1", "fast": "m0"}},
		strategy.NameHedged:           {nil, {"delay": "2ms", "max": "3"}, {"model": "m0", "at": "p50", "max": "2"}, {"max": "0"}},
		strategy.NameFirstSuccess:     {nil},
		strategy.NameMajorityVote:     {nil, {"k": "1"}, {"key": "label"}, {"strict": "true"}},
		strategy.NameBestQuality:      {nil, {"by": "confidence"}},
		strategy.NameWeightedAverage:  {nil, {"weights": "m0:2,m1:1,m2:0.5"}, {"min": "2"}},
		strategy.NameCascade:          {nil, {"threshold": "0.95"}, {"fast": "m1", "slow": "m0", "need": "1ms"}},
	}
	for name, paramSets := range builtins {
		f, ok := strategy.Lookup(name)
		if !ok {
			t.Fatalf("%s not registered", name)
		}
		for _, params := range paramSets {
			t.Run(name+"/"+label(params), func(t *testing.T) {
				strategytest.Run(t, f, strategytest.WithParams(params))
			})
		}
	}
}

func label(p map[string]string) string {
	if len(p) == 0 {
		return "defaults"
	}
	s := ""
	for _, k := range []string{"smart", "fast", "slow", "model", "fallback_at", "delay", "at", "max", "k", "key", "strict", "by", "weights", "min", "threshold", "need"} {
		if v, ok := p[k]; ok {
			if s != "" {
				s += ","
			}
			s += k + "=" + v
		}
	}
	return s
}

// The strategy of the strategy package's documentation passes too.
type quick struct{}

func (quick) Name() string { return "quick" }

func (quick) Start(req *strategy.Request, cands []strategy.Candidate) strategy.Plan {
	return strategy.Plan{Launches: []strategy.Launch{{Model: cands[0].Model}}}
}

func (quick) OnEvent(ev strategy.Event, p *strategy.Progress) strategy.Decision {
	if ev.Kind == strategy.EventResult {
		if ev.Result.OK() {
			return strategy.Answer(ev.Result)
		}
		return strategy.Fail(ev.Result.Err)
	}
	return strategy.Wait()
}

func TestDocExample(t *testing.T) {
	strategytest.Run(t, func(map[string]string) (strategy.Strategy, error) { return quick{}, nil })
}
