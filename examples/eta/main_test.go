package main

import (
	"testing"

	"github.com/manta-ml/manta/internal/testenv"
)

// The example end to end on a few lanes with the real Python worker.
func TestETA(t *testing.T) {
	testenv.SkipShort(t, "trains models")
	if err := run(3, t.TempDir(), testenv.Python(t)); err != nil {
		t.Fatal(err)
	}
}
