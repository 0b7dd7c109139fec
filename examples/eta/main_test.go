package main

import (
	"testing"

	"github.com/manta-ml/manta/internal/testenv"
)

// The example end to end on a few lanes: XGBoost models served by the
// native xgboost runtime (the default), then sklearn models through the
// real Python worker (-model sklearn).
func TestETA(t *testing.T) {
	testenv.SkipShort(t, "trains models")
	if err := run(3, t.TempDir(), testenv.PythonWith(t, "xgboost"), "xgboost"); err != nil {
		t.Fatal(err)
	}
}

func TestETASklearn(t *testing.T) {
	testenv.SkipShort(t, "trains models")
	if err := run(3, t.TempDir(), testenv.Python(t), "sklearn"); err != nil {
		t.Fatal(err)
	}
}
