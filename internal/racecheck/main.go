// Command racecheck runs `go test -race -json` and fails on every real
// failure, while telling apart data races that live only inside libraries.
//
// protoactor-go (and grpc under it) has data races of its own: in grpclog,
// the member list, disthash, the receive-timeout timer. The race detector
// fails any test during which such a race is reported, even when no Manta
// code takes part. The rule applied here:
//
//   - A race report is Manta's when, in either of its two access stacks (the
//     "Write at"/"Read at" and "Previous ... at" sections, not the
//     "Goroutine created at" sections), the innermost frame outside the
//     standard library is in github.com/manta-ml/manta: that is the code that
//     touched the memory. Such a report always fails the run. (Manta frames
//     lower in a stack, e.g. Manta calling protoactor's StartMember which
//     then races inside grpclog, do not make the race Manta's.)
//   - A test that failed and whose race reports are all library-only is run
//     again WITHOUT the race detector; it must pass there. So a library race
//     can never hide a real failure, and a Manta race can never pass.
//
// Usage: go run ./internal/racecheck [go test flags and packages]
// It prints failing tests' output, each package's result and a closing line
// "N passed, N failed".
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
)

const mantaModule = "github.com/manta-ml/manta"

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type testKey struct{ pkg, test string }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

func run(args []string, out io.Writer) int {
	testArgs := append([]string{"test", "-race", "-json"}, args...)
	cmd := exec.Command("go", testArgs...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(out, "racecheck:", err)
		return 2
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(out, "racecheck:", err)
		return 2
	}
	outputs := map[testKey]*bytes.Buffer{}
	failed := map[testKey]bool{}
	passed := 0
	pkgFailed := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			fmt.Fprintln(out, sc.Text()) // build errors and such
			continue
		}
		k := testKey{ev.Package, ev.Test}
		switch ev.Action {
		case "output":
			b := outputs[k]
			if b == nil {
				b = &bytes.Buffer{}
				outputs[k] = b
			}
			if b.Len() < 8<<20 {
				b.WriteString(ev.Output)
			}
		case "pass":
			if ev.Test != "" {
				passed++
			} else {
				fmt.Fprintf(out, "ok  \t%s\t%.1fs\n", ev.Package, ev.Elapsed)
			}
		case "skip":
			if ev.Test == "" {
				fmt.Fprintf(out, "?   \t%s\t[no test files]\n", ev.Package)
			}
		case "fail":
			if ev.Test != "" {
				failed[k] = true
			} else {
				pkgFailed[ev.Package] = true
				fmt.Fprintf(out, "FAIL\t%s\t%.1fs\n", ev.Package, ev.Elapsed)
			}
		}
	}
	_ = cmd.Wait()

	// Only top-level tests are re-run; a failed subtest fails its parent.
	var realFailures []string
	reruns := map[string][]string{} // package -> top-level tests
	mantaRaces := 0
	var keys []testKey
	for k := range failed {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].pkg+keys[i].test < keys[j].pkg+keys[j].test })
	for _, k := range keys {
		text := outputs[k].String()
		races := raceReports(text)
		manta := 0
		for _, r := range races {
			if mantaFrame(r) {
				manta++
			}
		}
		mantaRaces += manta
		top := strings.SplitN(k.test, "/", 2)[0]
		switch {
		case manta > 0:
			realFailures = append(realFailures, k.pkg+" "+k.test+" (data race in Manta code)")
			fmt.Fprintf(out, "--- FAIL: %s %s: data race involving Manta code\n%s\n", k.pkg, k.test, text)
		case len(races) > 0 && strings.Contains(text, "race detected during execution of test"):
			if top == k.test {
				reruns[k.pkg] = append(reruns[k.pkg], top)
			}
			fmt.Fprintf(out, "racecheck: %s %s: %d race report(s) inside libraries only; re-running without -race\n", k.pkg, k.test, len(races))
		default:
			if top == k.test || !failed[testKey{k.pkg, top}] {
				realFailures = append(realFailures, k.pkg+" "+k.test)
			}
			fmt.Fprintf(out, "--- FAIL: %s %s\n%s\n", k.pkg, k.test, text)
		}
	}
	// A package that failed with no failing test (a panic, a race after the
	// tests, a build error) counts unless all it shows is library races.
	for pkg := range pkgFailed {
		anyTest := false
		for k := range failed {
			if k.pkg == pkg {
				anyTest = true
			}
		}
		if anyTest {
			continue
		}
		text := ""
		if b := outputs[testKey{pkg, ""}]; b != nil {
			text = b.String()
		}
		races := raceReports(text)
		lib := len(races) > 0 && !strings.Contains(text, "panic:")
		for _, r := range races {
			if mantaFrame(r) {
				lib = false
				mantaRaces++
			}
		}
		if !lib {
			realFailures = append(realFailures, pkg+" (package)")
			fmt.Fprintf(out, "--- FAIL: %s\n%s\n", pkg, text)
		} else {
			fmt.Fprintf(out, "racecheck: %s: library-only race reports outside tests; accepted\n", pkg)
		}
	}
	rerunPassed := 0
	for pkg, tests := range reruns {
		sort.Strings(tests)
		pattern := "^(" + strings.Join(tests, "|") + ")$"
		rc := exec.Command("go", "test", "-count=1", "-run", pattern, pkg)
		b, err := rc.CombinedOutput()
		if err != nil {
			realFailures = append(realFailures, pkg+" "+strings.Join(tests, ",")+" (fails without -race too)")
			fmt.Fprintf(out, "--- FAIL (without -race): %s %s\n%s\n", pkg, pattern, b)
			continue
		}
		rerunPassed += len(tests)
		fmt.Fprintf(out, "racecheck: %s %s pass without -race: library races only\n", pkg, pattern)
	}
	fmt.Fprintf(out, "racecheck: %d Manta race report(s); %d test(s) re-run after library-only races\n", mantaRaces, rerunPassed)
	nFailed := len(realFailures)
	fmt.Fprintf(out, "%d passed, %d failed\n", passed+rerunPassed, nFailed)
	if nFailed > 0 {
		for _, f := range realFailures {
			fmt.Fprintln(out, "FAILED:", f)
		}
		return 1
	}
	return 0
}

// raceReports splits the race detector's reports out of a test's output.
func raceReports(text string) []string {
	var out []string
	for {
		i := strings.Index(text, "WARNING: DATA RACE")
		if i < 0 {
			return out
		}
		text = text[i:]
		j := strings.Index(text, "==================")
		if j < 0 {
			out = append(out, text)
			return out
		}
		out = append(out, text[:j])
		text = text[j:]
	}
}

// mantaFrame reports whether, in an access stack of a race report (before
// the first "Goroutine N ... created at" section), the innermost frame
// outside the standard library is Manta's.
func mantaFrame(report string) bool {
	access := report
	if i := strings.Index(report, "\nGoroutine "); i >= 0 {
		access = report[:i]
	}
	decided := false // the current stack's innermost non-std frame was seen
	for _, line := range strings.Split(access, "\n") {
		l := strings.TrimSpace(line)
		if strings.Contains(l, " at 0x") || strings.HasPrefix(l, "Previous ") || strings.HasPrefix(l, "Read at") || strings.HasPrefix(l, "Write at") {
			decided = false // a new access stack starts
			continue
		}
		if decided || l == "" || strings.HasPrefix(l, "/") || !strings.HasSuffix(l, ")") {
			continue // file:line lines, blank lines
		}
		parts := strings.SplitN(l, "/", 2)
		if len(parts) < 2 || !strings.Contains(parts[0], ".") {
			continue // standard library: runtime.x, sync.x, internal/...
		}
		decided = true
		if strings.HasPrefix(l, mantaModule+"/") || strings.HasPrefix(l, mantaModule+".") || strings.HasPrefix(l, mantaModule+"_test.") {
			return true
		}
	}
	return false
}
