package lab

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/manta-ml/manta/actors/strategy"
)

// ParseFlags builds a Config from `manta lab` arguments:
//
//	-scenario NAME   a named config: all (default), tail, fallback, ensemble
//	-seed N          seed of the synthetic trace (default 1)
//	-requests N      requests per trial (default 20000)
//	-deadline D      deadline of every request (default: the scenario's)
//	-trial SPEC      replace the scenario's trials (repeatable)
//	-add SPEC        add a trial to the scenario's (repeatable)
//	-trace FILE      replay a recorded trace with labels (ReadTrace) instead
//	                 of a scenario: its models, answers and times; the
//	                 trials come from -trial/-add
//
// A SPEC is [label=]strategy:model,model[?param=value&param=value], e.g.
// "hedged:svc?delay=12ms&max=2" or "fb=deadline-fallback:smart,fast". The
// config is validated. -h gives flag.ErrHelp after writing the usage to
// output.
func ParseFlags(args []string, output io.Writer) (Config, error) {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(output)
	var (
		scenario = fs.String("scenario", "all", "named config: "+strings.Join(Scenarios(), ", "))
		seed     = fs.Uint64("seed", 1, "seed of the synthetic trace")
		requests = fs.Int("requests", 20000, "requests per trial")
		deadline = fs.Duration("deadline", 0, "deadline of every request (default: the scenario's)")
		trace    = fs.String("trace", "", "replay this trace (JSON Lines of {label, models: {name: {latency_ms, output|error}}}) instead of a scenario; needs -trial")
		trials   specs
		adds     specs
	)
	fs.Var(&trials, "trial", "replace the scenario's trials: [label=]strategy:model,model[?k=v&k=v] (repeatable)")
	fs.Var(&adds, "add", "add a trial to the scenario's (repeatable, same form as -trial)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: manta lab [flags]\n\nCompares speculative strategies on simulated models with a virtual clock.\nStrategies: %s\n\n", strings.Join(strategy.Strategies(), ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("lab: unexpected arguments %q", fs.Args())
	}
	cfg, err := Scenario(*scenario)
	if err != nil {
		return Config{}, fmt.Errorf("lab: %w", err)
	}
	if *trace != "" {
		// A recorded trace with labels: its models and answers replace
		// the scenario's; the trials come from -trial and -add.
		f, err := os.Open(*trace)
		if err != nil {
			return Config{}, fmt.Errorf("lab: %w", err)
		}
		tr, err := ReadTrace(f)
		f.Close()
		if err != nil {
			return Config{}, err
		}
		if len(trials)+len(adds) == 0 {
			return Config{}, fmt.Errorf("lab: -trace needs the trials to run (-trial strategy:model,model)")
		}
		cfg = Config{Seed: *seed, Deadline: cfg.Deadline, Trace: tr}
		if *deadline > 0 {
			cfg.Deadline = *deadline
		}
		cfg.Trials = append(append(cfg.Trials, trials...), adds...)
		cfg.defaults()
		if err := cfg.Validate(); err != nil {
			return Config{}, fmt.Errorf("lab: %w", err)
		}
		return cfg, nil
	}
	cfg.Seed = *seed
	cfg.Requests = *requests
	if *deadline > 0 {
		cfg.Deadline = *deadline
		for i := range cfg.Trials {
			cfg.Trials[i].Deadline = 0
		}
	}
	if len(trials) > 0 {
		cfg.Trials = nil
	}
	cfg.Trials = append(cfg.Trials, trials...)
	cfg.Trials = append(cfg.Trials, adds...)
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("lab: %w", err)
	}
	return cfg, nil
}

type specs []Trial

func (s *specs) String() string { return fmt.Sprint(*s) }

func (s *specs) Set(v string) error {
	t, err := ParseTrial(v)
	if err != nil {
		return err
	}
	*s = append(*s, t)
	return nil
}

// ParseTrial parses [label=]strategy:model,model[?param=value&param=value].
func ParseTrial(spec string) (Trial, error) {
	var t Trial
	rest := spec
	if i := strings.IndexAny(rest, "=:?"); i >= 0 && rest[i] == '=' {
		t.Label, rest = rest[:i], rest[i+1:]
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	name, models, _ := strings.Cut(rest, ":")
	t.Strategy = strings.TrimSpace(name)
	for _, m := range strings.Split(models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			t.Models = append(t.Models, m)
		}
	}
	if hasQuery {
		q, err := url.ParseQuery(query)
		if err != nil {
			return Trial{}, fmt.Errorf("trial %q: params: %w", spec, err)
		}
		t.Params = map[string]string{}
		for k, vs := range q {
			t.Params[k] = vs[len(vs)-1]
		}
	}
	if t.Strategy == "" || len(t.Models) == 0 {
		return Trial{}, fmt.Errorf("trial %q: want [label=]strategy:model,model[?param=value&...]", spec)
	}
	return t, nil
}
