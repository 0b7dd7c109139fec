package strategy_test

import (
	"fmt"
	"slices"
	"time"

	"github.com/manta-ml/manta/actors/strategy"
)

// A driver (a collector actor, the lab) runs a Session: start it, perform
// its actions, feed it results and timer ticks.
func ExampleSession() {
	s, err := strategy.New("deadline-fallback", map[string]string{"smart": "ensemble", "fast": "linear"})
	if err != nil {
		panic(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	req := &strategy.Request{ID: "r1", Payload: []byte(`{"features":[1,2]}`), Deadline: t0.Add(30 * time.Millisecond)}
	se := strategy.NewSession(s, req, []strategy.Candidate{{Model: "ensemble"}, {Model: "linear"}})

	show := func(acts []strategy.Action) {
		for _, a := range acts {
			switch a.Kind {
			case strategy.ActLaunch:
				fmt.Println("launch", a.Model)
			case strategy.ActCancel:
				fmt.Println("cancel", a.Model)
			case strategy.ActWake:
				fmt.Println("wake at +", a.At.Sub(t0))
			case strategy.ActFinish:
				r := a.Response
				fmt.Printf("answer %s from %v v%v fallback=%v calls=%d\n", r.Output, r.Models, r.Versions, r.Fallback, r.Calls)
			}
		}
	}
	show(se.Start(t0))
	show(se.OnResult(t0.Add(3*time.Millisecond), strategy.Result{Model: "linear", Version: "2", Output: []byte(`{"prediction":0.1}`)}))
	show(se.OnTimer(t0.Add(30 * time.Millisecond)))
	// Output:
	// launch ensemble
	// launch linear
	// wake at + 30ms
	// cancel ensemble
	// answer {"prediction":0.1} from [linear] v[2] fallback=true calls=2
}

func ExampleRegisterStrategy() {
	// In the strategy's own package, from init:
	strategy.RegisterStrategy("example-first", strategy.NewFirstSuccess)

	// The collector builds one per request by name.
	s, err := strategy.New("example-first", nil)
	fmt.Println(s.Name(), err, slices.Contains(strategy.Strategies(), "example-first"))
	// Output:
	// first-success <nil> true
}
