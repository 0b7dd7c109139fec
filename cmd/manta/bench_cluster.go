package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/manta-ml/manta/internal/clusterbench"
)

// benchCluster starts etcd, Redis and K member processes of this very
// executable and prints what internal/clusterbench measured.
func benchCluster(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench cluster", flag.ContinueOnError)
	cfg := clusterbench.DefaultConfig()
	fs.IntVar(&cfg.Members, "members", cfg.Members, "member processes (manta serve --cluster etcd)")
	fs.IntVar(&cfg.Models, "models", cfg.Models, "tiny linear models generated into one directory store")
	fs.IntVar(&cfg.RequestsPerModel, "requests-per-model", cfg.RequestsPerModel, "requests per model in each of the cold and warm passes")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "stream requests outstanding at most; 0 is 1024 per member")
	dir := fs.String("dir", "", "working directory, kept afterwards (default a temporary one, removed)")
	noFailover := fs.Bool("no-failover", false, "skip the kill -9 failover measurement")
	fs.BoolVar(&cfg.Profile, "profile", false, "save each member's heap profile after the cold pass and CPU profile over the idle window into the working directory's logs/ (keep it with --dir)")
	fs.DurationVar(&cfg.IdleWindow, "idle-window", 0, "how long idle CPU is sampled; 0 is 10s")
	fs.DurationVar(&cfg.IdleSettle, "idle-settle", 0, "how long the cluster is left without traffic before idle CPU is sampled; 0 is 30s, negative none")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{msg: fmt.Sprintf("bench cluster takes no arguments, got %q", pos), fs: fs}
	}
	if cfg.Members < 1 || cfg.Models < 1 || cfg.RequestsPerModel < 1 || cfg.Concurrency < 0 {
		return usageError{msg: "bench cluster: --members, --models and --requests-per-model must be positive", fs: fs}
	}
	cfg.Failover = !*noFailover
	if cfg.Failover && cfg.Members < 2 {
		return usageError{msg: "bench cluster: the failover needs --members 2 or more (or --no-failover)", fs: fs}
	}
	cfg.Dir = *dir
	cfg.KeepDir = *dir != ""
	cfg.Out = stderr
	if cfg.MantaBin, err = os.Executable(); err != nil {
		return fmt.Errorf("bench cluster: this executable: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, runErr := clusterbench.Run(ctx, cfg)
	if rep != nil && (runErr == nil || rep.Cold.Requests > 0) { // nothing measured: only the error
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				return err
			}
		} else {
			rep.WriteTable(stdout)
		}
	}
	if runErr != nil {
		return fmt.Errorf("bench cluster: %w", runErr)
	}
	return nil
}
