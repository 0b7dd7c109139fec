// Command fraud scores synthetic card transactions within a 30 ms budget
// with deadline-fallback: a slow ensemble, a fast linear fallback (see
// doc.go).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"sort"
	"sync"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/actors/strategy"
	"github.com/manta-ml/manta/internal/latency"
)

// options of one run.
type options struct {
	Requests    int
	Concurrency int
	// Budget is the end-to-end answer time the business asks for; the
	// request deadline is Budget minus Margin (the answer's way back).
	Budget time.Duration
	Margin time.Duration
	Seed   uint64
}

func defaults() options {
	return options{Requests: 2000, Concurrency: 16, Budget: 30 * time.Millisecond, Margin: 2 * time.Millisecond, Seed: 1}
}

// summary is what a run measured.
type summary struct {
	Requests   int
	Answered   map[string]int // "model vVERSION" -> answers
	Fallbacks  int
	Errors     map[string]int // error code -> count
	OverBudget int
	Latencies  []time.Duration
	Correct    map[string]int // "model vVERSION" -> answers matching the truth
	Stats      manta.StrategyStats
}

func main() {
	o := defaults()
	flag.IntVar(&o.Requests, "requests", o.Requests, "transactions to score")
	flag.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "concurrent callers")
	flag.DurationVar(&o.Budget, "budget", o.Budget, "answer within this time")
	flag.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the transactions and the ensemble's latency")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	registerEnsemble(o.Seed)
	s, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fraud:", err)
		os.Exit(1)
	}
	s.print(os.Stdout, o)
}

// run starts an embedded member over a temporary store holding both models
// and scores o.Requests transactions with deadline-fallback. The ensemble's
// Go function must be registered (registerEnsemble).
func run(ctx context.Context, o options) (*summary, error) {
	if o.Requests <= 0 || o.Concurrency <= 0 || o.Budget <= o.Margin {
		return nil, fmt.Errorf("bad options %+v", o)
	}
	root, err := os.MkdirTemp("", "manta-fraud-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	if err := writeModels(root); err != nil {
		return nil, err
	}
	cfg := manta.DefaultConfig()
	cfg.Store = root
	cfg.FetchDir = root + "/.fetch"
	cfg.BudgetBytes = 256 << 20
	cfg.MaxInflightBatches = 32 // the ensemble's time is waiting, not CPU
	c, err := manta.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())

	models := []string{ensembleID, fallbackID}
	deadline := o.Budget - o.Margin
	score := func(x []float64) (*manta.Result, time.Duration, error) {
		payload, _ := json.Marshal(map[string][]float64{"features": x})
		start := time.Now()
		res, err := c.Speculate(ctx, strategy.NameDeadlineFallback, models, payload, manta.WithTimeout(deadline)).Get(ctx)
		return res, time.Since(start), err
	}
	// Warm up: load both models (not counted).
	warm := rand.New(rand.NewPCG(o.Seed, 99))
	for range 3 {
		x, _ := transaction(warm)
		payload, _ := json.Marshal(map[string][]float64{"features": x})
		if _, err := c.Speculate(ctx, strategy.NameDeadlineFallback, models, payload, manta.WithTimeout(5*time.Second)).Get(ctx); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	before := stats(c)

	s := &summary{Requests: o.Requests, Answered: map[string]int{}, Errors: map[string]int{}, Correct: map[string]int{}}
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r := rand.New(rand.NewPCG(o.Seed, uint64(i)))
				x, fraud := transaction(r)
				res, took, err := score(x)
				mu.Lock()
				s.Latencies = append(s.Latencies, took)
				if took > o.Budget {
					s.OverBudget++
				}
				if err != nil {
					s.Errors[errCode(err)]++
				} else {
					who := res.Model + " v" + res.Version
					s.Answered[who]++
					if res.Fallback {
						s.Fallbacks++
					}
					var out struct{ Prediction float64 }
					if json.Unmarshal(res.Output, &out) == nil && (out.Prediction >= 0.5) == fraud {
						s.Correct[who]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < o.Requests && ctx.Err() == nil; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Late results of this run: the collectors that answered by fallback
	// wait for the ensemble's answer up to their deadline plus a grace.
	s.Stats = stats(c)
	s.Stats.Requests -= before.Requests
	s.Stats.Calls -= before.Calls
	s.Stats.Late -= before.Late
	return s, nil
}

func stats(c *manta.Client) manta.StrategyStats {
	for _, st := range c.SpeculationStats() {
		if st.Strategy == strategy.NameDeadlineFallback {
			return st
		}
	}
	return manta.StrategyStats{}
}

func errCode(err error) string {
	for _, e := range []error{manta.ErrDeadlineExceeded, manta.ErrOverloaded, manta.ErrBadInput, manta.ErrInternal} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return err.Error()
}

func (s *summary) print(w io.Writer, o options) {
	fmt.Fprintf(w, "fraud: %d transactions, %d concurrent callers, budget %v (deadline %v), deadline-fallback(smart=%s, fast=%s)\n\n",
		s.Requests, o.Concurrency, o.Budget, o.Budget-o.Margin, ensembleID, fallbackID)
	names := make([]string, 0, len(s.Answered))
	for n := range s.Answered {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k := s.Answered[n]
		fmt.Fprintf(w, "  answered by %-20s %6d  (%5.1f%%)  correct %5.1f%%\n", n, k, pct(k, s.Requests), pct(s.Correct[n], k))
	}
	for code, k := range s.Errors {
		fmt.Fprintf(w, "  failed: %-25s %6d  (%5.1f%%)\n", code, k, pct(k, s.Requests))
	}
	sort.Slice(s.Latencies, func(i, j int) bool { return s.Latencies[i] < s.Latencies[j] })
	q := func(p float64) time.Duration { return latency.Quantile(s.Latencies, p).Round(10 * time.Microsecond) }
	fmt.Fprintf(w, "\n  latency p50 %v  p99 %v  p99.9 %v  max %v\n", q(0.50), q(0.99), q(0.999), q(1))
	fmt.Fprintf(w, "  over the %v budget: %d (%.2f%%)\n", o.Budget, s.OverBudget, pct(s.OverBudget, s.Requests))
	fmt.Fprintf(w, "  fallbacks %d, model calls per request %.2f, late ensemble results dropped so far %d\n",
		s.Fallbacks, float64(s.Stats.Calls)/float64(max(1, s.Stats.Requests)), s.Stats.Late)
}

func pct(k, n int) float64 {
	if n == 0 {
		return 0
	}
	return 100 * float64(k) / float64(n)
}
