package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchPlacement(t *testing.T) {
	var out, errb bytes.Buffer
	args := []string{"--models", "400", "--cycles", "4", "--drift", "4", "--trace", "5000", "--slack", "1.2"}
	if err := benchPlacement(args, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rendezvous", "knapsack", "manta (+ rebalancer)", "gdsf", "belady", "replicas", "at most 15 per model"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := benchPlacement(append(args, "--json", "--only", "cache"), &out, &errb); err != nil {
		t.Fatal(err)
	}
	var js struct {
		Placement []any `json:"placement"`
		Cache     struct {
			Rows []struct{ Policy string } `json:"rows"`
		} `json:"cache"`
	}
	if err := json.Unmarshal(out.Bytes(), &js); err != nil || len(js.Placement) != 0 || len(js.Cache.Rows) == 0 {
		t.Fatalf("json: %v %+v\n%s", err, js, out.String())
	}
	out.Reset()
	if err := benchPlacement(append(args, "--json", "--only", "placement", "--hot-rate", "0.25", "--max-replicas", "2"), &out, &errb); err != nil {
		t.Fatal(err)
	}
	var rp struct {
		Placement []struct {
			Config struct {
				HotRate     float64 `json:"hot_rate"`
				MaxReplicas int     `json:"max_replicas"`
			} `json:"config"`
			Rows []struct {
				Strategy  string `json:"strategy"`
				Replicas  int    `json:"replicas"`
				TopCopies int    `json:"top_copies"`
			} `json:"rows"`
		} `json:"placement"`
	}
	if err := json.Unmarshal(out.Bytes(), &rp); err != nil || len(rp.Placement) != 1 {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	if c := rp.Placement[0].Config; c.HotRate != 0.25 || c.MaxReplicas != 2 {
		t.Errorf("flags not applied: %+v", c)
	}
	for _, row := range rp.Placement[0].Rows {
		if row.TopCopies > 3 {
			t.Errorf("%s: top model has %d copies, --max-replicas 2 allows 3", row.Strategy, row.TopCopies)
		}
	}
	for _, bad := range [][]string{{"--slack", "x"}, {"--only", "nope"}, {"extra"}, {"--members", "1"}, {"--max-replicas", "-1"}} {
		if err := benchPlacement(bad, &out, &errb); err == nil {
			t.Errorf("%v: no error", bad)
		} else if _, ok := err.(usageError); !ok {
			t.Errorf("%v: %v is not a usage error", bad, err)
		}
	}
}
