package lab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/manta-ml/manta/actors/strategy"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/latency"
)

// TraceRequest is one request of a recorded trace with its label: what
// each model answered and how long it took (e.g. from the results stream,
// joined with the labels given to manta:feedback). Replayed, every trial
// sees exactly these answers and times (every call of a model on the
// request, hedges included, takes the recorded time).
type TraceRequest struct {
	// Label is the true class (0 or 1), as sent with the feedback.
	Label  int                  `json:"label"`
	Models map[string]TraceCall `json:"models"`
}

// TraceCall is one model's recorded answer to a trace request.
type TraceCall struct {
	LatencyMS float64 `json:"latency_ms"`
	// Output is the model's answer ({"label": …} or {"prediction": P(1)},
	// as the simulated models answer); absent with Error.
	Output json.RawMessage `json:"output,omitempty"`
	// Error is the error code or text when the call failed.
	Error string `json:"error,omitempty"`
}

// MaxTraceRequests bounds a trace.
const MaxTraceRequests = 10_000_000

// ReadTrace reads a trace: one TraceRequest per line (JSON Lines; blank
// lines skipped). A line that does not parse, a label other than 0 or 1, a
// request with no model or a call with neither output nor error is an
// error naming the line.
func ReadTrace(r io.Reader) ([]TraceRequest, error) {
	var out []TraceRequest
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var tr TraceRequest
		if err := json.Unmarshal(line, &tr); err != nil {
			return nil, fmt.Errorf("lab: trace line %d: %v", n, err)
		}
		if tr.Label != 0 && tr.Label != 1 {
			return nil, fmt.Errorf("lab: trace line %d: label %d, want 0 or 1", n, tr.Label)
		}
		if len(tr.Models) == 0 {
			return nil, fmt.Errorf("lab: trace line %d: no models", n)
		}
		for name, c := range tr.Models {
			if name == "" || c.LatencyMS < 0 || math.IsNaN(c.LatencyMS) || math.IsInf(c.LatencyMS, 0) || (len(c.Output) == 0 && c.Error == "") {
				return nil, fmt.Errorf("lab: trace line %d: model %q: want a name, a latency_ms >= 0 and an output or an error", n, name)
			}
		}
		if len(out) == MaxTraceRequests {
			return nil, fmt.Errorf("lab: trace: more than %d requests", MaxTraceRequests)
		}
		out = append(out, tr)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("lab: trace: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("lab: trace: no requests")
	}
	return out, nil
}

// traceModels returns the models of a trace, sorted, each with its
// latency stats and its live quality over the trace's labels: the share
// of its answers whose label is right (what the model actor would report
// once the labels joined).
func traceModels(trace []TraceRequest) ([]Model, map[string]strategy.Latency) {
	type acc struct {
		lats           []time.Duration
		right, answers int
		errs           int
	}
	by := map[string]*acc{}
	for _, tr := range trace {
		for name, c := range tr.Models {
			a := by[name]
			if a == nil {
				a = &acc{}
				by[name] = a
			}
			a.lats = append(a.lats, time.Duration(c.LatencyMS*float64(time.Millisecond)))
			if c.Error != "" {
				a.errs++
				continue
			}
			if l, ok := labelOf(c.Output); ok {
				a.answers++
				if l == tr.Label {
					a.right++
				}
			}
		}
	}
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	sort.Strings(names)
	models := make([]Model, 0, len(names))
	stats := map[string]strategy.Latency{}
	for _, n := range names {
		a := by[n]
		sort.Slice(a.lats, func(i, j int) bool { return a.lats[i] < a.lats[j] })
		st := strategy.Latency{P50: latency.Quantile(a.lats, 0.5), P95: latency.Quantile(a.lats, 0.95), P99: latency.Quantile(a.lats, 0.99), Count: int64(len(a.lats))}
		stats[n] = st
		m := Model{Name: n, Version: "1", Latency: Latency{Dist: DistLogNormal, Median: max(st.P50, time.Microsecond)},
			FailRate: float64(a.errs) / float64(len(a.lats))}
		if a.answers > 0 {
			m.Accuracy = float64(a.right) / float64(a.answers)
		} else {
			m.NoQuality = true
		}
		models = append(models, m)
	}
	return models, stats
}

// traceCall is the recorded call of model name on request i.
func (s *simulator) traceCall(name string, i int) (time.Duration, []byte, error) {
	c, ok := s.cfg.Trace[i].Models[name]
	if !ok {
		return 0, nil, fmt.Errorf("%s: %w: not in the trace for request %d", name, api.ErrInternal, i)
	}
	lat := time.Duration(c.LatencyMS * float64(time.Millisecond))
	if c.Error != "" {
		return lat, nil, fmt.Errorf("%s: %s", name, c.Error)
	}
	return lat, c.Output, nil
}
