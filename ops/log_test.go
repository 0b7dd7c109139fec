package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/manta-ml/manta/ops"
)

// TestLoggerJSONRedactsAndCarriesRequestID: the JSON logger drops
// secrets from attributes and messages' values and adds the context's
// request id.
func TestLoggerJSONRedactsAndCarriesRequestID(t *testing.T) {
	var buf bytes.Buffer
	l, err := ops.NewLogger(&buf, ops.LogConfig{Format: "json", Level: "info"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ops.ContextWithRequestID(context.Background(), "req-42")
	l.DebugContext(ctx, "hidden")
	l.With("component", "router").ErrorContext(ctx, "redis down",
		slog.String("url", "redis://:topsecret@10.0.0.1:6379"),
		slog.String("password", "pw"),
		slog.Any("err", errors.New("auth failed for token=abc")))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if strings.Contains(buf.String(), "hidden") {
		t.Error("debug record logged at info level")
	}
	if rec["request_id"] != "req-42" || rec["component"] != "router" || rec["level"] != "ERROR" {
		t.Errorf("record %v", rec)
	}
	for _, secret := range []string{"topsecret", `"pw"`, "abc"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("secret %s logged: %s", secret, buf.String())
		}
	}
	if _, err := ops.NewLogger(&buf, ops.LogConfig{Format: "xml"}); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := ops.NewLogger(&buf, ops.LogConfig{Level: "loud"}); err == nil {
		t.Error("level loud accepted")
	}
	if lv, err := ops.ParseLevel("warn"); err != nil || lv != slog.LevelWarn {
		t.Errorf("ParseLevel(warn) = %v, %v", lv, err)
	}
}

// TestRequestIDMiddleware: ids are kept when well-formed, made otherwise,
// echoed, and failures are logged with them.
func TestRequestIDMiddleware(t *testing.T) {
	var buf syncBuffer
	l, err := ops.NewLogger(&buf, ops.LogConfig{Format: "text"})
	if err != nil {
		t.Fatal(err)
	}
	var seen string
	h := ops.RequestID(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = ops.RequestIDFrom(r.Context())
		if r.URL.Path == "/fail" {
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path, id string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if id != "" {
			req.Header.Set(ops.RequestIDHeader, id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := get("/ok", "abc-1"); resp.Header.Get(ops.RequestIDHeader) != "abc-1" || seen != "abc-1" {
		t.Errorf("kept id: header %q seen %q", resp.Header.Get(ops.RequestIDHeader), seen)
	}
	if resp := get("/ok", "bad id!"); len(resp.Header.Get(ops.RequestIDHeader)) != 16 || seen == "bad id!" {
		t.Errorf("malformed id not replaced: %q", resp.Header.Get(ops.RequestIDHeader))
	}
	get("/fail", "fail-7")
	logs := buf.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "request_id=fail-7") || !strings.Contains(logs, "status=500") {
		t.Errorf("failure not logged with its request id:\n%s", logs)
	}
	if strings.Contains(logs, "abc-1") {
		t.Errorf("a success logged at info:\n%s", logs)
	}
}
