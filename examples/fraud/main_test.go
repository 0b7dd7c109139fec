package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func init() { registerEnsemble(1) }

// TestRun runs the example briefly: every transaction is answered, by one
// of the two models, and the report says how often each answered.
func TestRun(t *testing.T) {
	o := defaults()
	o.Requests, o.Concurrency = 200, 8
	// Under the race detector a 30 ms budget is mostly fallbacks; the
	// example's point (both paths answer, the report adds up) holds.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	answered := 0
	for who, n := range s.Answered {
		if !strings.HasPrefix(who, ensembleID+" v1") && !strings.HasPrefix(who, fallbackID+" v1") {
			t.Errorf("answered by %q", who)
		}
		answered += n
	}
	failed := 0
	for _, n := range s.Errors {
		failed += n
	}
	if answered+failed != o.Requests || answered == 0 {
		t.Fatalf("%d answered, %d failed, of %d", answered, failed, o.Requests)
	}
	if s.Stats.Requests != int64(o.Requests) || s.Stats.Calls < s.Stats.Requests {
		t.Fatalf("strategy stats %+v", s.Stats)
	}
	var out bytes.Buffer
	s.print(&out, o)
	for _, want := range []string{"answered by ", "over the 30ms budget", "calls per request"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

func TestBadOptions(t *testing.T) {
	o := defaults()
	o.Requests = 0
	if _, err := run(context.Background(), o); err == nil {
		t.Fatal("no error for zero requests")
	}
}
