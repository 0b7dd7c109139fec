// Command fuzzrun runs every fuzz target of the module for a wall-clock
// budget each and decides, per target, whether its run found a bug.
//
// Go 1.26's fuzzing coordinator can end a healthy run with a bare
// "context deadline exceeded" failure at the -fuzztime boundary when the
// machine is loaded (go.dev/issue/75804, fixed in Go 1.27). That failure
// writes no reproducer. A real crasher always does: Go writes the failing
// input to the package's testdata/fuzz/<Target>/ and says "Failing input
// written to …". The decision (see decide):
//
//   - exit status 0: pass;
//   - a new file under testdata/fuzz/<Target>/, or "Failing input written"
//     in the output: a crasher, fail at once (the reproducer stays for
//     `go test` to replay as a seed);
//   - no reproducer, and the target's only failure message is "context
//     deadline exceeded": the boundary race; the target is run once more,
//     and if the second run ends the same way too it is tolerated and
//     reported in the closing summary;
//   - anything else (a build error, a failing seed-corpus entry, a panic
//     without a written input): fail.
//
// Usage: go run ./internal/fuzzrun [-fuzztime 5s] [-root .] [-only Regexp]
// It exits 0 when no target failed, 1 when one did, 2 on bad usage.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// verdict is the runner's decision about one run of one target.
type verdict int

const (
	pass     verdict = iota // the run ended well
	crasher                 // Go wrote a reproducer: a real bug
	boundary                // the coordinator's deadline race: no reproducer, only "context deadline exceeded"
	failed                  // any other failure (build error, failing seed, …)
)

func (v verdict) String() string {
	return [...]string{"pass", "crasher", "boundary", "failed"}[v]
}

// run describes one finished `go test -fuzz` run.
type result struct {
	exitOK    bool     // go test exited 0
	output    string   // its combined output
	newCorpus []string // files that appeared under testdata/fuzz/<Target> during the run
	target    string
}

var failLine = regexp.MustCompile(`^\s*--- FAIL: (\S+)`)

// decide classifies a run (see the package comment).
func decide(r result) verdict {
	if r.exitOK {
		return pass
	}
	if len(r.newCorpus) > 0 || strings.Contains(r.output, "Failing input written to") {
		return crasher
	}
	// Collect the messages under the target's "--- FAIL:" line, up to the
	// next line that is not indented (FAIL, exit status, ok, …).
	lines := strings.Split(r.output, "\n")
	var msgs []string
	inFail := false
	sawFail := false
	for _, l := range lines {
		if m := failLine.FindStringSubmatch(l); m != nil {
			if m[1] != r.target {
				return failed // a subtest (a seed entry) failed
			}
			inFail, sawFail = true, true
			continue
		}
		if !inFail {
			continue
		}
		if l == "" || (l[0] != ' ' && l[0] != '\t') {
			inFail = false
			continue
		}
		if s := strings.TrimSpace(l); s != "" {
			msgs = append(msgs, s)
		}
	}
	if !sawFail || len(msgs) == 0 {
		return failed
	}
	for _, m := range msgs {
		if m != "context deadline exceeded" {
			return failed
		}
	}
	if strings.Contains(r.output, "panic:") {
		return failed
	}
	return boundary
}

// target is one fuzz function in one package directory.
// dir is relative to root, the module's directory that go test runs in.
type target struct{ root, dir, name string }

var fuzzFunc = regexp.MustCompile(`^func (Fuzz[A-Za-z0-9_]*)\(`)

// findTargets walks root for *_test.go files declaring func FuzzX(.
func findTargets(root string) ([]target, error) {
	var out []target
	seen := map[target]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if m := fuzzFunc.FindStringSubmatch(sc.Text()); m != nil {
				rel, err := filepath.Rel(root, filepath.Dir(path))
				if err != nil {
					return err
				}
				t := target{root: root, dir: rel, name: m[1]}
				if !seen[t] {
					seen[t] = true
					out = append(out, t)
				}
			}
		}
		return sc.Err()
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].dir != out[j].dir {
			return out[i].dir < out[j].dir
		}
		return out[i].name < out[j].name
	})
	return out, err
}

// listCorpus returns the files in dir/testdata/fuzz/name.
func listCorpus(t target) map[string]bool {
	files := map[string]bool{}
	entries, _ := os.ReadDir(filepath.Join(t.root, t.dir, "testdata", "fuzz", t.name))
	for _, e := range entries {
		files[e.Name()] = true
	}
	return files
}

// runner runs one target; a variable so that tests can replace it.
type runner func(t target, fuzztime string, log io.Writer) result

func goTestFuzz(t target, fuzztime string, log io.Writer) result {
	before := listCorpus(t)
	cmd := exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+t.name+"$", "-fuzztime", fuzztime, "./"+filepath.ToSlash(t.dir))
	cmd.Dir = t.root
	var buf bytes.Buffer
	cmd.Stdout = io.MultiWriter(&buf, log)
	cmd.Stderr = cmd.Stdout
	err := cmd.Run()
	r := result{exitOK: err == nil, output: buf.String(), target: t.name}
	for f := range listCorpus(t) {
		if !before[f] {
			r.newCorpus = append(r.newCorpus, filepath.Join(t.dir, "testdata", "fuzz", t.name, f))
		}
	}
	sort.Strings(r.newCorpus)
	return r
}

// fuzzAll runs every target and returns the exit code.
func fuzzAll(targets []target, fuzztime string, run runner, out io.Writer) int {
	var bad, tolerated []string
	for _, t := range targets {
		fmt.Fprintf(out, "fuzz %s %s (%s)\n", t.dir, t.name, fuzztime)
		v := decide(run(t, fuzztime, out))
		if v == boundary {
			fmt.Fprintf(out, "fuzzrun: %s ended with a bare 'context deadline exceeded' and no reproducer (go.dev/issue/75804); running it once more\n", t.name)
			v = decide(run(t, fuzztime, out))
			if v == boundary {
				tolerated = append(tolerated, t.dir+" "+t.name)
				v = pass
			}
		}
		switch v {
		case crasher:
			bad = append(bad, fmt.Sprintf("%s %s: a crasher (its input is in %s/testdata/fuzz/%s)", t.dir, t.name, t.dir, t.name))
		case failed:
			bad = append(bad, fmt.Sprintf("%s %s: failed", t.dir, t.name))
		}
	}
	fmt.Fprintf(out, "fuzzrun: %d targets, %d failed, %d tolerated boundary deadlines\n", len(targets), len(bad), len(tolerated))
	for _, s := range tolerated {
		fmt.Fprintf(out, "fuzzrun: tolerated (deadline race twice, no reproducer): %s\n", s)
	}
	for _, s := range bad {
		fmt.Fprintf(out, "fuzzrun: FAIL %s\n", s)
	}
	if len(bad) > 0 {
		return 1
	}
	return 0
}

func main() {
	fsx := flag.NewFlagSet("fuzzrun", flag.ContinueOnError)
	fuzztime := fsx.String("fuzztime", "5s", "budget of each target (a duration, or Nx for N inputs)")
	root := fsx.String("root", ".", "the module's root directory")
	only := fsx.String("only", "", "run only targets whose name matches this regexp")
	if err := fsx.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	targets, err := findTargets(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fuzzrun:", err)
		os.Exit(1)
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fuzzrun: -only:", err)
			os.Exit(2)
		}
		var keep []target
		for _, t := range targets {
			if re.MatchString(t.name) {
				keep = append(keep, t)
			}
		}
		targets = keep
	}
	if len(targets) == 0 {
		fmt.Fprintln(os.Stderr, "fuzzrun: no fuzz targets found")
		os.Exit(1)
	}
	os.Exit(fuzzAll(targets, *fuzztime, goTestFuzz, os.Stdout))
}
