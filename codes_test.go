package manta_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/manta-ml/manta"
)

// TestInvalidModelIDIsBadInput: an id no model can have is bad input, over
// HTTP (400, code bad_input) and in the SDK, and the message states its
// code once (it used to answer not_found with "manta: not_found: manta:
// bad_input: invalid model id …").
func TestInvalidModelIDIsBadInput(t *testing.T) {
	c := startMember(t, t.TempDir(), func(cfg *manta.Config) { cfg.HTTPAddr = "127.0.0.1:0" })
	resp, err := http.Post("http://"+c.HTTPAddr()+"/v1/models/Not.Valid/predict", "application/json", bytes.NewReader([]byte(`{"features":[1]}`)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out manta.ResponseJSON
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest || out.Error == nil || out.Error.Code != "bad_input" {
		t.Fatalf("status %d, error %+v; want 400 bad_input", resp.StatusCode, out.Error)
	}
	checkOneCode(t, out.Error.Message)

	ctx := context.Background()
	_, err = c.Model("Not.Valid").Predict(ctx, []byte(`{}`)).Get(ctx)
	if !errors.Is(err, manta.ErrBadInput) || errors.Is(err, manta.ErrNotFound) {
		t.Fatalf("Predict: err = %v, want ErrBadInput only", err)
	}
	checkOneCode(t, err.Error())
	if _, err := c.Model("../etc").Stats(ctx); !errors.Is(err, manta.ErrBadInput) || errors.Is(err, manta.ErrNotFound) {
		t.Fatalf("Stats: err = %v, want ErrBadInput only", err)
	}
}

// checkOneCode fails unless msg names exactly one code of the closed set,
// once.
func checkOneCode(t *testing.T, msg string) {
	t.Helper()
	n := 0
	for _, code := range []string{"not_found", "bad_input", "load_failed", "too_large", "overloaded", "deadline_exceeded", "internal"} {
		n += strings.Count(msg, "manta: "+code)
	}
	if n != 1 {
		t.Fatalf("message %q states %d codes, want 1", msg, n)
	}
}
