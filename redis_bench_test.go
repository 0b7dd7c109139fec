package manta_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/router"
)

// BenchmarkRedisEndToEnd: entries/s from a request stream through the
// router, the SDK and the model actors to a trivial linear model and back
// to a result stream, against a raw go-redis loop (XREADGROUP, XADD result,
// XACK, no model) on the same server in the same run. Best of 3 rounds each.
//
//	go test -run '^$' -bench RedisEndToEnd -benchtime 50000x .
func BenchmarkRedisEndToEnd(b *testing.B) {
	rd := testenv.StartRedis(b)
	opt, _ := redis.ParseURL(rd.URL(0))
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	root := b.TempDir()
	const models = 100
	for i := 0; i < models; i++ {
		mustLinear(b, root, fmt.Sprintf("m-%d", i), "1", []float64{1, 2}, 0)
	}
	c := startMember(b, root, nil)
	n := max(b.N, 2000)
	produce := func(stream string) {
		for lo := 0; lo < n; lo += 500 {
			pipe := rdb.Pipeline()
			for k := lo; k < min(lo+500, n); k++ {
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{
					"model": fmt.Sprintf("m-%d", k%models), "id": "r-" + strconv.Itoa(k), "payload": `{"features":[1,1.5]}`}})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	raw := func(round int) float64 {
		req, res := "raw:req:"+strconv.Itoa(round), "raw:res:"+strconv.Itoa(round)
		if err := rdb.XGroupCreateMkStream(ctx, req, "g", "0").Err(); err != nil {
			b.Fatal(err)
		}
		produce(req)
		start := time.Now()
		for done := 0; done < n; {
			streams, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "raw", Streams: []string{req, ">"}, Count: 256, Block: time.Second}).Result()
			if err != nil && err != redis.Nil {
				b.Fatal(err)
			}
			for _, s := range streams {
				pipe := rdb.Pipeline()
				ids := make([]string, 0, len(s.Messages))
				for _, m := range s.Messages {
					pipe.XAdd(ctx, &redis.XAddArgs{Stream: res, Values: []any{"id", m.Values["id"], "model", m.Values["model"], "version", "",
						"output", "", "error", "", "latency_us", "0", "served_by", "raw"}})
					ids = append(ids, m.ID)
				}
				pipe.XAck(ctx, req, "g", ids...)
				if _, err := pipe.Exec(ctx); err != nil {
					b.Fatal(err)
				}
				done += len(ids)
			}
		}
		return float64(n) / time.Since(start).Seconds()
	}
	viaManta := func(round int) float64 {
		req, res := "rt:req:"+strconv.Itoa(round), "rt:res:"+strconv.Itoa(round)
		produce(req)
		cfg := router.DefaultConfig()
		cfg.URL, cfg.Streams, cfg.ResultStream, cfg.Consumer = rd.URL(0), []string{req}, res, "bench"
		r, err := router.New(cfg, c)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		ran := make(chan error, 1)
		go func() { ran <- r.Run(ctx) }()
		if !testenv.Poll(10*time.Minute, func() bool { return r.Stats().Acked >= int64(n) }) {
			b.Fatalf("%d of %d entries acknowledged", r.Stats().Acked, n)
		}
		rate := float64(n) / time.Since(start).Seconds()
		if err := r.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		<-ran
		if got := rdb.XLen(ctx, res).Val(); got < int64(n) {
			b.Fatalf("%d results for %d entries", got, n)
		}
		return rate
	}
	b.ResetTimer()
	var bestRaw, bestManta float64
	for round := 0; round < 3; round++ {
		bestRaw = max(bestRaw, raw(round))
		bestManta = max(bestManta, viaManta(round))
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(bestRaw, "raw_entries/s")
	b.ReportMetric(bestManta, "manta_entries/s")
	b.ReportMetric(bestManta/bestRaw, "manta/raw")
}
