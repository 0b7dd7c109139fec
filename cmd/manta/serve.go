package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/cluster"
)

// serveFlags fills a manta.Config from flags and environment variables.
type serveFlags struct {
	store, httpAddr, provider, etcd, budget, redis, idle, host, member string
	port                                                               int
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.store, "store", env("MANTA_STORE", "./models"), "model store: a directory or s3://bucket/prefix?endpoint=host:port (MANTA_STORE)")
	fs.StringVar(&f.httpAddr, "http", env("MANTA_HTTP", "127.0.0.1:8080"), "HTTP listen address, empty for none (MANTA_HTTP)")
	fs.StringVar(&f.provider, "cluster", env("MANTA_CLUSTER", "local"), "cluster provider: local, etcd or automanaged (MANTA_CLUSTER)")
	fs.StringVar(&f.etcd, "etcd", env("MANTA_ETCD", ""), "etcd endpoints, comma separated (MANTA_ETCD)")
	fs.StringVar(&f.budget, "budget", env("MANTA_BUDGET", ""), "model memory budget, e.g. 4GiB (MANTA_BUDGET; default half the memory)")
	fs.StringVar(&f.redis, "redis", env("MANTA_REDIS", ""), "Redis URL to ingest requests from streams (MANTA_REDIS)")
	fs.StringVar(&f.idle, "idle", env("MANTA_IDLE", "5m"), "deactivate a model idle this long (MANTA_IDLE)")
	fs.StringVar(&f.host, "host", env("MANTA_HOST", "127.0.0.1"), "cluster (gRPC) listen host (MANTA_HOST)")
	fs.IntVar(&f.port, "port", 0, "cluster (gRPC) port, 0 for a free one")
	fs.StringVar(&f.member, "member", env("MANTA_MEMBER", ""), "member name in responses (default: its address)")
}

func (f *serveFlags) config() (manta.Config, error) {
	cfg := manta.DefaultConfig()
	cfg.Store = f.store
	cfg.HTTPAddr = f.httpAddr
	cfg.Member = f.member
	cfg.Cluster.Provider = f.provider
	cfg.Cluster.Host = f.host
	cfg.Cluster.Port = f.port
	if f.etcd != "" {
		cfg.Cluster.Etcd = strings.Split(f.etcd, ",")
	}
	if f.budget != "" {
		b, err := parseBytes(f.budget)
		if err != nil {
			return cfg, usagef("--budget: %v", err)
		}
		cfg.BudgetBytes = b
	}
	d, err := time.ParseDuration(f.idle)
	if err != nil || d <= 0 {
		return cfg, usagef("--idle: bad duration %q", f.idle)
	}
	cfg.IdleTimeout = d
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err.Error()}
	}
	return cfg, nil
}

func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var f serveFlags
	f.register(fs)
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
	if f.redis != "" {
		return usagef("--redis: stream ingestion is not part of this build yet")
	}
	if cfg.Cluster.Provider == cluster.ProviderLocal {
		if _, err := os.Stat(cfg.Store); os.IsNotExist(err) && !strings.Contains(cfg.Store, "://") {
			if err := os.MkdirAll(cfg.Store, 0o755); err != nil {
				return err
			}
		}
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
	<-ctx.Done()
	fmt.Fprintln(stdout, "manta: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return c.Close(sctx)
}
