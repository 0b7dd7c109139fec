package lab

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/manta-ml/manta/actors/strategy"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/latency"
)

// Run replays cfg's synthetic trace against its simulated models once per
// run (strategy), each through a strategy.Session on a virtual clock, and
// reports per run. It is deterministic: the same config gives the same
// report. Every run sees the same requests, and the n-th call of a model on a
// request takes the same time and gives the same answer in every run
// (common random numbers), so the differences are the strategies'.
// Cancelling ctx stops it between requests with ctx.Err().
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	sim := &simulator{cfg: cfg, models: map[string]*simModel{}}
	rep := &Report{Config: cfg}
	var traced map[string]strategy.Latency
	if len(cfg.Trace) > 0 {
		_, traced = traceModels(cfg.Trace)
	}
	for i := range cfg.Models {
		m := &simModel{Model: cfg.Models[i], id: modelID(cfg.Models[i].Name)}
		if st, ok := traced[m.Name]; ok {
			m.stats = st
		} else {
			m.stats = measure(m.Latency, cfg.StatsSamples, cfg.Seed, m.id)
		}
		sim.models[m.Name] = m
		rep.Models = append(rep.Models, ModelRow{Model: m.Model, Latency: m.stats})
	}
	for _, r := range cfg.Trials {
		row, err := sim.run(ctx, r)
		if err != nil {
			return nil, err
		}
		rep.Rows = append(rep.Rows, row)
	}
	return rep, nil
}

type simModel struct {
	Model
	id    uint64
	stats strategy.Latency
}

type simulator struct {
	cfg    Config
	models map[string]*simModel
}

func modelID(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// measure estimates the live stats a model actor would report.
func measure(l Latency, n int, seed, id uint64) strategy.Latency {
	r := rand.New(rand.NewPCG(seed^0x5eed, id))
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = l.Sample(r)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return strategy.Latency{P50: latency.Quantile(ds, 0.50), P95: latency.Quantile(ds, 0.95), P99: latency.Quantile(ds, 0.99), Count: int64(n)}
}

// truth is request i's true label.
func (s *simulator) truth(i int) int {
	if len(s.cfg.Trace) > 0 {
		return s.cfg.Trace[i].Label
	}
	r := rand.New(rand.NewPCG(s.cfg.Seed, uint64(i)<<1))
	if r.Float64() < s.cfg.Positive {
		return 1
	}
	return 0
}

// answer is model m's output on request i: the same for every call.
func (s *simulator) answer(m *simModel, i, truth int) []byte {
	r := rand.New(rand.NewPCG(s.cfg.Seed^m.id, uint64(i)<<1|1))
	label, conf := truth, 0.0
	if r.Float64() < m.Accuracy {
		conf = 0.55 + 0.45*math.Sqrt(r.Float64())
	} else {
		label = 1 - truth
		conf = 0.5 + 0.35*r.Float64()
	}
	p1 := conf
	if label == 0 {
		p1 = 1 - conf
	}
	c := strconv.FormatFloat(conf, 'f', 4, 64)
	p := strconv.FormatFloat(p1, 'f', 4, 64)
	q := strconv.FormatFloat(1-p1, 'f', 4, 64)
	return []byte(`{"label":` + strconv.Itoa(label) + `,"prediction":` + p + `,"confidence":` + c + `,"probabilities":[` + q + `,` + p + `]}`)
}

// call is the k-th call of model m on request i: its latency and error.
func (s *simulator) call(m *simModel, i, k int) (time.Duration, error) {
	r := rand.New(rand.NewPCG(s.cfg.Seed^m.id^0xca11, uint64(i)<<8|uint64(k&0xff)))
	lat := m.Latency.Sample(r)
	if m.FailRate > 0 && r.Float64() < m.FailRate {
		return lat, fmt.Errorf("%s: %w", m.Name, api.ErrOverloaded)
	}
	return lat, nil
}

type arrival struct {
	at     time.Time
	seq    int
	result strategy.Result
}

type arrivals []arrival

func (a arrivals) Len() int { return len(a) }
func (a arrivals) Less(i, j int) bool {
	if c := a[i].at.Compare(a[j].at); c != 0 {
		return c < 0
	}
	return a[i].seq < a[j].seq
}
func (a arrivals) Swap(i, j int) { a[i], a[j] = a[j], a[i] }
func (a *arrivals) Push(x any)   { *a = append(*a, x.(arrival)) }
func (a *arrivals) Pop() any {
	old := *a
	x := old[len(old)-1]
	*a = old[:len(old)-1]
	return x
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (s *simulator) run(ctx context.Context, r Trial) (Row, error) {
	deadline := r.Deadline
	if deadline == 0 {
		deadline = s.cfg.Deadline
	}
	cands := make([]strategy.Candidate, len(r.Models))
	for i, name := range r.Models {
		m := s.models[name]
		cands[i] = strategy.Candidate{Model: name, Version: m.Version, Latency: m.stats,
			Quality: m.Accuracy, HasQuality: !m.NoQuality, HigherIsBetter: true}
		if len(s.cfg.Trace) > 0 && !m.NoQuality {
			// replayed: the accuracy over the trace's labels is the
			// model's live quality, as the SDK hands it to strategies
			cands[i].LiveQuality, cands[i].QualityMeasure = true, "accuracy"
		}
	}
	stats := strategy.NewStats()
	lat := make([]time.Duration, 0, s.cfg.Requests)
	var correct, answered int
	var confSum float64
	for i := 0; i < s.cfg.Requests; i++ {
		if i%1024 == 0 && ctx.Err() != nil {
			return Row{}, ctx.Err()
		}
		st, err := strategy.New(r.Strategy, r.Params)
		if err != nil {
			return Row{}, fmt.Errorf("lab: run %s: %w", r.Name(), err)
		}
		truth := s.truth(i)
		// Every request starts at the same virtual instant: requests are
		// independent (the lab models no queueing), so only offsets count.
		start := epoch
		req := &strategy.Request{ID: strconv.Itoa(i), Payload: []byte(`{"features":[]}`),
			ContentType: "application/json", Deadline: start.Add(deadline), Params: r.Params}
		resp := s.request(strategy.NewSession(st, req, cands), start, i, truth)
		stats.Record(resp)
		lat = append(lat, resp.Elapsed())
		if resp.Err == nil {
			answered++
			confSum += resp.Confidence
			if label, ok := labelOf(resp.Output); ok && label == truth {
				correct++
			}
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	st := stats.Get(r.Strategy)
	n := float64(s.cfg.Requests)
	row := Row{
		Label: r.Name(), Strategy: r.Strategy, Models: r.Models, Params: r.Params, Deadline: deadline,
		Requests:         s.cfg.Requests,
		P50:              latency.Quantile(lat, 0.50),
		P99:              latency.Quantile(lat, 0.99),
		P999:             latency.Quantile(lat, 0.999),
		Max:              latency.Quantile(lat, 1),
		CallsPerRequest:  float64(st.Calls) / n,
		DeadlineMisses:   int(st.DeadlineExceeded),
		Errors:           int(st.Errors - st.DeadlineExceeded),
		Fallbacks:        int(st.Fallbacks),
		Hedges:           int(st.Hedges),
		Wins:             map[string]int{},
		AnsweredFraction: float64(answered) / n,
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	if len(lat) > 0 {
		row.Mean = sum / time.Duration(len(lat))
	}
	if answered > 0 {
		row.Accuracy = float64(correct) / float64(answered)
		row.Agreement = confSum / float64(answered)
	}
	for m, w := range st.Wins {
		row.Wins[m] = int(w)
	}
	return row, nil
}

// request runs one session to its answer on the virtual clock.
func (s *simulator) request(se *strategy.Session, now time.Time, i, truth int) *strategy.Response {
	var (
		queue arrivals
		seq   int
		timer time.Time
		calls = map[string]int{}
		resp  *strategy.Response
	)
	perform := func(acts []strategy.Action) {
		for _, a := range acts {
			switch a.Kind {
			case strategy.ActLaunch:
				m := s.models[a.Model]
				k := calls[a.Model]
				calls[a.Model]++
				var res strategy.Result
				if len(s.cfg.Trace) > 0 {
					lat, out, err := s.traceCall(m.Name, i)
					res = strategy.Result{Model: m.Name, Version: m.Version, Latency: lat, Err: err, Output: out}
				} else {
					lat, err := s.call(m, i, k)
					res = strategy.Result{Model: m.Name, Version: m.Version, Latency: lat, Err: err}
					if err == nil {
						res.Output = s.answer(m, i, truth)
					}
				}
				lat := res.Latency
				seq++
				heap.Push(&queue, arrival{at: now.Add(lat), seq: seq, result: res})
			case strategy.ActWake:
				timer = a.At
			case strategy.ActFinish:
				resp = a.Response
			}
		}
	}
	perform(se.Start(now))
	for resp == nil {
		switch {
		case len(queue) > 0 && (timer.IsZero() || !queue[0].at.After(timer)):
			a := heap.Pop(&queue).(arrival)
			now = a.at
			perform(se.OnResult(now, a.result))
		case !timer.IsZero():
			now, timer = timer, time.Time{}
			perform(se.OnTimer(now))
		default:
			// Cannot happen: a Session always arms a timer until it
			// answers. Guard against a bug looping forever.
			perform(se.OnDeadline(now))
		}
	}
	return resp
}

// labelOf reads the predicted label of an answer: "label", else
// "prediction" >= 0.5 (a weighted average of probabilities).
func labelOf(out []byte) (int, bool) {
	var v struct {
		Label      *float64 `json:"label"`
		Prediction *float64 `json:"prediction"`
	}
	if json.Unmarshal(out, &v) != nil {
		return 0, false
	}
	switch {
	case v.Label != nil:
		return int(*v.Label), true
	case v.Prediction != nil:
		if *v.Prediction >= 0.5 {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
