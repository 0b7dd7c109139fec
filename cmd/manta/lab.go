package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/manta-ml/manta/actors/strategy/lab"
)

// cmdLab runs `manta lab`: it compares speculative strategies on simulated
// models with a virtual clock (no cluster) and prints the runs side by side
// (see package lab, and lab.ParseFlags for the flags). Bad flags or a bad
// config are usage errors; Ctrl-C stops the run.
func cmdLab(args []string, stdout, stderr io.Writer) error {
	out := stderr
	for _, a := range args {
		if isHelp(a) {
			out = stdout // asked for: usage on stdout, exit 0
		}
	}
	cfg, err := lab.ParseFlags(args, out)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{msg: err.Error()}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := lab.Run(ctx, cfg)
	if err != nil {
		return err
	}
	return rep.Print(stdout)
}
