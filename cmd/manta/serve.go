package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/internal/bytesize"
	"github.com/manta-ml/manta/internal/redact"
	"github.com/manta-ml/manta/internal/secretfile"
	"github.com/manta-ml/manta/ops"
	"github.com/manta-ml/manta/router"
)

// The SDK client is what the router dispatches to.
var (
	_ router.Dispatcher = (*manta.Client)(nil)
	_ router.Speculator = (*manta.Client)(nil)
)

// serveFlags fills a manta.Config from flags and environment variables.
type serveFlags struct {
	store, httpAddr, provider, etcd, budget, redis, idle, host, member string
	port                                                               int
	redisStreams, redisMinIdle, redisCA, redisPassFile                 string
	httpToken, httpTokenFile                                           string
	tlsCert, tlsKey, tlsCA                                             string
	placement                                                          cluster.PlacementConfig
	redisInflight                                                      int
	protectMetrics                                                     bool
	maxPayload                                                         string
}

func (f *serveFlags) register(fs *flag.FlagSet) error {
	f.placement = cluster.DefaultPlacementConfig()
	if err := f.placement.RegisterFlags(fs); err != nil {
		return usageError{msg: err.Error()}
	}
	fs.StringVar(&f.store, "store", env("MANTA_STORE", "./models"), "model store: a directory or s3://bucket/prefix?endpoint=host:port (MANTA_STORE)")
	fs.StringVar(&f.httpAddr, "http", env("MANTA_HTTP", "127.0.0.1:8080"), "HTTP listen address, empty for none (MANTA_HTTP)")
	fs.StringVar(&f.provider, "cluster", env("MANTA_CLUSTER", "local"), "cluster provider: local, etcd or automanaged (MANTA_CLUSTER)")
	fs.StringVar(&f.etcd, "etcd", env("MANTA_ETCD", ""), "etcd endpoints, comma separated (MANTA_ETCD)")
	fs.StringVar(&f.maxPayload, "max-payload", env("MANTA_MAX_PAYLOAD", ""), "largest request payload, e.g. 16MiB (MANTA_MAX_PAYLOAD; larger ones get too_large)")
	fs.StringVar(&f.budget, "budget", env("MANTA_BUDGET", ""), "model memory budget, e.g. 4GiB (MANTA_BUDGET; default half the memory)")
	fs.StringVar(&f.redis, "redis", env("MANTA_REDIS", ""), "Redis URL to ingest requests from streams (MANTA_REDIS)")
	fs.StringVar(&f.idle, "idle", env("MANTA_IDLE", "5m"), "deactivate a model idle this long (MANTA_IDLE)")
	fs.StringVar(&f.host, "host", env("MANTA_HOST", "127.0.0.1"), "cluster (gRPC) listen host (MANTA_HOST)")
	fs.IntVar(&f.port, "port", envInt("MANTA_PORT", 0), "cluster (gRPC) port, 0 for a free one (MANTA_PORT)")
	fs.StringVar(&f.member, "member", env("MANTA_MEMBER", ""), "member name in responses, default its address (MANTA_MEMBER)")
	fs.StringVar(&f.redisStreams, "redis-streams", env("MANTA_REDIS_STREAMS", "manta:requests"), "request streams, comma separated (MANTA_REDIS_STREAMS)")
	fs.StringVar(&f.redisMinIdle, "redis-min-idle", env("MANTA_REDIS_MIN_IDLE", "1m"), "reclaim entries pending this long on a dead consumer (MANTA_REDIS_MIN_IDLE)")
	fs.IntVar(&f.redisInflight, "redis-inflight", envInt("MANTA_REDIS_INFLIGHT", 1024), "stream entries in flight at most (MANTA_REDIS_INFLIGHT)")
	fs.StringVar(&f.redisPassFile, "redis-password-file", env("MANTA_REDIS_PASSWORD_FILE", ""), "read the Redis password from this file instead of the URL (MANTA_REDIS_PASSWORD_FILE)")
	fs.StringVar(&f.redisCA, "redis-ca", env("MANTA_REDIS_CA", ""), "CA of the Redis server's certificate, for rediss:// (MANTA_REDIS_CA)")
	fs.StringVar(&f.httpToken, "http-token", env("MANTA_HTTP_TOKEN", ""), "require this bearer token on /v1, /v2 and the page (MANTA_HTTP_TOKEN)")
	fs.StringVar(&f.tlsCert, "tls-cert", env("MANTA_TLS_CERT", ""), "member certificate for mutual TLS between members (MANTA_TLS_CERT)")
	fs.StringVar(&f.tlsKey, "tls-key", env("MANTA_TLS_KEY", ""), "its private key (MANTA_TLS_KEY)")
	fs.StringVar(&f.tlsCA, "tls-ca", env("MANTA_TLS_CA", ""), "the CA that signs every member's certificate (MANTA_TLS_CA)")
	fs.BoolVar(&f.protectMetrics, "protect-metrics", env("MANTA_PROTECT_METRICS", "") == "1" || env("MANTA_PROTECT_METRICS", "") == "true", "require the bearer token on /metrics too (MANTA_PROTECT_METRICS=1)")
	fs.StringVar(&f.httpTokenFile, "http-token-file", env("MANTA_HTTP_TOKEN_FILE", ""), "read the bearer token from this file (MANTA_HTTP_TOKEN_FILE)")
	return nil
}

// routerConfig fills the router's config from the flags.
func (f *serveFlags) routerConfig(member string) (router.Config, error) {
	rc := router.DefaultConfig()
	rc.URL = f.redis
	rc.Streams = strings.Split(f.redisStreams, ",")
	rc.Consumer = member
	rc.InFlight = f.redisInflight
	rc.TLSCAFile = f.redisCA
	rc.PasswordFile = f.redisPassFile
	d, err := time.ParseDuration(f.redisMinIdle)
	if err != nil || d <= 0 {
		return rc, usagef("--redis-min-idle: bad duration %q", f.redisMinIdle)
	}
	rc.MinIdle = d
	rc.ReclaimInterval = d / 4
	if rc.MaxDeadline >= d {
		rc.MaxDeadline = d / 2
	}
	if rc.DefaultDeadline > rc.MaxDeadline {
		rc.DefaultDeadline = rc.MaxDeadline
	}
	if err := rc.Validate(); err != nil {
		return rc, usageError{msg: err.Error()}
	}
	return rc, nil
}

func (f *serveFlags) config() (manta.Config, error) {
	cfg := manta.DefaultConfig()
	cfg.Store = f.store
	cfg.HTTPAddr = f.httpAddr
	cfg.Member = f.member
	cfg.Cluster.Provider = f.provider
	cfg.Cluster.Host = f.host
	cfg.Cluster.Port = f.port
	cfg.Cluster.Placement = f.placement
	cfg.Cluster.TLS = cluster.TLSConfig{CertFile: f.tlsCert, KeyFile: f.tlsKey, CAFile: f.tlsCA}
	if f.etcd != "" {
		cfg.Cluster.Etcd = strings.Split(f.etcd, ",")
	}
	if f.maxPayload != "" {
		b, err := bytesize.Parse(f.maxPayload)
		if err != nil || b <= 0 || b > math.MaxInt32 {
			return cfg, usagef("--max-payload: bad size %q", f.maxPayload)
		}
		cfg.MaxPayloadBytes = int(b)
	}
	if f.budget != "" {
		b, err := bytesize.Parse(f.budget)
		if err != nil {
			return cfg, usagef("--budget: %v", err)
		}
		cfg.BudgetBytes = b
	}
	d, err := time.ParseDuration(f.idle)
	if err != nil || d <= 0 {
		return cfg, usagef("--idle: bad duration %q", f.idle)
	}
	cfg.HTTPToken = f.httpToken
	cfg.ProtectMetrics = f.protectMetrics
	cfg.Pprof = env("MANTA_PPROF", "") != ""
	if f.httpTokenFile != "" {
		tok, err := secretfile.Read(f.httpTokenFile)
		if err != nil {
			return cfg, fmt.Errorf("--http-token-file: %w", err)
		}
		cfg.HTTPToken = strings.TrimSpace(tok)
	}
	cfg.IdleTimeout = d
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{msg: err.Error()}
	}
	return cfg, nil
}

func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var f serveFlags
	if err := f.register(fs); err != nil {
		return err
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("serve takes no arguments, got %q", pos)
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	if !strings.Contains(cfg.Store, "://") {
		if _, err := os.Stat(cfg.Store); os.IsNotExist(err) {
			if err := os.MkdirAll(cfg.Store, 0o755); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "manta: created the store directory %s (it did not exist; push models with manta models push DIR --store %s)\n", cfg.Store, cfg.Store)
		}
	}
	logger, err := ops.NewLogger(stderr, ops.LogConfig{Format: env("MANTA_LOG_FORMAT", "text"), Level: env("MANTA_LOG_LEVEL", "info")})
	if err != nil {
		return usagef("MANTA_LOG_FORMAT/MANTA_LOG_LEVEL: %v", err)
	}
	cfg.Logger = logger
	if p := os.Getenv("MANTA_ACTIVATION_LOG"); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.ActivationLog = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := manta.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "manta: member %s serving store %s (cluster %s, budget %s)\n",
		c.MemberName(), cfg.Store, cfg.Cluster.Provider, formatBytes(c.Cache().Stats().Budget))
	if c.HTTPAddr() != "" {
		fmt.Fprintf(stdout, "manta: http://%s (POST /v1/models/{id}/predict, GET /v1/status)\n", c.HTTPAddr())
	}
	var rt *router.Router
	routerDone := make(chan error, 1)
	if f.redis != "" {
		rc, err := f.routerConfig(c.MemberName())
		if err != nil {
			_ = c.Close(context.Background())
			return err
		}
		rt, err = router.New(rc, c)
		if err != nil {
			_ = c.Close(context.Background())
			return err
		}
		if m := c.Metrics(); m != nil {
			if err := m.Register(newStreamCollector(rt)); err != nil {
				fmt.Fprintf(stderr, "manta: stream metrics: %v\n", err)
			}
		}
		go func() { routerDone <- rt.Run(context.Background()) }()
		fmt.Fprintf(stdout, "manta: ingesting Redis streams %s from %s (group %s, consumer %s)\n",
			strings.Join(rc.Streams, ","), redact.URL(rc.URL), rc.Group, rc.Consumer)
	}
	select {
	case <-ctx.Done():
	case err := <-routerDone:
		if err != nil {
			fmt.Fprintf(stderr, "manta: stream ingestion stopped: %v\n", err)
		}
	}
	fmt.Fprintln(stdout, "manta: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if rt != nil {
		// stop reading, finish what is in flight, ack nothing unanswered
		if err := rt.Shutdown(sctx); err != nil {
			fmt.Fprintf(stderr, "manta: router shutdown: %v\n", err)
		}
	}
	return c.Close(sctx)
}

// streamCollector exports the stream ingestion's state at scrape time.
type streamCollector struct {
	rt                                          *router.Router
	lag, pending, read, results, dead, inflight *prometheus.Desc
}

func newStreamCollector(rt *router.Router) *streamCollector {
	d := prometheus.NewDesc
	sg := []string{"stream", "group"}
	return &streamCollector{rt: rt,
		lag:      d("manta_stream_lag_entries", "Entries of the request stream not yet delivered to the group.", sg, nil),
		pending:  d("manta_stream_pending_entries", "Entries delivered to the group and not yet acknowledged.", sg, nil),
		read:     d("manta_stream_entries_read_total", "Stream entries read by this member.", nil, nil),
		results:  d("manta_stream_results_total", "Results written and acknowledged by this member.", nil, nil),
		dead:     d("manta_stream_dead_letters_total", "Malformed entries sent to the dead stream by this member.", nil, nil),
		inflight: d("manta_stream_inflight_entries", "Entries read and not yet acknowledged by this member.", nil, nil),
	}
}

func (s *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.lag, s.pending, s.read, s.results, s.dead, s.inflight} {
		ch <- d
	}
}

func (s *streamCollector) Collect(ch chan<- prometheus.Metric) {
	st := s.rt.Stats()
	ch <- prometheus.MustNewConstMetric(s.read, prometheus.CounterValue, float64(st.Read))
	ch <- prometheus.MustNewConstMetric(s.results, prometheus.CounterValue, float64(st.Results))
	ch <- prometheus.MustNewConstMetric(s.dead, prometheus.CounterValue, float64(st.Dead))
	ch <- prometheus.MustNewConstMetric(s.inflight, prometheus.GaugeValue, float64(st.InFlight))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	groups, _ := s.rt.Groups(ctx) // Redis down: no lag figures this scrape
	for _, g := range groups {
		ch <- prometheus.MustNewConstMetric(s.pending, prometheus.GaugeValue, float64(g.Pending), g.Stream, g.Group)
		if g.Lag >= 0 {
			ch <- prometheus.MustNewConstMetric(s.lag, prometheus.GaugeValue, float64(g.Lag), g.Stream, g.Group)
		}
	}
}
