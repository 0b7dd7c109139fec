package main

import (
	"context"
	"errors"
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
	"github.com/manta-ml/manta/internal/flagenv"
	"github.com/manta-ml/manta/internal/redact"
	"github.com/manta-ml/manta/internal/secretfile"
	"github.com/manta-ml/manta/ops"
	"github.com/manta-ml/manta/router"
)

// The SDK client is what the router dispatches to.
var (
	_ router.Dispatcher = (*manta.Client)(nil)
	_ router.Speculator = (*manta.Client)(nil)
	_ router.Feedbacker = (*manta.Client)(nil)
)

// serveFlags fills a manta.Config from flags and environment variables,
// each flag bound to its variable by flagenv.
type serveFlags struct {
	store, httpAddr, provider, etcd, redis, host, member string
	budget, maxPayload                                   int64
	idle, redisMinIdle, etcdTTL                          time.Duration
	port, redisInflight                                  int
	redisStreams, redisCA, redisPassFile                 string
	httpToken, httpTokenFile                             string
	tlsCert, tlsKey, tlsCA                               string
	placement                                            cluster.PlacementConfig
	protectMetrics, pprof                                bool
	logFormat, logLevel, activationLog                   string
}

func (f *serveFlags) register(fs *flag.FlagSet) error {
	f.placement = cluster.DefaultPlacementConfig()
	perr := f.placement.RegisterFlags(fs)
	b := flagenv.New(fs)
	b.String(&f.store, "store", "MANTA_STORE", "./models", "model store: a directory or s3://bucket/prefix?endpoint=host:port")
	b.String(&f.httpAddr, "http", "MANTA_HTTP", "127.0.0.1:8080", "HTTP listen address, empty for none")
	b.String(&f.provider, "cluster", "MANTA_CLUSTER", "local", "cluster provider: local, etcd or automanaged")
	b.String(&f.etcd, "etcd", "MANTA_ETCD", "", "etcd endpoints, comma separated")
	b.Duration(&f.etcdTTL, "etcd-ttl", "MANTA_ETCD_TTL", cluster.DefaultEtcdTTL, "lease of the member's etcd registration (whole seconds); a member stalled longer drops out for good")
	b.Bytes(&f.maxPayload, "max-payload", "MANTA_MAX_PAYLOAD", 0, "largest request payload, e.g. 16MiB (larger ones get too_large; default 16MiB)")
	b.Bytes(&f.budget, "budget", "MANTA_BUDGET", 0, "model memory budget, e.g. 4GiB (default half the memory)")
	b.String(&f.redis, "redis", "MANTA_REDIS", "", "Redis URL to ingest requests from streams")
	b.Duration(&f.idle, "idle", "MANTA_IDLE", 5*time.Minute, "deactivate a model idle this long")
	b.String(&f.host, "host", "MANTA_HOST", "127.0.0.1", "cluster (gRPC) listen host")
	b.Int(&f.port, "port", "MANTA_PORT", 0, "cluster (gRPC) port, 0 for a free one")
	b.String(&f.member, "member", "MANTA_MEMBER", "", "member name in responses, default its address")
	b.String(&f.redisStreams, "redis-streams", "MANTA_REDIS_STREAMS", "manta:requests", "request streams, comma separated")
	b.Duration(&f.redisMinIdle, "redis-min-idle", "MANTA_REDIS_MIN_IDLE", time.Minute, "reclaim entries pending this long on a dead consumer")
	b.Int(&f.redisInflight, "redis-inflight", "MANTA_REDIS_INFLIGHT", 1024, "stream entries in flight at most")
	b.String(&f.redisPassFile, "redis-password-file", "MANTA_REDIS_PASSWORD_FILE", "", "read the Redis password from this file instead of the URL")
	b.String(&f.redisCA, "redis-ca", "MANTA_REDIS_CA", "", "CA of the Redis server's certificate, for rediss://")
	b.String(&f.httpToken, "http-token", "MANTA_HTTP_TOKEN", "", "require this bearer token on /v1, /v2 and the page")
	b.String(&f.tlsCert, "tls-cert", "MANTA_TLS_CERT", "", "member certificate for mutual TLS between members")
	b.String(&f.tlsKey, "tls-key", "MANTA_TLS_KEY", "", "its private key")
	b.String(&f.tlsCA, "tls-ca", "MANTA_TLS_CA", "", "the CA that signs every member's certificate")
	b.Bool(&f.protectMetrics, "protect-metrics", "MANTA_PROTECT_METRICS", false, "require the bearer token on /metrics too")
	b.String(&f.httpTokenFile, "http-token-file", "MANTA_HTTP_TOKEN_FILE", "", "read the bearer token from this file")
	b.Bool(&f.pprof, "pprof", "MANTA_PPROF", false, "serve /debug/pprof/ on the HTTP address (behind the token, if any)")
	b.String(&f.logFormat, "log-format", "MANTA_LOG_FORMAT", "text", "log format: text or json")
	b.String(&f.logLevel, "log-level", "MANTA_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	b.String(&f.activationLog, "activation-log", "MANTA_ACTIVATION_LOG", "", "append every activation and deactivation of this member to this file (the soak's and bench cluster's double-activation check)")
	if err := errors.Join(perr, b.Err()); err != nil {
		return usageError{msg: err.Error()}
	}
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
	d := f.redisMinIdle
	if d <= 0 {
		return rc, usagef("--redis-min-idle: %v is not positive", d)
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
	cfg.Cluster.EtcdTTL = f.etcdTTL
	if f.etcd != "" {
		cfg.Cluster.Etcd = strings.Split(f.etcd, ",")
	}
	if f.maxPayload != 0 {
		if f.maxPayload > math.MaxInt32 {
			return cfg, usagef("--max-payload: %d bytes is too large", f.maxPayload)
		}
		cfg.MaxPayloadBytes = int(f.maxPayload)
	}
	if f.budget != 0 {
		cfg.BudgetBytes = f.budget
	}
	if f.idle <= 0 {
		return cfg, usagef("--idle: %v is not positive", f.idle)
	}
	cfg.HTTPToken = f.httpToken
	cfg.ProtectMetrics = f.protectMetrics
	cfg.Pprof = f.pprof
	if f.httpTokenFile != "" {
		tok, err := secretfile.Read(f.httpTokenFile)
		if err != nil {
			return cfg, fmt.Errorf("--http-token-file: %w", err)
		}
		cfg.HTTPToken = strings.TrimSpace(tok)
	}
	cfg.IdleTimeout = f.idle
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
	logger, err := ops.NewLogger(stderr, ops.LogConfig{Format: f.logFormat, Level: f.logLevel})
	if err != nil {
		return usagef("--log-format/--log-level: %v", err)
	}
	cfg.Logger = logger
	if p := f.activationLog; p != "" {
		log, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer log.Close()
		cfg.ActivationLog = log
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
