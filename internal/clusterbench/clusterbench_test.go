package clusterbench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/manta-ml/manta/internal/testenv"
)

// TestClusterCorrectness runs the harness at 8 member processes × 10,000
// models and asserts correctness only, never timing: every answer of the
// cold and warm stream passes and of the SDK exact, no request failed, every
// member sees every member, every followed model of the member killed with
// -9 answers again (90 s is a liveness bound), and no model active on two
// members at once for longer than a hand-over (the members' activation
// logs).
func TestClusterCorrectness(t *testing.T) {
	testenv.SkipShort(t, "8 manta serve processes, etcd, Redis, 10,000 models")
	for _, bin := range []string{"etcd", "redis-server"} {
		if _, ok := testenv.LookPath(bin); !ok {
			testenv.Missing(t, "%s not found", bin)
		}
	}
	mantaBin := filepath.Join(t.TempDir(), "manta")
	build := exec.Command("go", "build", "-o", mantaBin, "./cmd/manta")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/manta: %v\n%s", err, out)
	}

	cfg := DefaultConfig()
	cfg.Members = 8
	cfg.Models = 10000
	cfg.RequestsPerModel = 2
	cfg.MantaBin = mantaBin
	cfg.Dir = t.TempDir()
	cfg.LatencySamples = 300
	cfg.IdleWindow = 2 * time.Second
	cfg.IdleSettle = -1
	cfg.FailoverTimeout = 90 * time.Second
	cfg.Out = logWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, cfg)
	if rep != nil {
		var b strings.Builder
		rep.WriteTable(&b)
		t.Logf("after %v:\n%s", time.Since(start).Round(time.Second), b.String())
		for _, s := range append(append(rep.Cold.Samples, rep.Warm.Samples...), rep.MemberLogSamples...) {
			t.Logf("sample: %s", s)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Pass{rep.Cold, rep.Warm} {
		if p.Requests != cfg.Models*cfg.RequestsPerModel || p.Answered != p.Requests {
			t.Errorf("%s pass: %d of %d requests answered exactly: %d errors %v, %d wrong, %d missing; %v",
				p.Name, p.Answered, p.Requests, p.Errors, p.ErrorCodes, p.Wrong, p.Missing, p.Samples)
		}
	}
	for i, n := range rep.MembersSeen {
		if n != cfg.Members {
			t.Errorf("member-%d's status listed %d of the %d members: the cluster split", i+1, n, cfg.Members)
		}
	}
	if rep.SDK.Err != "" || rep.SDK.Errors+rep.SDK.Wrong > 0 {
		t.Errorf("SDK requests: %s %d errors, %d wrong of %d (%s)", rep.SDK.Err, rep.SDK.Errors, rep.SDK.Wrong, rep.SDK.Samples, rep.SDK.Sample)
	}
	if !rep.Exact || rep.Failed > 0 {
		t.Errorf("not exact: %d failed requests of %d", rep.Failed, rep.Requests)
	}
	f := rep.Failover
	switch {
	case f == nil || f.Models == 0:
		t.Errorf("no failover measured: %+v", f)
	case f.NeverAnswered > 0 || f.Wrong > 0:
		t.Errorf("after kill -9 %s: %d of %d followed models never answered again within %v (%v), %d wrong answers; failed attempts %v; %v",
			f.Victim, f.NeverAnswered, f.Models, cfg.FailoverTimeout, f.Never, f.Wrong, f.FailedAttempts, f.Samples)
	}
	var lasting []string
	for _, o := range rep.Overlaps {
		if o.Overlap > HandOverSlack {
			lasting = append(lasting, o.String())
		} else {
			t.Logf("hand-over overlap (allowed, under %v): %s", HandOverSlack, o)
		}
	}
	if rep.LastingOverlaps > 0 {
		t.Errorf("%d models active on two members at once for over %v: %v", rep.LastingOverlaps, HandOverSlack, lasting[:min(len(lasting), 10)])
	}
}

// logWriter sends the harness's progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// The checker of the activation logs, on logs written by hand.
func TestCheckActivationLogs(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, lines ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const s = int64(time.Second)
	logs := map[string]string{
		"a": write("a", fmt.Sprint(1*s, " + m1"), fmt.Sprint(5*s, " - m1"), fmt.Sprint(1*s, " + m2"), fmt.Sprint(2*s, " + m3"), "garbage"),
		// m1 overlaps 1 s; m2 runs on b after a was killed at 3 s; m3 opens at 9 s, after end.
		"b": write("b", fmt.Sprint(4*s, " + m1"), fmt.Sprint(6*s, " - m1"), fmt.Sprint(3*s, " + m2"), fmt.Sprint(9*s, " + m3")),
		"c": filepath.Join(dir, "never-written"),
	}
	ov, err := CheckActivationLogs(logs, map[string][]int64{"a": {3 * s}}, 8*s)
	if err != nil {
		t.Fatal(err)
	}
	// a was killed at 3 s: its m1 ends then, so no overlap with b's m1 (4 s..6 s).
	if len(ov) != 0 {
		t.Errorf("with a killed at 3s: %v", ov)
	}
	ov, err = CheckActivationLogs(logs, nil, 8*s)
	if err != nil {
		t.Fatal(err)
	}
	// Not killed: m1 overlaps 1 s (4..5), m2 (a: 1..8, b: 3..8) 5 s.
	want := []string{"m2 on a and b for 5s", "m1 on a and b for 1s"}
	if len(ov) != len(want) {
		t.Fatalf("overlaps %v, want %v", ov, want)
	}
	for i, o := range ov {
		if got := o.String(); got != want[i] && got != strings.Replace(want[i], "on a and b", "on b and a", 1) {
			t.Errorf("overlap %d = %s, want %s", i, got, want[i])
		}
	}
}
