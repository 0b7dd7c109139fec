// Command manta serves, pushes and queries models (see doc.go).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/manta-ml/manta/internal/flagenv"
)

// exit codes: 0 success, 1 a failed operation, 2 bad usage.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError marks bad usage (exit 2). With fs set, the command's usage
// follows the message on stderr.
type usageError struct {
	msg string
	fs  *flag.FlagSet
}

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{msg: fmt.Sprintf(format, args...)} }

// helpRequest is returned for -h/--help: the command's usage goes to
// stdout and the exit status is 0.
type helpRequest struct{ fs *flag.FlagSet }

func (helpRequest) Error() string { return "help requested" }
func (helpRequest) Unwrap() error { return flag.ErrHelp }

// synopses are the first lines of each command's --help, keyed by the name
// of its flag set.
var synopses = map[string]string{
	"serve":           "manta serve [flags]\n\nRuns one member: the model actors, the HTTP API and, with --redis, stream ingestion.\nA --store directory that does not exist is created (and said so).",
	"models push":     "manta models push DIR [--store STORE] [--latest]\n\nValidates DIR (manifest.json and its files), hashes it and copies it into the store as\nthe model's next version, manifest last. Creates a directory store that does not exist.",
	"models list":     "manta models list [--store STORE] [--json]\n\nLists the store's models with their served and latest versions.",
	"models versions": "manta models versions MODEL [--store STORE] [--json]\n\nLists MODEL's versions.",
	"models promote":  "manta models promote MODEL VERSION [--store STORE] [--if-better --canary 10% --addr HOST:PORT]\n\nPoints MODEL's LATEST at VERSION. With --if-better, VERSION first serves --canary of the requests\n(on the member at --addr) until it has a window of labels, and becomes LATEST only if its live\nquality is not worse than the served version's by more than --margin.",
	"models rollback": "manta models rollback MODEL [--store STORE]\n\nPoints MODEL's LATEST at the version before the one served.",
	"models rm":       "manta models rm MODEL [VERSION] [--store STORE]\n\nRemoves one version of MODEL, or all of it.",
	"predict":         "manta predict [--addr HOST:PORT] MODEL JSON\n\nSends one request to a member's HTTP API and prints output, model, version, served_by, latency.",
	"status":          "manta status [--addr HOST:PORT] [--json]\n\nMembers, memory used/budget, request rate and active models.",
	"reload":          "manta reload [--addr HOST:PORT] MODEL\n\nLooks for a new version of MODEL now and rolls it out.",
	"where":           "manta where [--addr HOST:PORT] MODEL\n\nThe members where MODEL (and its replicas) is active.",
	"quality":         "manta quality [--addr HOST:PORT] [--json] MODEL\n\nMODEL's live quality (joined labels, mae/rmse or accuracy/logloss) and drift (PSI) per version.",
	"certs":           "manta certs DIR [--members a,b,c]\n\nWrites a development CA and one certificate per member for mutual TLS.",
	"demo":            "manta demo [flags]\n\nGenerates linear models, serves them on one embedded member with a small memory budget,\nsends a Zipf workload and prints what happened.",
	"bench sdk":       "manta bench sdk [flags]\n\nPredict+Get through Manta against a direct call of the same model.",
	"bench placement": "manta bench placement [flags]\n\nThe placement and cache simulator (seeded, deterministic): volume and memory balance.",
	"bench cluster":   "manta bench cluster [flags]\n\nStarts etcd, Redis and K member processes, generates N tiny models and measures cold\nand warm passes, cross-member latency, idle CPU, memory per activation and failover.",
}

// printUsage writes a command's usage: its synopsis, then every flag with
// its default and the environment variable bound to it by flagenv, where
// one is.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	if syn, ok := synopses[fs.Name()]; ok {
		fmt.Fprintf(w, "usage: %s\n\nflags:\n", syn)
	} else {
		fmt.Fprintf(w, "usage: manta %s [flags]\n\nflags:\n", fs.Name())
	}
	fs.VisitAll(func(f *flag.Flag) {
		_, usage := flag.UnquoteUsage(f)
		name := flagenv.TypeName(f)
		if name != "" {
			name = " " + name
		}
		fmt.Fprintf(w, "  --%s%s\n      %s\n", f.Name, name, usage)
		var extra []string
		if f.DefValue != "" {
			extra = append(extra, "default "+f.DefValue)
		}
		if env := flagenv.Env(f); env != "" {
			extra = append(extra, "environment "+env)
		} else {
			extra = append(extra, "no environment variable")
		}
		fmt.Fprintf(w, "      (%s)\n", strings.Join(extra, "; "))
	})
}

const usage = `manta: serve and query thousands of ML models

usage:
  manta serve    [--store DIR|s3://bucket/prefix?endpoint=…] [--http 127.0.0.1:8080]
                 [--cluster local|etcd|automanaged] [--etcd HOST:PORT] [--budget 4GiB] [--redis redis://…]
  manta models   push DIR | list | versions MODEL | promote MODEL VERSION | rollback MODEL | rm MODEL [VERSION]   [--store …]
  manta predict  [--addr HOST:PORT] MODEL JSON
  manta status   [--addr HOST:PORT] [--json]
  manta reload   [--addr HOST:PORT] MODEL
  manta where    [--addr HOST:PORT] MODEL     the members where MODEL is active
  manta quality  [--addr HOST:PORT] MODEL     MODEL's live quality and drift per version
  manta certs    DIR [--members a,b,c]        a development CA and member certificates for mutual TLS
  manta demo     [--models 1000] [--requests 20000] [--budget 48MiB]
  manta bench    sdk [--duration 3s] | placement [flags] | cluster [--members 3] [--models 10000]
  manta lab      [-scenario …] [-seed 1] [-requests 20000]   compare speculative strategies (virtual clock)

Settings flags also read an environment variable (the flag wins; a value that does not
parse is an error): MANTA_STORE, MANTA_HTTP, MANTA_CLUSTER, MANTA_ETCD, MANTA_BUDGET,
MANTA_REDIS, MANTA_ADDR, MANTA_IDLE, MANTA_PORT, …; COMMAND --help names each one.
Exit codes: 0 success, 1 failed operation, 2 bad usage.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(args[1:], stdout, stderr)
	case "models":
		err = cmdModels(args[1:], stdout, stderr)
	case "predict":
		err = cmdPredict(args[1:], stdout, stderr)
	case "status":
		err = cmdStatus(args[1:], stdout, stderr)
	case "certs":
		err = cmdCerts(args[1:], stdout, stderr)
	case "where":
		err = cmdWhere(args[1:], stdout, stderr)
	case "reload":
		err = cmdReload(args[1:], stdout, stderr)
	case "quality":
		err = cmdQuality(args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(args[1:], stdout, stderr)
	case "lab":
		err = cmdLab(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		err = usagef("unknown command %q (see manta help)", args[0])
	}
	if err == nil {
		return exitOK
	}
	var hr helpRequest
	if errors.As(err, &hr) {
		printUsage(stdout, hr.fs)
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(stderr, "manta: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		if ue.fs != nil {
			fmt.Fprintln(stderr)
			printUsage(stderr, ue.fs)
		}
		return exitUsage
	}
	return exitFail
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// parseInterleaved parses flags that may come before or after positional
// arguments ("manta models push DIR --store s3://…").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpRequest{fs}
			}
			return nil, usageError{msg: err.Error(), fs: fs}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
