package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/manta-ml/manta/internal/flagenv"
	"github.com/manta-ml/manta/modelhost"
)

const modelsUsage = `usage: manta models SUBCOMMAND [--store STORE] ...

subcommands:
  push DIR [--latest]       validate, hash and copy DIR as the next version (manifest last)
  list [--json]             the store's models
  versions MODEL [--json]   a model's versions
  promote MODEL VERSION     point LATEST at VERSION
  rollback MODEL            point LATEST at the version before the served one
  rm MODEL [VERSION]        remove a version, or the whole model

--store is a directory or s3://bucket/prefix?endpoint=host:port (default ./models,
environment MANTA_STORE). manta models SUBCOMMAND --help shows each one's flags.
`

func cmdModels(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("models: want push, list, versions, promote, rollback or rm (manta models --help)")
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, modelsUsage)
		return nil
	}
	sub := args[0]
	fs := flag.NewFlagSet("models "+sub, flag.ContinueOnError)
	store := new(string)
	b := flagenv.New(fs)
	b.String(store, "store", "MANTA_STORE", "./models", "model store: a directory or s3://bucket/prefix?endpoint=host:port")
	if err := b.Err(); err != nil {
		return usageError{msg: err.Error()}
	}
	latest := fs.Bool("latest", false, "push: also point LATEST at the new version")
	asJSON := fs.Bool("json", false, "print JSON")
	var co canaryOptions
	var ifBetter bool
	var share string
	addr := new(string)
	if sub == "promote" {
		var err error
		if addr, err = addrFlag(fs); err != nil {
			return err
		}
		fs.BoolVar(&ifBetter, "if-better", false, "promote only if VERSION's live quality, measured on a canary, is not worse than the served version's by more than --margin")
		fs.StringVar(&share, "canary", "10%", "with --if-better: the share of requests VERSION serves meanwhile")
		fs.Float64Var(&co.margin, "margin", 0.05, "with --if-better: how much worse VERSION may be (relative: mae at most (1+m)x, accuracy at least (1-m)x the old version's)")
		fs.DurationVar(&co.wait, "wait", time.Hour, "with --if-better: how long to wait for a window of labels")
		fs.DurationVar(&co.poll, "poll", 5*time.Second, "with --if-better: how often to look at the quality")
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	ctx := context.Background()
	want := map[string]int{"push": 1, "list": 0, "versions": 1, "promote": 2, "rollback": 1}
	if n, ok := want[sub]; ok && len(pos) != n {
		return usagef("models %s: want %d argument(s), got %d", sub, n, len(pos))
	}
	if sub == "rm" && (len(pos) < 1 || len(pos) > 2) {
		return usagef("models rm: want MODEL [VERSION]")
	}
	if _, ok := want[sub]; !ok && sub != "rm" {
		return usagef("models: unknown subcommand %q", sub)
	}
	if !isURL(*store) {
		// A directory store: push creates it; every other subcommand needs
		// it to exist (a typo must not look like an empty store).
		if sub == "push" {
			if err := os.MkdirAll(*store, 0o755); err != nil {
				return err
			}
		} else if st, err := os.Stat(*store); err != nil || !st.IsDir() {
			return fmt.Errorf("store %s does not exist or is not a directory", *store)
		}
	}
	st, err := modelhost.OpenStore(ctx, *store)
	if err != nil {
		return err
	}
	switch sub {
	case "push":
		return modelsPush(ctx, st, pos[0], *latest, stdout, stderr)
	case "list":
		return modelsList(ctx, st, *asJSON, stdout)
	case "versions":
		return modelsVersions(ctx, st, pos[0], *asJSON, stdout)
	case "promote":
		if err := modelhost.ValidVersion(pos[1]); err != nil {
			return usageError{msg: err.Error()}
		}
		if _, err := st.Manifest(ctx, pos[0], pos[1]); err != nil {
			return err
		}
		if ifBetter {
			if co.share, err = parseShare(share); err != nil {
				return usageError{msg: err.Error()}
			}
			if co.margin < 0 || co.wait <= 0 || co.poll <= 0 {
				return usagef("models promote: --margin must be >= 0, --wait and --poll positive")
			}
			co.addr = *addr
			return promoteIfBetter(ctx, st, pos[0], pos[1], co, stdout)
		}
		if err := st.SetLatest(ctx, pos[0], pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: LATEST -> %s\n", pos[0], pos[1])
		return nil
	case "rollback":
		return modelsRollback(ctx, st, pos[0], stdout)
	case "rm":
		v := ""
		if len(pos) == 2 {
			v = pos[1]
		}
		if err := st.Delete(ctx, pos[0], v); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s %s\n", pos[0], v)
		return nil
	}
	return nil
}

func isURL(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i:i+3] == "://" {
			return true
		}
	}
	return false
}

func modelsPush(ctx context.Context, st modelhost.Store, dir string, latest bool, stdout, stderr io.Writer) error {
	if b, ok := st.(interface{ EnsureBucket(context.Context) error }); ok {
		// the first push to a new bucket creates it
		if err := b.EnsureBucket(ctx); err != nil {
			return err
		}
	}
	bar := newProgress(stderr)
	m, err := modelhost.Push(ctx, st, dir, modelhost.PushOptions{
		SetLatest: latest,
		Progress:  bar.update,
	})
	bar.done()
	if err != nil {
		return err
	}
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	mem := ""
	if m.MemoryBytes > 0 {
		mem = ", memory " + formatBytes(m.MemoryBytes)
	}
	fmt.Fprintf(stdout, "pushed %s version %s (%d files, %s%s)\n", m.ID, m.Version, len(m.Files), formatBytes(size), mem)
	return nil
}

// progress draws a one-line progress bar of a push from the
// modelhost.Progress reports (bytes, rate, ETA, throttled by the meter) for
// big versions.
type progress struct {
	w     io.Writer
	shown bool
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

func (p *progress) update(r modelhost.Progress) {
	if r.Total < 8<<20 && !p.shown {
		return // small versions: no bar
	}
	p.shown = true
	eta := "?"
	if r.ETA >= 0 {
		eta = r.ETA.Round(time.Second).String()
	}
	pct := 100 * float64(r.Bytes) / float64(max(r.Total, 1))
	fmt.Fprintf(p.w, "\r%-24.24s [%-20s] %5.1f%% %s/%s %s/s ETA %s   ", r.Path,
		string(repeat('#', int(pct/5))), pct, formatBytes(r.Bytes), formatBytes(r.Total), formatBytes(int64(r.Rate)), eta)
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

func repeat(c byte, n int) []byte {
	b := make([]byte, max(n, 0))
	for i := range b {
		b[i] = c
	}
	return b
}

func modelsList(ctx context.Context, st modelhost.Store, asJSON bool, stdout io.Writer) error {
	ids, err := st.List(ctx)
	if err != nil {
		return err
	}
	type row struct {
		ID       string    `json:"id"`
		Latest   string    `json:"latest"`
		Versions int       `json:"versions"`
		Runtime  string    `json:"runtime"`
		Size     int64     `json:"size_bytes"`
		Created  time.Time `json:"created_at"`
		Quality  string    `json:"quality,omitempty"`
	}
	var rows []row
	for _, id := range ids {
		r := row{ID: id}
		vs, err := st.Versions(ctx, id)
		if err != nil || len(vs) == 0 {
			continue
		}
		r.Versions = len(vs)
		r.Latest, _ = st.Latest(ctx, id)
		if m, err := st.Manifest(ctx, id, r.Latest); err == nil {
			r.Runtime, r.Created = m.Runtime, m.CreatedAt
			for _, f := range m.Files {
				r.Size += f.Size
			}
			if m.Quality != nil {
				r.Quality = fmt.Sprintf("%s=%g", m.Quality.Metric, m.Quality.Value)
			}
		}
		rows = append(rows, r)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tLATEST\tVERSIONS\tRUNTIME\tSIZE\tCREATED\tQUALITY")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.ID, r.Latest, r.Versions, r.Runtime, formatBytes(r.Size), r.Created.Format(time.RFC3339), r.Quality)
	}
	return tw.Flush()
}

func modelsVersions(ctx context.Context, st modelhost.Store, id string, asJSON bool, stdout io.Writer) error {
	vs, err := st.Versions(ctx, id)
	if err != nil {
		return err
	}
	latest, _ := st.Latest(ctx, id)
	var ms []*modelhost.Manifest
	for _, v := range vs {
		m, err := st.Manifest(ctx, id, v)
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"id": id, "latest": latest, "versions": ms})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tLATEST\tSIZE\tCREATED\tQUALITY\tDESCRIPTION")
	for _, m := range ms {
		var size int64
		for _, f := range m.Files {
			size += f.Size
		}
		mark, q := "", ""
		if m.Version == latest {
			mark = "*"
		}
		if m.Quality != nil {
			q = fmt.Sprintf("%s=%g", m.Quality.Metric, m.Quality.Value)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Version, mark, formatBytes(size), m.CreatedAt.Format(time.RFC3339), q, m.Description)
	}
	return tw.Flush()
}

// modelsRollback points LATEST at the version below the one served now.
func modelsRollback(ctx context.Context, st modelhost.Store, id string, stdout io.Writer) error {
	vs, err := st.Versions(ctx, id)
	if err != nil {
		return err
	}
	cur, err := st.Latest(ctx, id)
	if err != nil {
		return err
	}
	curN, _ := strconv.Atoi(cur)
	prev := ""
	for _, v := range vs {
		if n, _ := strconv.Atoi(v); n < curN {
			prev = v
		}
	}
	if prev == "" {
		return fmt.Errorf("%s: no version before %s to roll back to", id, cur)
	}
	if err := st.SetLatest(ctx, id, prev); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: LATEST %s -> %s\n", id, cur, prev)
	return nil
}
