package router

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/manta-ml/manta/internal/devcerts"
	"github.com/manta-ml/manta/internal/redact"
	"github.com/manta-ml/manta/internal/testenv"
)

// rediss:// with an ACL user: the router serves over TLS, verifying the
// server against the configured CA; a router that trusts another CA does not
// connect; the password never shows in the logs.
func TestRedissWithACLUser(t *testing.T) {
	ca, err := devcerts.NewCA("redis test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("redis", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	files, err := devcerts.WriteFiles(t.TempDir(), ca, "redis", leaf)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "tls-s3cret-pass"
	rd := testenv.StartRedis(t, testenv.WithRedisUser("bob", secret), testenv.WithRedisTLS(files.Cert, files.Key, files.CA))
	e := &env{t: t, redis: rd, rdb: redis.NewClient(mustParse(t, rd.URL(0)))}
	t.Cleanup(func() { e.rdb.Close() })

	var logs syncBuffer
	cfg := e.testConfig("tls-member")
	cfg.URL = rd.TLSURL(0)
	cfg.TLSCAFile = files.CA
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if !strings.HasPrefix(cfg.URL, "rediss://bob:") {
		t.Fatalf("url %s", redact.URL(cfg.URL))
	}
	e.start(cfg, &linear{})
	ctx := context.Background()
	e.produce(reqStream, 0, 50, 5)
	waitFor(t, 20*time.Second, "50 results over TLS", func() bool { return e.rdb.XLen(ctx, resStream).Val() == 50 })

	// a router that trusts another CA cannot connect
	other, err := devcerts.NewCA("other CA")
	if err != nil {
		t.Fatal(err)
	}
	otherFiles, err := devcerts.WriteFiles(t.TempDir(), other, "x", leaf)
	if err != nil {
		t.Fatal(err)
	}
	wrong := cfg
	wrong.Consumer = "untrusting"
	wrong.TLSCAFile = otherFiles.CA
	bad := e.start(wrong, &linear{})
	waitFor(t, 20*time.Second, "a failed TLS handshake", func() bool { return bad.Stats().RedisErrors > 0 })
	if bad.Stats().Results != 0 {
		t.Fatal("a router that does not trust the server's CA wrote results")
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("logs show the password:\n%s", logs.String())
	}
	// tls_ca_file needs rediss://
	plain := cfg
	plain.URL = rd.URL(0)
	if _, err := plain.RedisOptions(); err == nil {
		t.Error("tls_ca_file with a redis:// url was accepted")
	}
}
