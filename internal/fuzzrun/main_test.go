package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const boundaryOutput = `fuzz: elapsed: 0s, gathering baseline coverage: 0/12 completed
fuzz: elapsed: 3s, execs: 41234 (13744/sec), new interesting: 2 (total: 14)
--- FAIL: FuzzInferRequest (5.02s)
    context deadline exceeded
FAIL
exit status 1
FAIL	github.com/manta-ml/manta/ops	5.311s
`

const crasherOutput = `fuzz: elapsed: 0s, gathering baseline coverage: 0/1 completed
--- FAIL: FuzzInferRequest (0.21s)
    --- FAIL: FuzzInferRequest (0.00s)
        testing.go:1591: panic: runtime error: index out of range [3] with length 3
    Failing input written to testdata/fuzz/FuzzInferRequest/5a1c
    To re-run:
    go test -run=FuzzInferRequest/5a1c
FAIL
exit status 1
`

const seedFailOutput = `--- FAIL: FuzzInferRequest (0.00s)
    --- FAIL: FuzzInferRequest/seed#3 (0.00s)
        tensor_test.go:40: want bad_input, got internal
FAIL
exit status 1
`

const buildFailOutput = `# github.com/manta-ml/manta/ops [github.com/manta-ml/manta/ops.test]
ops/tensor_test.go:12:2: undefined: nope
FAIL	github.com/manta-ml/manta/ops [build failed]
`

func TestDecide(t *testing.T) {
	cases := []struct {
		name string
		r    result
		want verdict
	}{
		{"exit 0", result{exitOK: true, output: "ok", target: "FuzzInferRequest"}, pass},
		{"boundary deadline", result{output: boundaryOutput, target: "FuzzInferRequest"}, boundary},
		{"crasher by message", result{output: crasherOutput, target: "FuzzInferRequest"}, crasher},
		{"crasher by new corpus file only", result{output: boundaryOutput, target: "FuzzInferRequest", newCorpus: []string{"testdata/fuzz/FuzzInferRequest/77"}}, crasher},
		{"failing seed", result{output: seedFailOutput, target: "FuzzInferRequest"}, failed},
		{"build failure", result{output: buildFailOutput, target: "FuzzInferRequest"}, failed},
		{"deadline plus another message", result{output: strings.Replace(boundaryOutput, "    context deadline exceeded\n", "    context deadline exceeded\n    worker exited unexpectedly\n", 1), target: "FuzzInferRequest"}, failed},
		{"deadline with a panic", result{output: boundaryOutput + "panic: boom\n", target: "FuzzInferRequest"}, failed},
		{"empty failure", result{output: "exit status 1\n", target: "FuzzInferRequest"}, failed},
	}
	for _, c := range cases {
		if got := decide(c.r); got != c.want {
			t.Errorf("%s: decide = %v, want %v", c.name, got, c.want)
		}
	}
}

// scripted returns a runner answering the given results in turn.
func scripted(rs ...result) (runner, *int) {
	n := 0
	return func(target, string, io.Writer) result {
		r := rs[n]
		n++
		return r
	}, &n
}

func TestFuzzAllRetriesTheBoundaryOnceThenTolerates(t *testing.T) {
	tg := []target{{dir: "ops", name: "FuzzInferRequest"}}
	b := result{output: boundaryOutput, target: "FuzzInferRequest"}
	run, n := scripted(b, b)
	var out strings.Builder
	if code := fuzzAll(tg, "5s", run, &out); code != 0 {
		t.Fatalf("two boundary deadlines: exit %d, want 0\n%s", code, out.String())
	}
	if *n != 2 || !strings.Contains(out.String(), "tolerated") {
		t.Fatalf("runs %d (want 2); output:\n%s", *n, out.String())
	}

	run, n = scripted(b, result{exitOK: true, target: "FuzzInferRequest"})
	if code := fuzzAll(tg, "5s", run, io.Discard); code != 0 || *n != 2 {
		t.Fatalf("boundary then pass: exit %d after %d runs", code, *n)
	}

	run, _ = scripted(b, result{output: crasherOutput, target: "FuzzInferRequest"})
	if code := fuzzAll(tg, "5s", run, io.Discard); code != 1 {
		t.Fatalf("boundary then crasher: exit %d, want 1", code)
	}

	run, n = scripted(result{output: crasherOutput, target: "FuzzInferRequest"}, b)
	if code := fuzzAll(tg, "5s", run, io.Discard); code != 1 || *n != 1 {
		t.Fatalf("crasher: exit %d after %d runs, want 1 after 1 (no retry)", code, *n)
	}
}

// TestRealCrasherFails runs the real `go test -fuzz` on a throwaway module
// whose target panics on any input but its seed: the runner must fail and
// the reproducer must be on disk.
func TestRealCrasherFails(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and fuzzes a module")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	_ = goBin
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module fuzzrunprobe\n\ngo 1.21\n")
	// (The target's declaration is built so that this file does not
	// itself declare a target to findTargets.)
	write("probe_test.go", `package probe

import "testing"

`+"func "+`FuzzCrash(f *testing.F) {
	f.Add([]byte("seed"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if string(b) != "seed" {
			panic("crash on " + string(b))
		}
	})
}
`)
	targets, err := findTargets(dir)
	if err != nil || len(targets) != 1 || targets[0].name != "FuzzCrash" {
		t.Fatalf("findTargets = %v, %v", targets, err)
	}
	var out strings.Builder
	if code := fuzzAll(targets, "30s", goTestFuzz, &out); code != 1 {
		t.Fatalf("a crashing target: exit %d, want 1\n%s", code, out.String())
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "testdata", "fuzz", "FuzzCrash"))
	if len(entries) == 0 {
		t.Fatalf("no reproducer written\n%s", out.String())
	}
	if !strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), "crasher") {
		t.Fatalf("the summary does not name the crasher:\n%s", out.String())
	}
}

func TestFindTargetsInThisModule(t *testing.T) {
	targets, err := findTargets(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tg := range targets {
		names[tg.name] = true
	}
	for _, want := range []string{"FuzzInferRequest", "FuzzReadFrame"} {
		if !names[want] {
			t.Errorf("target %s not found in %v", want, targets)
		}
	}
	if names["FuzzCrash"] {
		t.Errorf("the probe target written by TestRealCrasherFails was taken for one of this module's")
	}
}
