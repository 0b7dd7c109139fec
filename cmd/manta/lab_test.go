package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestLab(t *testing.T) {
	var out, errb bytes.Buffer
	if err := cmdLab([]string{"-scenario", "fallback", "-requests", "300"}, &out, &errb); err != nil {
		t.Fatalf("lab: %v (%s)", err, errb.String())
	}
	for _, want := range []string{"manta lab: 300 requests", "p99.9", "deadline-fallback"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestLabUsage(t *testing.T) {
	var out, errb bytes.Buffer
	for _, args := range [][]string{{"-scenario", "nope"}, {"-trial", "no-such-strategy:m"}, {"extra"}, {"-requests", "x"}} {
		err := cmdLab(args, &out, &errb)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
	if err := cmdLab([]string{"-h"}, &out, &errb); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: err = %v, want flag.ErrHelp", err)
	}
}
