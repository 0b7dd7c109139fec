package router

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/redact"
	"github.com/manta-ml/manta/internal/testenv"
)

const (
	reqStream = "manta:requests"
	resStream = "manta:results"
	dead      = "manta:dead"
)

// 100,000 entries over 1,000 models: exactly one correct result each,
// nothing dead, nothing pending.
func TestHundredThousand(t *testing.T) {
	const n, models = 100_000, 1000
	e := newEnv(t)
	d := &linear{}
	cfg := e.testConfig("member-1")
	cfg.InFlight = 2048
	cfg.BatchSize = 512
	r := e.start(cfg, d)
	start := time.Now()
	e.produce(reqStream, 0, n, models)
	produced := time.Since(start)
	waitFor(t, 2*time.Minute, "100,000 results", func() bool { return e.xlen(resStream) >= n })
	took := time.Since(start)
	waitFor(t, 10*time.Second, "acknowledgements", func() bool { return r.Stats().Acked == n })

	if dups := e.checkResults(resStream, n, models); dups != 0 {
		t.Errorf("%d duplicate results without any failure", dups)
	}
	if got := e.xlen(resStream); got != n {
		t.Errorf("%d results, want %d", got, n)
	}
	if got := e.xlen(dead); got != 0 {
		t.Errorf("%d dead letters, want 0", got)
	}
	if p := e.pending(reqStream, "manta"); p != 0 {
		t.Errorf("%d entries pending at the end", p)
	}
	st := r.Stats()
	if st.Read != n || st.Results != n || st.Dead != 0 || st.InFlight != 0 || st.InFlightHigh > int64(cfg.InFlight) {
		t.Errorf("stats = %+v", st)
	}
	t.Logf("%d entries in %v (%.0f/s, race detector on: %v; producing took %v), in-flight high-water %d of %d, %d reclaimed",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), raceEnabled, produced.Round(time.Millisecond),
		st.InFlightHigh, cfg.InFlight, st.Reclaimed)
}

// Malformed entries go to the dead stream with the right reason and their
// original fields; model errors are results; the rest is unaffected.
func TestMalformedEntries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A key of another type: XADD to it fails with WRONGTYPE.
	if err := e.rdb.Set(ctx, "res:not-a-stream", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	good := func(extra ...string) map[string]interface{} {
		f := map[string]interface{}{"model": "m-1", "payload": `{"features":[1,2]}`}
		for i := 0; i+1 < len(extra); i += 2 {
			if extra[i+1] == "<del>" {
				delete(f, extra[i])
			} else {
				f[extra[i]] = extra[i+1]
			}
		}
		return f
	}
	bad := []struct {
		id     string
		fields map[string]interface{}
		reason string
	}{
		{"no-model", good("model", "<del>"), ReasonMissingModel},
		{"bad-model", good("model", "../etc/passwd"), ReasonBadModelID},
		{"upper-model", good("model", "ETA"), ReasonBadModelID},
		{"", good(), ReasonMissingID},
		{strings.Repeat("x", MaxIDBytes+1), good(), ReasonBadID},
		{"no-payload", good("payload", "<del>"), ReasonMissingPayload},
		{"big-payload", good("payload", strings.Repeat("x", 2048)), ReasonPayloadTooLarge},
		{"bad-ct", good("content_type", "a/b;;"), ReasonBadContentType},
		{"loop", good("reply_to", reqStream), ReasonBadReplyTo},
		{"to-dead", good("reply_to", dead), ReasonBadReplyTo},
		{"prefix", good("reply_to", "elsewhere"), ReasonBadReplyTo},
		{"deadline-word", good("deadline_ms", "soon"), ReasonBadDeadline},
		{"deadline-neg", good("deadline_ms", "-1"), ReasonBadDeadline},
		{"bad-strategy", good("strategy", "No Such!", "models", "m-1"), ReasonBadStrategy},
		{"no-models", good("strategy", "hedged"), ReasonMissingModels},
		{"bad-models", good("strategy", "hedged", "models", "m-1,M2"), ReasonBadModels},
		{"models-only", good("models", "m-1,m-2"), ReasonModelsNoStrategy},
		{"wrongtype", good("reply_to", "res:not-a-stream"), ReasonReplyFailed},
	}
	cfg := e.testConfig("member-1")
	cfg.MaxPayloadBytes = 1024
	cfg.ReplyToPrefix = "res:"
	cfg.ResultStream = "res:default"
	const goods = 200
	// Interleave: good, bad, good, bad, …
	for i := 0; i < goods; i++ {
		f := request(i, 10)
		if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: reqStream, Values: f}).Err(); err != nil {
			t.Fatal(err)
		}
		if i < len(bad) {
			f := bad[i].fields
			if bad[i].id != "" {
				f["id"] = bad[i].id
			}
			if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: reqStream, Values: f}).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Model errors and speculation are results, not dead letters.
	for _, f := range []map[string]interface{}{
		{"model": "missing-model", "id": "e-notfound", "payload": `{"features":[1,2]}`, "reply_to": "res:errors"},
		{"model": "m-1", "id": "e-badinput", "payload": `{"features":[1]}`, "reply_to": "res:errors"},
		{"model": "m-1", "id": "e-spec", "payload": `{"features":[1,2]}`, "strategy": "hedged", "models": "m-1,m-2", "reply_to": "res:errors"},
		{"model": "m-1", "id": "e-panic", "payload": `{"features":[1,2]}`, "reply_to": "res:errors"},
		{"model": "m-1", "id": "e-reply", "payload": `{"features":[1,2]}`, "reply_to": "res:mine"},
	} {
		if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: reqStream, Values: f}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	d := &linear{hook: func(ctx context.Context, req *api.PredictRequest) *api.PredictResponse {
		if req.RequestId == "e-panic" {
			panic("model exploded")
		}
		return nil
	}}
	r := e.start(cfg, d)
	waitFor(t, 30*time.Second, "all entries handled", func() bool {
		st := r.Stats()
		return st.Acked == int64(goods+len(bad)+5) && st.InFlight == 0
	})

	deadByID := map[string]redis.XMessage{}
	for _, m := range e.all(dead) {
		id, _ := m.Values["id"].(string)
		deadByID[id] = m
	}
	if len(deadByID) != len(bad) {
		t.Errorf("%d dead letters, want %d", len(deadByID), len(bad))
	}
	for _, b := range bad {
		m, ok := deadByID[b.id]
		if !ok {
			t.Errorf("no dead letter for %q (want %s)", clip(b.id), b.reason)
			continue
		}
		if m.Values[FieldReason] != b.reason {
			t.Errorf("%s: reason %v, want %s (detail %v)", clip(b.id), m.Values[FieldReason], b.reason, m.Values[FieldDetail])
		}
		for k, v := range b.fields {
			if m.Values[k] != v {
				t.Errorf("%s: dead letter field %s = %v, want the original %v", clip(b.id), k, m.Values[k], v)
			}
		}
		if m.Values[FieldSourceStream] != reqStream || m.Values[FieldSourceID] == "" {
			t.Errorf("%s: source %v %v", clip(b.id), m.Values[FieldSourceStream], m.Values[FieldSourceID])
		}
	}
	if dups := e.checkResults("res:default", goods, 10); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
	byID := map[string]map[string]interface{}{}
	for _, m := range e.all("res:errors") {
		byID[m.Values["id"].(string)] = m.Values
	}
	for id, want := range map[string]string{
		"e-notfound": "not_found: model missing-model not found",
		"e-badinput": "bad_input: want",
		"e-spec":     "bad_input: speculative execution not available",
		"e-panic":    "internal: dispatcher panicked: model exploded",
	} {
		if got, _ := byID[id][FieldError].(string); !strings.HasPrefix(got, want) {
			t.Errorf("%s: error %q, want %q…", id, got, want)
		}
	}
	if mine := e.all("res:mine"); len(mine) != 1 || mine[0].Values["id"] != "e-reply" || mine[0].Values["error"] != "" {
		t.Errorf("res:mine = %v", mine)
	}
	if p := e.pending(reqStream, "manta"); p != 0 {
		t.Errorf("%d pending", p)
	}
	st := r.Stats()
	if st.Dead != int64(len(bad)) || st.Results != goods+5 || st.ModelErrors != 4 {
		t.Errorf("stats = %+v", st)
	}
}

// With a Speculator, entries with a strategy go to it.
func TestSpeculator(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: reqStream, Values: map[string]interface{}{
		"id": "s1", "payload": `{"features":[2,3]}`, "strategy": "first-success", "models": "m-7,m-8", "deadline_ms": "500",
	}}).Err()
	if err != nil {
		t.Fatal(err)
	}
	e.start(e.testConfig("member-1"), speculating{&linear{}})
	waitFor(t, 10*time.Second, "the result", func() bool { return e.xlen(resStream) == 1 })
	m := e.all(resStream)[0].Values
	if m["id"] != "s1" || m["model"] != "m-7" || m["served_by"] != "first-success" ||
		m["output"] != predictLinear("m-7", [2]float64{2, 3}) || m["error"] != "" {
		t.Errorf("result = %v", m)
	}
}

// A router that dies mid-run leaves its entries pending; another one
// reclaims them: every entry is answered, duplicates are counted.
func TestReclaimAfterConsumerDies(t *testing.T) {
	const n, models = 5000, 50
	e := newEnv(t)
	e.produce(reqStream, 0, n, models)

	cfgA := e.testConfig("member-a")
	cfgA.InFlight = 256
	a := e.start(cfgA, &linear{latency: 5 * time.Millisecond})
	waitFor(t, 30*time.Second, "member-a to serve some", func() bool { return a.Stats().Results >= 500 })
	a.kill(t) // no graceful stop: its in-flight entries stay pending
	stA := a.Stats()
	pendingA := e.pending(reqStream, "manta")
	if stA.Abandoned == 0 || pendingA == 0 {
		t.Fatalf("member-a left nothing pending (stats %+v, pending %d): the test proves nothing", stA, pendingA)
	}

	cfgB := e.testConfig("member-b")
	cfgB.MinIdle = 500 * time.Millisecond
	cfgB.ReclaimInterval = 100 * time.Millisecond
	cfgB.MaxDeadline, cfgB.DefaultDeadline = 400*time.Millisecond, 400*time.Millisecond
	b := e.start(cfgB, &linear{})
	waitFor(t, time.Minute, "every entry answered and acknowledged", func() bool {
		return e.pending(reqStream, "manta") == 0 && b.Stats().Read+stA.Read >= n
	})
	dups := e.checkResults(resStream, n, models)
	stB := b.Stats()
	if stB.Reclaimed < pendingA {
		t.Errorf("member-b reclaimed %d, member-a left %d pending", stB.Reclaimed, pendingA)
	}
	if int64(dups) > stB.Redelivered {
		t.Errorf("%d duplicates but only %d redeliveries", dups, stB.Redelivered)
	}
	if got := e.xlen(dead); got != 0 {
		t.Errorf("%d dead letters", got)
	}
	t.Logf("member-a: %d results, %d abandoned (pending %d); member-b: %d read, %d reclaimed; %d duplicate results",
		stA.Results, stA.Abandoned, pendingA, stB.Read, stB.Reclaimed, dups)
}

// An entry delivered more than MaxDeliveries times is dead-lettered on
// reclaim instead of served; one below the limit is served.
func TestMaxDeliveries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.rdb.XGroupCreateMkStream(ctx, reqStream, "manta", "0").Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: reqStream, Values: request(i, 5)}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// A ghost consumer takes both and dies; r-0 has been through many
	// deliveries already (RETRYCOUNT), r-1 through one.
	res, err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "manta", Consumer: "ghost", Streams: []string{reqStream, ">"}, Count: 2, Block: -1}).Result()
	if err != nil || len(res[0].Messages) != 2 {
		t.Fatalf("ghost read: %v %v", res, err)
	}
	id0 := res[0].Messages[0].ID
	if err := e.rdb.Do(ctx, "XCLAIM", reqStream, "manta", "ghost", 0, id0, "RETRYCOUNT", 3).Err(); err != nil {
		t.Fatal(err)
	}
	cfg := e.testConfig("member-1")
	cfg.MaxDeliveries = 3
	cfg.MinIdle = 200 * time.Millisecond
	cfg.ReclaimInterval = 50 * time.Millisecond
	cfg.MaxDeadline, cfg.DefaultDeadline = 100*time.Millisecond, 100*time.Millisecond
	r := e.start(cfg, &linear{})
	waitFor(t, 10*time.Second, "both handled", func() bool { return r.Stats().Acked == 2 })
	deads := e.all(dead)
	if len(deads) != 1 || deads[0].Values["id"] != "r-0" || deads[0].Values[FieldReason] != ReasonMaxDeliveries {
		t.Errorf("dead = %v", deads)
	}
	results := e.all(resStream)
	if len(results) != 1 || results[0].Values["id"] != "r-1" {
		t.Errorf("results = %v", results)
	}
	if p := e.pending(reqStream, "manta"); p != 0 {
		t.Errorf("%d pending", p)
	}
	if st := r.Stats(); st.Reclaimed != 2 || st.Dead != 1 || st.Results != 1 || st.Redelivered != 2 {
		t.Errorf("stats = %+v", st)
	}
}

// Redis killed mid-run (AOF on, so it keeps its data): the router
// reconnects, continues, and every entry is answered.
func TestRedisKilledMidRun(t *testing.T) {
	const n, models = 3000, 30
	e := newEnv(t, testenv.WithRedisAOF())
	e.produce(reqStream, 0, n, models)
	cfg := e.testConfig("member-1")
	cfg.InFlight = 64
	cfg.MinIdle = 1500 * time.Millisecond
	cfg.ReclaimInterval = 200 * time.Millisecond
	r := e.start(cfg, &linear{latency: 2 * time.Millisecond})
	waitFor(t, 30*time.Second, "some results", func() bool { return r.Stats().Results >= n/4 })
	e.redis.Kill()
	// Stay down until the router has felt it (past go-redis's own retries).
	waitFor(t, 30*time.Second, "the router to see Redis gone", func() bool { return r.Stats().RedisErrors > 0 })
	e.redis.Restart()
	waitFor(t, 90*time.Second, "every entry answered", func() bool {
		return e.xlen(resStream) >= n && e.pending(reqStream, "manta") == 0
	})
	dups := e.checkResults(resStream, n, models)
	st := r.Stats()
	if st.RedisErrors == 0 {
		t.Errorf("no Redis errors seen: was Redis really killed? stats %+v", st)
	}
	t.Logf("after a kill -9 of Redis: %d results, %d duplicates, %d Redis errors, %d reclaimed", st.Results, dups, st.RedisErrors, st.Reclaimed)
}

// Redis restarted without persistence loses the stream and the group: the
// router recreates the group and serves what is written afterwards.
func TestRedisRestartWithoutPersistence(t *testing.T) {
	e := newEnv(t)
	cfg := e.testConfig("member-1")
	r := e.start(cfg, &linear{})
	e.produce(reqStream, 0, 100, 10)
	waitFor(t, 30*time.Second, "first results", func() bool { return e.xlen(resStream) == 100 })
	created := r.Stats().GroupsCreated

	e.redis.Restart()
	// Written after the restart, before the router has noticed: the
	// group is recreated from the start of the stream, so these count.
	e.produce(reqStream, 100, 300, 10)
	waitFor(t, 30*time.Second, "results after the restart", func() bool { return e.xlen(resStream) == 200 })
	if st := r.Stats(); st.GroupsCreated <= created {
		t.Errorf("group not recreated: %+v", st)
	}
	seen := map[string]bool{}
	for _, m := range e.all(resStream) {
		seen[m.Values["id"].(string)] = true
	}
	for _, id := range []string{"r-100", "r-299"} {
		if !seen[id] {
			t.Errorf("no result for %s", id)
		}
	}
	waitFor(t, 10*time.Second, "nothing pending", func() bool { return e.pending(reqStream, "manta") == 0 })
}

// The in-flight count never goes above the limit: the router stops
// reading when full.
func TestBackpressure(t *testing.T) {
	const n, limit = 2000, 32
	e := newEnv(t)
	e.produce(reqStream, 0, n, 10)
	d := &linear{latency: 2 * time.Millisecond}
	cfg := e.testConfig("member-1")
	cfg.InFlight = limit
	cfg.BatchSize = 100
	r := e.start(cfg, d)
	waitFor(t, time.Minute, "all results", func() bool { return r.Stats().Acked == n })
	st := r.Stats()
	if st.InFlightHigh > limit || d.maxRun.Load() > limit {
		t.Errorf("in flight up to %d (dispatcher saw %d concurrent), limit %d", st.InFlightHigh, d.maxRun.Load(), limit)
	}
	if st.InFlightHigh < limit/2 {
		t.Errorf("in-flight high-water %d: the limit %d was never approached, the test proves nothing", st.InFlightHigh, limit)
	}
	e.checkResults(resStream, n, 10)
	t.Logf("in-flight high-water %d of %d; dispatcher concurrency %d", st.InFlightHigh, limit, d.maxRun.Load())
}

// Shutdown finishes the entries in flight and acknowledges them; Close
// abandons them, but never acknowledges an entry it did not answer.
func TestShutdown(t *testing.T) {
	for _, graceful := range []bool{true, false} {
		name := map[bool]string{true: "graceful", false: "close"}[graceful]
		t.Run(name, func(t *testing.T) {
			const n = 400
			e := newEnv(t)
			e.produce(reqStream, 0, n, 10)
			cfg := e.testConfig("member-1")
			cfg.InFlight = 50
			r := e.start(cfg, &linear{latency: 20 * time.Millisecond})
			waitFor(t, 30*time.Second, "some results", func() bool { return r.Stats().Results >= 50 })
			if graceful {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if err := r.Shutdown(ctx); err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
			} else if err := r.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-r.done:
				if err != nil {
					t.Errorf("Run = %v, want nil after Shutdown/Close", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return")
			}
			st := r.Stats()
			if graceful && (st.Abandoned != 0 || st.Acked != st.Read) {
				t.Errorf("graceful shutdown left entries: %+v", st)
			}
			// Acknowledged entries = read ones not pending: each needs a result.
			pend, err := e.rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{
				Stream: reqStream, Group: "manta", Start: "-", End: "+", Count: n}).Result()
			if err != nil {
				t.Fatal(err)
			}
			isPending := map[string]bool{}
			for _, p := range pend {
				isPending[p.ID] = true
			}
			answered := map[string]bool{}
			for _, m := range e.all(resStream) {
				answered[m.Values["id"].(string)] = true
			}
			reqs := e.all(reqStream)
			for _, m := range reqs[:st.Read] { // one consumer reads in order
				if !isPending[m.ID] && !answered[m.Values["id"].(string)] {
					t.Errorf("entry %s acknowledged without a result", m.ID)
				}
			}
			if graceful && len(pend) != 0 {
				t.Errorf("%d pending after a graceful shutdown", len(pend))
			}
			t.Logf("%s: read %d, results %d, abandoned %d, pending %d", name, st.Read, st.Results, st.Abandoned, len(pend))
		})
	}
}

// A URL with an ACL user and password works, and the password never shows
// in the logs, even while the server refuses a wrong one.
func TestURLWithACLUser(t *testing.T) {
	const secret = "s3cret-pass-word"
	e := newEnvAuth(t, "alice", secret)
	var logs syncBuffer
	cfg := e.testConfig("member-1")
	cfg.URL = e.redis.URL(2)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.start(cfg, &linear{})
	rdb2 := redis.NewClient(mustParse(t, e.redis.URL(2)))
	defer rdb2.Close()
	ctx := context.Background()
	if err := rdb2.XAdd(ctx, &redis.XAddArgs{Stream: reqStream, Values: request(1, 5)}).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the result in db 2", func() bool { return rdb2.XLen(ctx, resStream).Val() == 1 })

	wrong := cfg
	wrong.URL = strings.Replace(cfg.URL, secret, "wrong-"+secret, 1)
	wrong.Consumer = "member-2"
	bad := e.start(wrong, &linear{})
	waitFor(t, 10*time.Second, "a failed attempt", func() bool { return bad.Stats().RedisErrors > 0 })
	if strings.Contains(logs.String(), secret) {
		t.Errorf("logs show the password:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), redact.Redacted) {
		t.Errorf("logs do not show the redacted URL:\n%s", logs.String())
	}
}

// The password can come from a file (a mounted secret) while the URL names
// only the user: the router serves with it; a missing or empty file is a
// config error.
func TestPasswordFile(t *testing.T) {
	const secret = "file-s3cret-pass"
	e := newEnvAuth(t, "carol", secret)
	pwFile := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.testConfig("member-1")
	cfg.URL = "redis://carol@" + e.redis.Addr + "/3"
	cfg.PasswordFile = pwFile
	e.start(cfg, &linear{})
	rdb3 := redis.NewClient(mustParse(t, e.redis.URL(3)))
	defer rdb3.Close()
	ctx := context.Background()
	if err := rdb3.XAdd(ctx, &redis.XAddArgs{Stream: reqStream, Values: request(1, 5)}).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the result in db 3", func() bool { return rdb3.XLen(ctx, resStream).Val() == 1 })

	for name, content := range map[string]string{"missing": "", "empty": "\n"} {
		c := cfg
		c.PasswordFile = filepath.Join(t.TempDir(), name)
		if name == "empty" {
			if err := os.WriteFile(c.PasswordFile, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.RedisOptions(); err == nil || !strings.Contains(err.Error(), "password_file") {
			t.Errorf("%s password file: %v", name, err)
		}
	}
}

func newEnvAuth(t *testing.T, user, pass string) *env {
	rd := testenv.StartRedis(t, testenv.WithRedisUser(user, pass))
	rdb := redis.NewClient(mustParse(t, rd.URL(0)))
	t.Cleanup(func() { rdb.Close() })
	return &env{t: t, redis: rd, rdb: rdb}
}

func mustParse(t *testing.T, u string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
