package router

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/manta-ml/manta/internal/testenv"
)

// BenchmarkThroughput measures entries/s end to end (requests written
// beforehand, then consumed and answered into the result stream) through the
// Router with a trivial linear Dispatcher, against a raw go-redis loop doing
// the same Redis work without a model (XREADGROUP, XADD result, XACK), in
// the same run on the same server. b.N is the number of entries of each;
// they alternate for three rounds and the best round of each counts, as
// the machine is shared. Reported: router_entries/s, raw_entries/s,
// router/raw, the CPU time per entry of this process and of redis-server
// for each, and their ratio.
func BenchmarkThroughput(b *testing.B) {
	e := newBenchEnv(b)
	n := max(b.N, 1000)
	b.ResetTimer()
	var raw, rt benchResult
	for round := range 3 {
		suffix := ":" + strconv.Itoa(round)
		raw = raw.best(e.runRaw(b, "raw:req"+suffix, "raw:res"+suffix, n))
		rt = rt.best(e.runRouter(b, "rt:req"+suffix, "rt:res"+suffix, n))
		e.rdb.Del(context.Background(), "raw:req"+suffix, "raw:res"+suffix, "rt:req"+suffix, "rt:res"+suffix)
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(raw.rate, "raw_entries/s")
	b.ReportMetric(rt.rate, "router_entries/s")
	b.ReportMetric(rt.rate/raw.rate, "router/raw")
	b.ReportMetric(raw.cpu, "raw_go_cpu_us/entry")
	b.ReportMetric(rt.cpu, "router_go_cpu_us/entry")
	b.ReportMetric(raw.redisCPU, "raw_redis_cpu_us/entry")
	b.ReportMetric(rt.redisCPU, "router_redis_cpu_us/entry")
	// On a shared machine the CPU per entry (Go side and Redis) is steadier
	// than the rates: this is the rate ratio a CPU-bound machine would see.
	b.ReportMetric((raw.cpu+raw.redisCPU)/(rt.cpu+rt.redisCPU), "raw_cpu/router_cpu")
}

type benchResult struct {
	rate, cpu, redisCPU float64
}

func (r benchResult) best(o benchResult) benchResult {
	if o.rate > r.rate {
		return o
	}
	return r
}

// meter measures one consumer over n pre-produced entries: rate, and CPU
// microseconds per entry of this process and of the Redis server.
type meter struct {
	e         *benchEnv
	b         *testing.B
	start     time.Time
	cpu0      time.Duration
	redisCPU0 float64
}

func (e *benchEnv) startMeter(b *testing.B) *meter {
	return &meter{e: e, b: b, cpu0: processCPU(), redisCPU0: e.redisCPU(b), start: time.Now()}
}

func (m *meter) stop(n int) benchResult {
	took := time.Since(m.start)
	cpu, rcpu := processCPU(), m.e.redisCPU(m.b)
	return benchResult{
		rate:     float64(n) / took.Seconds(),
		cpu:      float64((cpu - m.cpu0).Microseconds()) / float64(n),
		redisCPU: (rcpu - m.redisCPU0) * 1e6 / float64(n),
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is the server's CPU seconds so far (INFO cpu).
func (e *benchEnv) redisCPU(b *testing.B) float64 {
	info, err := e.rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

type benchEnv struct {
	url string
	rdb *redis.Client
}

func newBenchEnv(b *testing.B) *benchEnv {
	rd := testenv.StartRedis(b).URL(0)
	opt, err := redis.ParseURL(rd)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	b.Cleanup(func() { rdb.Close() })
	return &benchEnv{url: rd, rdb: rdb}
}

// produce writes n requests to stream in pipelines of 500.
func (e *benchEnv) produce(ctx context.Context, stream string, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		for lo := 0; lo < n; lo += 500 {
			pipe := e.rdb.Pipeline()
			for k := lo; k < min(lo+500, n); k++ {
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: request(k, 1000)})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// runRaw is the baseline: one loop reading batches with XREADGROUP and
// answering each entry with a result XADD and an XACK, pipelined.
func (e *benchEnv) runRaw(b *testing.B, req, res string, n int) benchResult {
	ctx := context.Background()
	if err := e.rdb.XGroupCreateMkStream(ctx, req, "g", "0").Err(); err != nil {
		b.Fatal(err)
	}
	if err := <-e.produce(ctx, req, n); err != nil {
		b.Fatal(err)
	}
	m := e.startMeter(b)
	done := 0
	for done < n {
		streams, err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: "g", Consumer: "raw", Streams: []string{req, ">"}, Count: 256, Block: time.Second,
		}).Result()
		if err != nil && err != redis.Nil {
			b.Fatal(err)
		}
		for _, s := range streams {
			pipe := e.rdb.Pipeline()
			ids := make([]string, 0, len(s.Messages))
			for _, m := range s.Messages {
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: res, Values: []interface{}{
					FieldID, m.Values[FieldID], FieldModel, m.Values[FieldModel], FieldVersion, "",
					FieldOutput, "", FieldError, "", FieldLatencyUS, "0", FieldServedBy, "raw",
				}})
				ids = append(ids, m.ID)
			}
			pipe.XAck(ctx, req, "g", ids...)
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
			done += len(ids)
		}
	}
	return m.stop(n)
}

// runRouter is the same through a Router and the linear dispatcher.
func (e *benchEnv) runRouter(b *testing.B, req, res string, n int) benchResult {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.URL = e.url
	cfg.Streams = []string{req}
	cfg.ResultStream = res
	cfg.Consumer = "bench"
	r, err := New(cfg, &linear{})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := <-e.produce(ctx, req, n); err != nil {
		b.Fatal(err)
	}
	ran := make(chan error, 1)
	m := e.startMeter(b)
	go func() { ran <- r.Run(runCtx) }()
	if !testenv.Poll(10*time.Minute, func() bool { return r.Stats().Acked >= int64(n) }) {
		b.Fatalf("%d of %d entries acknowledged", r.Stats().Acked, n)
	}
	result := m.stop(n)
	st := r.Stats()
	b.Logf("router: %d entries, %d write batches, in-flight high-water %d", n, st.WriteBatches, st.InFlightHigh)
	if err := r.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	if err := <-ran; err != nil {
		b.Fatal(err)
	}
	if got := e.rdb.XLen(ctx, res).Val(); got < int64(n) {
		b.Fatalf("%d results for %d entries", got, n)
	}
	return result
}
