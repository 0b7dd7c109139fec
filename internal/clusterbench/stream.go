package clusterbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

const requestStream = "manta:requests"

// result is one entry of a results stream.
type result struct {
	id, model, version, output, err, servedBy string
	at                                        time.Time // when it was read
}

// streamClient sends requests to manta:requests with reply_to its own
// stream and hands each result to the callback registered for its id.
type streamClient struct {
	rdb   *redis.Client
	reply string

	mu      sync.Mutex
	pending map[string]func(result)
	extra   atomic.Int64 // results for no registered id (duplicates, late)
	readErr atomic.Value // last read error (string)
	done    chan struct{}
	cancel  context.CancelFunc
}

func newStreamClient(ctx context.Context, rdb *redis.Client, reply string) *streamClient {
	ctx, cancel := context.WithCancel(ctx)
	s := &streamClient{rdb: rdb, reply: reply, pending: map[string]func(result){}, done: make(chan struct{}), cancel: cancel}
	go s.read(ctx)
	return s
}

func (s *streamClient) close() {
	s.cancel()
	<-s.done
}

func (s *streamClient) register(id string, cb func(result)) {
	s.mu.Lock()
	s.pending[id] = cb
	s.mu.Unlock()
}

func (s *streamClient) unregister(id string) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

func (s *streamClient) read(ctx context.Context) {
	defer close(s.done)
	last := "0"
	for ctx.Err() == nil {
		res, err := s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{s.reply, last}, Count: 2000, Block: 500 * time.Millisecond}).Result()
		if err != nil {
			if errors.Is(err, redis.Nil) || ctx.Err() != nil {
				continue
			}
			s.readErr.Store(err.Error())
			_ = sleep(ctx, 100*time.Millisecond)
			continue
		}
		now := time.Now()
		for _, st := range res {
			for _, m := range st.Messages {
				last = m.ID
				r := result{at: now}
				r.id, _ = m.Values["id"].(string)
				r.model, _ = m.Values["model"].(string)
				r.version, _ = m.Values["version"].(string)
				r.output, _ = m.Values["output"].(string)
				r.err, _ = m.Values["error"].(string)
				r.servedBy, _ = m.Values["served_by"].(string)
				s.mu.Lock()
				cb, ok := s.pending[r.id]
				delete(s.pending, r.id)
				s.mu.Unlock()
				if !ok {
					s.extra.Add(1)
					continue
				}
				cb(r)
			}
		}
	}
}

type request struct {
	id, model string
	payload   []byte
}

// send XADDs the requests in one pipeline.
func (s *streamClient) send(ctx context.Context, reqs []request) error {
	if len(reqs) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for _, r := range reqs {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: requestStream, Values: []any{
			"model", r.model, "id", r.id, "reply_to", s.reply, "payload", r.payload}})
	}
	_, err := pipe.Exec(ctx)
	if err != nil {
		return fmt.Errorf("clusterbench: XADD %s: %w", requestStream, err)
	}
	return nil
}

// The models: model j (0-based) is "m-%05d" of j+1, linear with weights
// [j%10+1, j%7+1] and bias j+1; a request's features are small integers,
// so every prediction is an exact integer in float64.
func modelWeights(j int) (k1, k2, bias float64) {
	return float64(j%10 + 1), float64(j%7 + 1), float64(j + 1)
}

func features(seq int) (x1, x2 int) { return seq % 17, seq%5 + 1 }

func expected(j, seq int) float64 {
	k1, k2, bias := modelWeights(j)
	x1, x2 := features(seq)
	return bias + (k1*float64(x1) + k2*float64(x2))
}

func payload(seq int) []byte {
	x1, x2 := features(seq)
	return []byte(`{"features":[` + strconv.Itoa(x1) + `,` + strconv.Itoa(x2) + `]}`)
}

// check compares an answer to the expected prediction: "" when exact, else
// what is wrong.
func check(model, version, output string, want float64, wantModel string) string {
	if model != wantModel {
		return fmt.Sprintf("answered by model %q, want %q", model, wantModel)
	}
	if version != "1" {
		return fmt.Sprintf("version %q, want 1", version)
	}
	var out struct {
		Prediction *float64 `json:"prediction"`
	}
	if err := json.Unmarshal([]byte(output), &out); err != nil || out.Prediction == nil {
		return fmt.Sprintf("output %q: no prediction", output)
	}
	if *out.Prediction != want {
		return fmt.Sprintf("prediction %v, want %v (output %q)", *out.Prediction, want, output)
	}
	return ""
}

// pass sends RequestsPerModel requests per model, round-robin over the
// models, at most Concurrency outstanding, and checks every answer.
func (b *bench) pass(ctx context.Context, name string) (p Pass, err error) {
	total := b.cfg.Models * b.cfg.RequestsPerModel
	p = Pass{Name: name, Requests: total, ErrorCodes: map[string]int{}}
	sc := newStreamClient(ctx, b.rdb, "clusterbench:"+name)
	defer sc.close()

	var (
		mu       sync.Mutex
		inflight = map[string]time.Time{}
		lats     = make([]time.Duration, 0, total)
		last     time.Time
		sem      = make(chan struct{}, b.cfg.Concurrency)
	)
	sample := func(s string) {
		if len(p.Samples) < 5 {
			p.Samples = append(p.Samples, s)
		}
	}
	start := time.Now()
	onResult := func(seq int, r result) {
		mu.Lock()
		defer mu.Unlock()
		sent, ok := inflight[r.id]
		if !ok {
			p.Extra++ // given up already
			return
		}
		delete(inflight, r.id)
		<-sem
		last = r.at
		lats = append(lats, r.at.Sub(sent))
		j := seq % b.cfg.Models
		if r.err != "" {
			p.Errors++
			p.ErrorCodes[code(r.err)]++
			sample(fmt.Sprintf("%s %s: %s (served_by %q)", r.id, r.model, r.err, r.servedBy))
			return
		}
		if w := check(r.model, r.version, r.output, expected(j, seq), b.ids[j]); w != "" {
			p.Wrong++
			sample(fmt.Sprintf("%s %s: %s (served_by %q)", r.id, b.ids[j], w, r.servedBy))
			return
		}
		p.Answered++
	}
	sweep := func(now time.Time) {
		mu.Lock()
		defer mu.Unlock()
		for id, sent := range inflight {
			if now.Sub(sent) > b.cfg.RequestTimeout {
				delete(inflight, id)
				sc.unregister(id)
				<-sem
				p.Missing++
				sample(fmt.Sprintf("%s: no answer within %v", id, b.cfg.RequestTimeout))
			}
		}
	}
	progress := func() {
		mu.Lock()
		done := p.Answered + p.Errors + p.Wrong + p.Missing
		n := len(inflight)
		mu.Unlock()
		b.logf("%s pass: %d/%d answered (%d in flight, %d errors) after %v", name, done, total, n,
			p.Errors, time.Since(start).Round(time.Second))
	}

	// The sweeper and progress lines run beside the producer.
	sweepDone := make(chan struct{})
	stopSweep := make(chan struct{})
	go func() {
		defer close(sweepDone)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		lastProgress := time.Now()
		for {
			select {
			case <-stopSweep:
				return
			case now := <-tick.C:
				sweep(now)
				if now.Sub(lastProgress) >= 10*time.Second {
					lastProgress = now
					progress()
				}
			}
		}
	}()
	defer func() {
		close(stopSweep)
		<-sweepDone
	}()
	// The summary, also of a pass cut short (Requests is then what was sent).
	sent := 0
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			p.Requests = sent
		}
		p.Extra += int(sc.extra.Load())
		if last.IsZero() {
			last = time.Now()
		}
		p.Elapsed = last.Sub(start)
		if p.Elapsed > 0 {
			p.Rate = float64(p.Answered) / p.Elapsed.Seconds()
		}
		p.P50, p.P99 = percentile(lats, 0.50), percentile(lats, 0.99)
		for _, l := range lats {
			p.Max = max(p.Max, l)
		}
		if len(p.ErrorCodes) == 0 {
			p.ErrorCodes = nil
		}
		if e, ok := sc.readErr.Load().(string); ok && p.Missing > 0 {
			sample("last XREAD error: " + e)
		}
	}()

	batch := make([]request, 0, 256)
	flush := func() error {
		err := sc.send(ctx, batch)
		batch = batch[:0]
		return err
	}
	for seq := 0; seq < total; seq++ {
		select {
		case sem <- struct{}{}:
		default:
			if err := flush(); err != nil {
				return p, err
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return p, ctx.Err()
			}
		}
		j := seq % b.cfg.Models
		id := name + "-" + strconv.Itoa(seq)
		mu.Lock()
		inflight[id] = time.Now()
		mu.Unlock()
		sc.register(id, func(r result) { onResult(seq, r) })
		batch = append(batch, request{id: id, model: b.ids[j], payload: payload(seq)})
		sent++
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return p, err
			}
		}
	}
	if err := flush(); err != nil {
		return p, err
	}
	// Every request answered or given up (RequestTimeout bounds this).
	for {
		mu.Lock()
		n := len(inflight)
		mu.Unlock()
		if n == 0 {
			break
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return p, err
		}
	}
	// A moment for duplicates to show, then count them.
	_ = sleep(ctx, 200*time.Millisecond)
	progress()
	return p, nil
}

// idIndex is j of model id "m-…" (its number minus one).
func idIndex(id string) int {
	i := strings.LastIndexByte(id, '-')
	n, _ := strconv.Atoi(id[i+1:])
	return n - 1
}
