package strategytest

import (
	"strings"
	"testing"

	"github.com/manta-ml/manta/actors/strategy"
)

// broken strategies the suite must catch.
type broken struct {
	name  string
	event func(ev strategy.Event, p *strategy.Progress) strategy.Decision
}

func (b *broken) Name() string { return b.name }
func (b *broken) Start(req *strategy.Request, cands []strategy.Candidate) strategy.Plan {
	var ls []strategy.Launch
	for _, c := range cands {
		ls = append(ls, strategy.Launch{Model: c.Model})
	}
	return strategy.Plan{Launches: ls}
}
func (b *broken) OnEvent(ev strategy.Event, p *strategy.Progress) strategy.Decision {
	return b.event(ev, p)
}

func TestSuiteCatchesBrokenStrategies(t *testing.T) {
	cases := []struct {
		name  string
		event func(ev strategy.Event, p *strategy.Progress) strategy.Decision
		want  string
	}{
		{"panics-on-error", func(ev strategy.Event, p *strategy.Progress) strategy.Decision {
			if ev.Kind == strategy.EventResult && ev.Result.Err != nil {
				panic("unexpected error")
			}
			if ev.Kind == strategy.EventResult {
				return strategy.Answer(ev.Result)
			}
			return strategy.Wait()
		}, "panicked"},
		{"names-a-failed-model", func(ev strategy.Event, p *strategy.Progress) strategy.Decision {
			if ev.Kind == strategy.EventResult {
				return strategy.Decision{Done: true, Output: []byte("1"), Models: []string{ev.Result.Model}, Versions: []string{"1"}}
			}
			return strategy.Wait()
		}, "gave no successful result"},
		{"launches-a-stranger", func(ev strategy.Event, p *strategy.Progress) strategy.Decision {
			return strategy.Decision{Launch: []strategy.Launch{{Model: "stranger"}}}
		}, "not a candidate"},
		{"hedge-storm", func(ev strategy.Event, p *strategy.Progress) strategy.Decision {
			return strategy.Decision{Launch: []strategy.Launch{{Model: p.Candidates[0].Model}}}
		}, "more than"},
		{"sits-on-results", func(ev strategy.Event, p *strategy.Progress) strategy.Decision {
			return strategy.Wait()
		}, "no answer with nothing left"},
		{"never-succeeds", func(ev strategy.Event, p *strategy.Progress) strategy.Decision {
			if p.Idle() || ev.Kind == strategy.EventDeadline {
				return strategy.Fail(p.LastError())
			}
			return strategy.Wait()
		}, "yet the answer is an error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := func(map[string]string) (strategy.Strategy, error) {
				return &broken{name: tc.name, event: tc.event}, nil
			}
			s := &suite{cfg: config{candidates: 3, output: func(string) []byte { return []byte(DefaultOutput) }}, factory: f}
			var all []string
			for _, sc := range s.fixed() {
				_, problems := s.run(sc)
				all = append(all, problems...)
			}
			if !strings.Contains(strings.Join(all, "\n"), tc.want) {
				t.Errorf("the suite did not report %q; it reported:\n%s", tc.want, strings.Join(all, "\n"))
			}
		})
	}
}
