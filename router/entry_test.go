package router

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/redact"
)

func TestParseEntry(t *testing.T) {
	ok := func(extra ...string) map[string]interface{} {
		f := map[string]interface{}{"model": "eta-eu", "id": "r1", "payload": `{"features":[1]}`}
		for i := 0; i+1 < len(extra); i += 2 {
			if extra[i+1] == "<del>" {
				delete(f, extra[i])
				continue
			}
			f[extra[i]] = extra[i+1]
		}
		return f
	}
	tests := []struct {
		name   string
		fields map[string]interface{}
		reason string // "" for a valid entry
		check  func(t *testing.T, e Entry)
	}{
		{"minimal", ok(), "", func(t *testing.T, e Entry) {
			if e.Model != "eta-eu" || e.ID != "r1" || string(e.Payload) != `{"features":[1]}` ||
				e.ContentType != DefaultContentType || e.ReplyTo != "" || e.Deadline != 0 || e.Strategy != "" {
				t.Errorf("entry = %+v", e)
			}
		}},
		{"all fields", ok("content_type", "application/x-msgpack", "reply_to", "res:42", "deadline_ms", "250", "extra", "ignored"), "",
			func(t *testing.T, e Entry) {
				if e.ContentType != "application/x-msgpack" || e.ReplyTo != "res:42" || e.Deadline != 250*time.Millisecond {
					t.Errorf("entry = %+v", e)
				}
			}},
		{"speculative", ok("strategy", "hedged", "models", "a, b,c"), "", func(t *testing.T, e Entry) {
			if e.Strategy != "hedged" || strings.Join(e.Models, "|") != "a|b|c" || e.Model != "eta-eu" {
				t.Errorf("entry = %+v", e)
			}
		}},
		{"speculative without model", ok("model", "<del>", "strategy", "hedged", "models", "a,b"), "", func(t *testing.T, e Entry) {
			if e.Model != "a" {
				t.Errorf("model = %q, want the first of models", e.Model)
			}
		}},
		{"bytes values", map[string]interface{}{"model": []byte("m"), "id": []byte("1"), "payload": []byte("x")}, "", nil},
		{"missing model", ok("model", "<del>"), ReasonMissingModel, nil},
		{"empty model", ok("model", ""), ReasonMissingModel, nil},
		{"upper-case model", ok("model", "Eta"), ReasonBadModelID, nil},
		{"model with ..", ok("model", "a..b"), ReasonBadModelID, nil},
		{"model with /", ok("model", "a/b"), ReasonBadModelID, nil},
		{"model too long", ok("model", strings.Repeat("a", 129)), ReasonBadModelID, nil},
		{"missing id", ok("id", "<del>"), ReasonMissingID, nil},
		{"id too long", ok("id", strings.Repeat("x", MaxIDBytes+1)), ReasonBadID, nil},
		{"id with newline", ok("id", "a\nb"), ReasonBadID, nil},
		{"id not utf-8", ok("id", "\xff"), ReasonBadID, nil},
		{"missing payload", ok("payload", "<del>"), ReasonMissingPayload, nil},
		{"empty payload", ok("payload", ""), ReasonMissingPayload, nil},
		{"bad content type", ok("content_type", "json;;"), ReasonBadContentType, nil},
		{"empty reply_to", ok("reply_to", ""), ReasonBadReplyTo, nil},
		{"reply_to with space", ok("reply_to", "a b"), ReasonBadReplyTo, nil},
		{"deadline not a number", ok("deadline_ms", "soon"), ReasonBadDeadline, nil},
		{"deadline with unit", ok("deadline_ms", "5s"), ReasonBadDeadline, nil},
		{"deadline zero", ok("deadline_ms", "0"), ReasonBadDeadline, nil},
		{"deadline negative", ok("deadline_ms", "-5"), ReasonBadDeadline, nil},
		{"deadline overflow", ok("deadline_ms", "99999999999999999999"), ReasonBadDeadline, nil},
		{"bad strategy", ok("strategy", "Hedged!", "models", "a"), ReasonBadStrategy, nil},
		{"strategy without models", ok("strategy", "hedged"), ReasonMissingModels, nil},
		{"bad model in models", ok("strategy", "hedged", "models", "a,,b"), ReasonBadModels, nil},
		{"too many models", ok("strategy", "hedged", "models", strings.Repeat("a,", MaxModels)+"a"), ReasonBadModels, nil},
		{"models without strategy", ok("models", "a,b"), ReasonModelsNoStrategy, nil},
		{"non-string value", map[string]interface{}{"model": 7, "id": "1", "payload": "x"}, ReasonBadFieldType, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseEntry(tt.fields)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("ParseEntry: %v", err)
				}
				if tt.check != nil {
					tt.check(t, e)
				}
				return
			}
			var ee *EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("err = %v, want an *EntryError with reason %s", err, tt.reason)
			}
			if ee.Reason != tt.reason {
				t.Errorf("reason = %s, want %s (%v)", ee.Reason, tt.reason, err)
			}
			if !errors.Is(err, api.ErrBadInput) {
				t.Errorf("err %v does not wrap api.ErrBadInput", err)
			}
		})
	}
}

func TestParseEntryPayloadLimit(t *testing.T) {
	f := map[string]interface{}{"model": "m", "id": "1", "payload": strings.Repeat("x", 11)}
	if _, err := parseEntry(f, 10); err == nil || err.(*EntryError).Reason != ReasonPayloadTooLarge {
		t.Fatalf("err = %v, want payload_too_large", err)
	}
	if _, err := parseEntry(f, 11); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
}

func FuzzParseEntry(f *testing.F) {
	f.Add("eta-eu", "r1", `{"features":[1,2]}`, "", "", "", "", "")
	f.Add("m", "1", "x", "application/json", "res", "100", "hedged", "a,b")
	f.Add("", "", "", "a/b;c=d", " ", "-1", "x", ",")
	f.Add("a..b", "\x00", "p", "", "", "9223372036854775808", "", "m")
	f.Fuzz(func(t *testing.T, model, id, payload, ct, replyTo, deadline, strategy, models string) {
		fields := map[string]interface{}{}
		for k, v := range map[string]string{
			FieldModel: model, FieldID: id, FieldPayload: payload, FieldContentType: ct,
			FieldReplyTo: replyTo, FieldDeadlineMS: deadline, FieldStrategy: strategy, FieldModels: models,
		} {
			if v != "" {
				fields[k] = v
			}
		}
		e, err := ParseEntry(fields)
		if err != nil {
			var ee *EntryError
			if !errors.As(err, &ee) || ee.Reason == "" {
				t.Fatalf("error %v is not an *EntryError with a reason", err)
			}
			return
		}
		// What passes must satisfy every rule the router relies on.
		if !validModelID(e.Model) || e.ID == "" || len(e.ID) > MaxIDBytes || !printable(e.ID) {
			t.Fatalf("accepted bad model or id: %+v", e)
		}
		if len(e.Payload) == 0 || string(e.Payload) != payload {
			t.Fatalf("payload changed: %q", e.Payload)
		}
		if e.Deadline < 0 || e.Deadline > MaxDeadlineMS*time.Millisecond {
			t.Fatalf("deadline %v out of range", e.Deadline)
		}
		if e.ReplyTo != replyTo || strings.ContainsAny(e.ReplyTo, " \r\n") {
			t.Fatalf("reply_to %q", e.ReplyTo)
		}
		if (e.Strategy == "") != (len(e.Models) == 0) {
			t.Fatalf("strategy %q with models %q", e.Strategy, e.Models)
		}
		for _, m := range e.Models {
			if !validModelID(m) {
				t.Fatalf("accepted bad model %q in models", m)
			}
		}
	})
}

func FuzzValidName(f *testing.F) {
	strategy := regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	for _, s := range []string{"", "a", "eta-eu.v2_x", "-a", "A", "a..b", "a/b", "a\n", strings.Repeat("a", 128), strings.Repeat("a", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validStrategy(s), strategy.MatchString(s); got != want {
			t.Fatalf("validStrategy(%q) = %v, want %v", s, got, want)
		}
	})
}

func TestFormatError(t *testing.T) {
	tests := []struct {
		in   *api.Error
		want string
	}{
		{nil, ""},
		{&api.Error{}, ""},
		{&api.Error{Code: api.ErrorCode_ERROR_CODE_NOT_FOUND, Message: "model x"}, "not_found: model x"},
		{&api.Error{Code: api.ErrorCode_ERROR_CODE_NOT_FOUND, Message: "manta: not_found: model x"}, "not_found: model x"},
		{&api.Error{Code: api.ErrorCode_ERROR_CODE_BAD_INPUT}, "bad_input"},
		{&api.Error{Message: "boom"}, "internal: boom"},
		{api.ErrorFrom(api.Errorf(api.ErrorCode_ERROR_CODE_LOAD_FAILED, "sha256 mismatch")), "load_failed: sha256 mismatch"},
	}
	for _, tt := range tests {
		if got := formatError(tt.in); got != tt.want {
			t.Errorf("formatError(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := []func(c *Config){
		func(c *Config) { c.Streams = nil },
		func(c *Config) { c.Streams = []string{"a", "a"} },
		func(c *Config) { c.Group = "" },
		func(c *Config) { c.Consumer = "" },
		func(c *Config) { c.BatchSize = 0 },
		func(c *Config) { c.InFlight = -1 },
		func(c *Config) { c.Block = 0 },
		func(c *Config) { c.MaxDeliveries = 0 },
		func(c *Config) { c.DeadStream = c.Streams[0] },
		func(c *Config) { c.ResultStream = c.Streams[0] },
		func(c *Config) { c.MaxDeadline = c.MinIdle },
		func(c *Config) { c.DefaultDeadline = c.MaxDeadline + 1 },
		func(c *Config) { c.RetryMin = 0 },
		func(c *Config) { c.RetryMax = c.RetryMin - 1 },
		func(c *Config) { c.MaxPayloadBytes = 0 },
	}
	for i, mut := range bad {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("bad config %d validated", i)
		}
	}
}

func TestRedisOptions(t *testing.T) {
	c := DefaultConfig()
	c.URL = "rediss://alice:s3cret@redis.example:6380/3"
	opt, err := c.RedisOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opt.TLSConfig == nil || opt.Username != "alice" || opt.Password != "s3cret" || opt.DB != 3 || opt.Addr != "redis.example:6380" {
		t.Errorf("options = addr %s user %s db %d tls %v", opt.Addr, opt.Username, opt.DB, opt.TLSConfig != nil)
	}
	if got := redact.URL(c.URL); strings.Contains(got, "s3cret") {
		t.Errorf("redact.URL = %s", got)
	}
	for _, u := range []string{"redis://alice:s3cret@host:notaport/0", "http://alice:s3cret@host/0", "redis://:s3cret@host/x"} {
		c.URL = u
		_, err := c.RedisOptions()
		if err == nil {
			t.Errorf("%s: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
