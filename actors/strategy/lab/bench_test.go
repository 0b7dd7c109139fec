package lab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/manta-ml/manta/internal/latency"
)

// BenchmarkHedgedTail measures the figure of the closing note: on a model
// whose p99 is about 10× its p50 (TailModel), hedged vs a single call, on a
// 20000-request virtual-clock trace. It reports, per hedging delay, the
// reduction of p99 and p99.9 (single ÷ hedged) and the extra calls in
// percent. Run: go test -run '^$' -bench HedgedTail ./actors/strategy/lab
func BenchmarkHedgedTail(b *testing.B) {
	delays := tailDelays()
	for _, q := range []string{"p90", "p93", "p95", "p97", "p99"} {
		b.Run("delay="+q, func(b *testing.B) {
			var f tailFigures
			for i := 0; i < b.N; i++ {
				f = measureTail(b, fmt.Sprintf("delay=%dus", delays[q].Microseconds()))
			}
			b.ReportMetric(f.p99Ratio, "p99÷")
			b.ReportMetric(f.p999Ratio, "p99.9÷")
			b.ReportMetric(100*f.extra, "%extra")
			b.ReportMetric(float64(f.hedged.P99)/1e6, "hedged-p99-ms")
		})
	}
}

type tailFigures struct {
	single, hedged      Row
	p99Ratio, p999Ratio float64
	extra               float64
}

// tailDelays are quantiles of the tail model's latency, measured as the
// model actor's stats would.
func tailDelays() map[string]time.Duration {
	ds := make([]time.Duration, 0, 20000)
	r := rand.New(rand.NewPCG(1, 99))
	for i := 0; i < 20000; i++ {
		ds = append(ds, TailModel.Latency.Sample(r))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return map[string]time.Duration{
		"p90": latency.Quantile(ds, 0.90), "p93": latency.Quantile(ds, 0.93), "p95": latency.Quantile(ds, 0.95),
		"p97": latency.Quantile(ds, 0.97), "p99": latency.Quantile(ds, 0.99),
	}
}

func measureTail(tb testing.TB, params string) tailFigures {
	tb.Helper()
	cfg, _ := Scenario("tail")
	h, err := ParseTrial("hedged=hedged:svc?" + params)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Trials = []Trial{cfg.Trials[0], h}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	f := tailFigures{single: rep.Rows[0], hedged: rep.Rows[1]}
	f.p99Ratio = float64(f.single.P99) / float64(f.hedged.P99)
	f.p999Ratio = float64(f.single.P999) / float64(f.hedged.P999)
	f.extra = f.hedged.ExtraLoad()
	return f
}
