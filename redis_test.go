package manta_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/manta-ml/manta/internal/testenv"
)

// Two `manta serve --redis` processes consume one request stream; one is
// killed with SIGKILL mid-run. Every entry is answered (after reclaim by the
// survivor), duplicates are counted, none is missing, nothing goes dead and
// nothing stays pending.
func TestRedisMemberKilledNothingLost(t *testing.T) {
	testenv.SkipShort(t, "multi-process test")
	rd := testenv.StartRedis(t)
	root := t.TempDir()
	const models = 100
	for i := 0; i < models; i++ {
		mustLinear(t, root, fmt.Sprintf("s%03d", i), "1", []float64{float64(i)}, 1)
	}
	args := []string{"--store", root, "--redis", rd.URL(0), "--redis-min-idle", "2s", "--redis-inflight", "64"}
	a := startServe(t, append(args, "--member", "a")...)
	b := startServe(t, append(args, "--member", "b")...)

	ctx := context.Background()
	opt, err := redis.ParseURL(rd.URL(0))
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	const n = 20000
	for start := 0; start < n; start += 1000 {
		pipe := rc.Pipeline()
		for i := start; i < start+1000; i++ {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: "manta:requests", Values: map[string]any{
				"model": fmt.Sprintf("s%03d", i%models), "id": strconv.Itoa(i), "payload": `{"features":[2]}`,
			}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]int{}
	servedBy := map[string]int{}
	bad := 0
	last := "0"
	killed := false
	deadline := time.Now().Add(3 * time.Minute)
	for len(seen) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d entries answered", len(seen), n)
		}
		streams, err := rc.XRead(ctx, &redis.XReadArgs{Streams: []string{"manta:results", last}, Count: 1000, Block: time.Second}).Result()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range streams[0].Messages {
			last = msg.ID
			id, _ := msg.Values["id"].(string)
			seen[id]++
			servedBy[fmt.Sprint(msg.Values["served_by"])]++
			i, _ := strconv.Atoi(id)
			want := fmt.Sprintf(`{"prediction":%d}`, 2*(i%models)+1)
			if msg.Values["error"] != "" || msg.Values["output"] != want {
				bad++
				if bad < 5 {
					t.Errorf("entry %s: output %v error %v, want %s", id, msg.Values["output"], msg.Values["error"], want)
				}
			}
		}
		if !killed && len(seen) > n/5 {
			if err := a.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
			t.Logf("killed member a after %d results", len(seen))
		}
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	dead, _ := rc.XLen(ctx, "manta:dead").Result()
	t.Logf("%d entries answered, %d duplicates, served by %v, dead %d", len(seen), dups, servedBy, dead)
	if bad > 0 || dead != 0 {
		t.Fatalf("%d wrong results, %d dead letters", bad, dead)
	}
	waitFor(t, 30*time.Second, func() bool {
		p, err := rc.XPending(ctx, "manta:requests", "manta").Result()
		return err == nil && p.Count == 0
	}, "an empty pending list")
	// the survivor's /metrics shows the ingestion
	resp, err := http.Get("http://" + b.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"manta_stream_results_total", `manta_stream_pending_entries{group="manta",stream="manta:requests"} 0`, "manta_stream_lag_entries"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
