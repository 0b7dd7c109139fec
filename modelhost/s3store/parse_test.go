package s3store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
)

func TestParseURL(t *testing.T) {
	t.Setenv("MANTA_S3_ENDPOINT", "")
	for _, tc := range []struct {
		url     string
		want    func(c *Config) // nil: expect an error
		errHas  string
		errLack string // must not appear in the error
	}{
		{url: "s3://models?endpoint=127.0.0.1:9000&secure=false", want: func(c *Config) {
			c.Bucket, c.Endpoint, c.Secure = "models", "127.0.0.1:9000", false
		}},
		{url: "s3://models/team/a/?endpoint=minio:9000&region=eu-west-1", want: func(c *Config) {
			c.Bucket, c.Prefix, c.Endpoint, c.Region = "models", "team/a", "minio:9000", "eu-west-1"
		}},
		{url: "s3://models?endpoint=h:1&cache_dir=/var/cache/m/&cache_budget=10GiB&workers=8&part_size=8MiB&parallel_threshold=100MB&max_retries=2", want: func(c *Config) {
			c.Bucket, c.Endpoint, c.CacheDir, c.CacheBudget = "models", "h:1", "/var/cache/m", 10<<30
			c.Workers, c.PartSize, c.ParallelThreshold, c.MaxRetries = 8, 8<<20, 100e6, 2
		}},
		{url: "s3://models", errHas: "no endpoint"},
		{url: "http://models?endpoint=h:1", errHas: "scheme"},
		{url: "s3://AKIA:verysecret@models?endpoint=h:1", errHas: "credentials in the store URL", errLack: "verysecret"},
		{url: "s3://models?endpoint=h:1&secret_key=verysecret", errHas: "refused", errLack: "verysecret"},
		{url: "s3://models?endpoint=u:verysecret@h:1", errHas: "endpoint", errLack: "verysecret"},
		{url: "s3://models?endpoint=http://h:1", errHas: "endpoint"},
		{url: "s3://models?endpoint=h:99999", errHas: "port"},
		{url: "s3://models?endpoint=h:1&bogus=1", errHas: "unknown parameter"},
		{url: "s3://models?endpoint=h:1&secure=maybe", errHas: "secure"},
		{url: "s3://models?endpoint=h:1&endpoint=h:2", errHas: "2 times"},
		{url: "s3://models?endpoint=h:1&workers=0", errHas: "workers"},
		{url: "s3://models?endpoint=h:1&cache_budget=-1", errHas: "cache_budget"},
		{url: "s3://models?endpoint=h:1&part_size=10", errHas: "part size"},
		{url: "s3://Models?endpoint=h:1", errHas: "bucket"},
		{url: "s3://a?endpoint=h:1", errHas: "bucket"},
		{url: "s3://models/../etc?endpoint=h:1", errHas: "prefix"},
		{url: "s3://models/a//b?endpoint=h:1", errHas: "prefix"},
		{url: "s3://models/é?endpoint=h:1", errHas: "prefix"},
		{url: "s3://models#frag?endpoint=h:1", errHas: ""},
		{url: "s3:models?endpoint=h:1", errHas: "s3://bucket"},
		{url: "s3://models/%zz?endpoint=h:1", errHas: "malformed"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := ParseURL(tc.url)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("ParseURL(%q) = %v, want an error", tc.url, got)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("error %q does not say %q", err, tc.errHas)
				}
				if tc.errLack != "" && strings.Contains(err.Error(), tc.errLack) {
					t.Fatalf("error %q shows %q", err, tc.errLack)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig()
			tc.want(&want)
			if got != want {
				t.Fatalf("ParseURL(%q) =\n %+v\nwant\n %+v", tc.url, got, want)
			}
		})
	}
	t.Run("endpoint from env", func(t *testing.T) {
		t.Setenv("MANTA_S3_ENDPOINT", "10.0.0.1:9000")
		c, err := ParseURL("s3://models")
		if err != nil || c.Endpoint != "10.0.0.1:9000" {
			t.Fatalf("%+v, %v", c, err)
		}
	})
}

// credentials3 is credentials for tests that expect no error.
func (c Config) credentials3(t *testing.T) (string, string, string) {
	t.Helper()
	a, s, tok, err := c.credentials()
	if err != nil {
		t.Fatal(err)
	}
	return a, s, tok
}

func TestCredentialsFromFiles(t *testing.T) {
	for _, k := range []string{"MANTA_S3_ACCESS_KEY", "MANTA_S3_SECRET_KEY", "MANTA_S3_SESSION_TOKEN",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"} {
		t.Setenv(k, "")
		t.Setenv(k+"_FILE", "")
	}
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("file-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MANTA_S3_ACCESS_KEY", "fromenv")
	t.Setenv("MANTA_S3_SECRET_KEY_FILE", secretFile)
	c := DefaultConfig()
	if a, s, _ := c.credentials3(t); a != "fromenv" || s != "file-secret-value" {
		t.Fatalf("MANTA_S3_SECRET_KEY_FILE: got %q/%q", a, s)
	}
	// Both ways at once is refused, naming the variable, not the value.
	t.Setenv("MANTA_S3_SECRET_KEY", "also-set")
	if _, _, _, err := c.credentials(); err == nil || !strings.Contains(err.Error(), "MANTA_S3_SECRET_KEY") || strings.Contains(err.Error(), "also-set") {
		t.Fatalf("both set: %v", err)
	}
	t.Setenv("MANTA_S3_SECRET_KEY", "")
	// A missing file is an error from Open, not anonymous access.
	t.Setenv("MANTA_S3_SECRET_KEY_FILE", filepath.Join(dir, "nope"))
	c.Endpoint, c.Bucket, c.CacheDir = "127.0.0.1:1", "models", t.TempDir()
	if _, err := Open(context.Background(), c); err == nil || !strings.Contains(err.Error(), "MANTA_S3_SECRET_KEY_FILE") {
		t.Fatalf("missing secret file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MANTA_S3_SECRET_KEY_FILE", empty)
	if _, _, _, err := c.credentials(); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty secret file: %v", err)
	}
}

func TestCredentialsFromEnv(t *testing.T) {
	for _, k := range []string{"MANTA_S3_ACCESS_KEY", "MANTA_S3_SECRET_KEY", "MANTA_S3_SESSION_TOKEN",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"} {
		t.Setenv(k, "")
	}
	c := DefaultConfig()
	if a, s, _ := c.credentials3(t); a != "" || s != "" {
		t.Fatal("credentials from an empty environment")
	}
	t.Setenv("MINIO_ROOT_USER", "root")
	t.Setenv("MINIO_ROOT_PASSWORD", "rootpw")
	if a, s, _ := c.credentials3(t); a != "root" || s != "rootpw" {
		t.Fatalf("MINIO_ROOT_*: %q", a)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "aws")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "awspw")
	t.Setenv("AWS_SESSION_TOKEN", "tok")
	if a, _, tok := c.credentials3(t); a != "aws" || tok != "tok" {
		t.Fatalf("AWS_* should win over MINIO_ROOT_*: %q", a)
	}
	t.Setenv("MANTA_S3_ACCESS_KEY", "manta")
	t.Setenv("MANTA_S3_SECRET_KEY", "mantapw")
	if a, _, tok := c.credentials3(t); a != "manta" || tok != "" {
		t.Fatalf("MANTA_S3_* should win: %q", a)
	}
	c.AccessKey, c.SecretKey = "cfg", "cfgpw"
	if a, _, _ := c.credentials3(t); a != "cfg" {
		t.Fatalf("Config fields should win: %q", a)
	}
	// Half set is refused.
	c.SecretKey = ""
	c.Endpoint, c.Bucket = "h:1", "models"
	if err := c.Validate(); err == nil {
		t.Fatal("access key without secret accepted")
	}
}

func TestConfigJSONHasNoSecrets(t *testing.T) {
	c := DefaultConfig()
	c.Endpoint, c.Bucket, c.AccessKey, c.SecretKey, c.SessionToken = "h:1", "models", "AK", "SK-secret", "TOK-secret"
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"SK-secret", "TOK-secret", `"AK"`} {
		if bytes.Contains(b, []byte(s)) || strings.Contains(fmt.Sprintf("%v %+v %#v %s", c, c, c, c), s) {
			t.Fatalf("config output shows %s: %s", s, b)
		}
	}
}

// badNames are refused as model ids before any request.
var badNames = []string{
	"", ".", "..", "a/b", "../etc", "a/../b", "a..b", "..a", "-a", ".a", "_a", "A", "Eta",
	"mödel", "模型", "a b", "a\x00b", "a\nb", "a\\b", "a%2fb", strings.Repeat("a", 129),
}

// TestRefusedBeforeAnyRequest points the store at an HTTP server that fails
// the test on any request: bad ids, versions and paths must be refused
// with bad_input first.
func TestRefusedBeforeAnyRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request reached the server: %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	cfg := DefaultConfig()
	cfg.Endpoint, cfg.Secure, cfg.Bucket, cfg.CacheDir = u.Host, false, "models", t.TempDir()
	cfg.AccessKey, cfg.SecretKey = "ak", "sk"
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ok := strings.Repeat("a", 128) // the longest valid id
	if err := checkID(ok); err != nil {
		t.Fatalf("128-byte id refused: %v", err)
	}
	type call struct {
		name string
		fn   func() error
	}
	var calls []call
	for _, id := range badNames {
		calls = append(calls,
			call{"Versions " + id, func() error { _, err := s.Versions(ctx, id); return err }},
			call{"Latest " + id, func() error { _, err := s.Latest(ctx, id); return err }},
			call{"Manifest " + id, func() error { _, err := s.Manifest(ctx, id, "1"); return err }},
			call{"Open " + id, func() error { _, err := s.Open(ctx, id, "1", "m.bin"); return err }},
			call{"Put " + id, func() error { return s.Put(ctx, id, "1", "m.bin", strings.NewReader("x"), 1) }},
			call{"SetLatest " + id, func() error { return s.SetLatest(ctx, id, "1") }},
			call{"Delete " + id, func() error { return s.Delete(ctx, id, "") }},
		)
	}
	for _, v := range []string{"", "0", "01", "-1", "1.0", "1/..", "..", "v1", "１", "1234567890123456789", "1 "} {
		calls = append(calls,
			call{"Manifest v=" + v, func() error { _, err := s.Manifest(ctx, "eta", v); return err }},
			call{"Put v=" + v, func() error { return s.Put(ctx, "eta", v, "m.bin", strings.NewReader("x"), 1) }},
			call{"SetLatest v=" + v, func() error { return s.SetLatest(ctx, "eta", v) }},
		)
		if v != "" {
			calls = append(calls, call{"Delete v=" + v, func() error { return s.Delete(ctx, "eta", v) }})
		}
	}
	for _, p := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/", "a\\b", "a\x00", "..", "."} {
		calls = append(calls,
			call{"Open p=" + p, func() error { _, err := s.Open(ctx, "eta", "1", p); return err }},
			call{"Put p=" + p, func() error { return s.Put(ctx, "eta", "1", p, strings.NewReader("x"), 1) }},
			call{"Fetch p=" + p, func() error {
				_, err := s.Fetch(ctx, &modelhost.Manifest{ID: "eta", Version: "1", Runtime: testRuntime, Entrypoint: p,
					Files: []modelhost.File{{Path: p, Size: 1, SHA256: strings.Repeat("a", 64)}}})
				return err
			}},
		)
	}
	for _, c := range calls {
		if err := c.fn(); !errors.Is(err, api.ErrBadInput) {
			t.Errorf("%q: %v, want bad_input", c.name, err)
		}
	}
	if n := s.Stats().Requests; n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

func TestKeysRoundTrip(t *testing.T) {
	for _, prefix := range []string{"", "models", "a/b"} {
		k := newKeys(prefix)
		for _, tc := range []struct{ id, v, path string }{
			{"eta", "1", "model.bin"}, {"a.b-c_d", "123", "sub/dir/w.bin"}, {"x", "9", "manifest.json"},
		} {
			p, ok := k.parse(k.file(tc.id, tc.v, tc.path))
			if !ok || p.ID != tc.id || p.Version != tc.v || p.Path != tc.path || p.Latest {
				t.Errorf("prefix %q: parse(file(%v)) = %+v, %v", prefix, tc, p, ok)
			}
		}
		if p, ok := k.parse(k.latest("eta")); !ok || !p.Latest || p.ID != "eta" {
			t.Errorf("prefix %q: parse(latest) = %+v, %v", prefix, p, ok)
		}
		for _, name := range []string{"", "eta", "eta/", "eta/1", "eta/1/", "eta/01/m", "Eta/1/m", "eta/1/../m", "eta/LATESTX", "other/eta/1/m"} {
			if prefix != "" {
				name = prefix + "/" + name
			}
			if p, ok := k.parse(name); ok {
				t.Errorf("parse(%q) = %+v, want not in the layout", name, p)
			}
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"s3://models/p?endpoint=127.0.0.1:9000&secure=false",
		"s3://u:pw@b?endpoint=h:1", "s3://b/../x?endpoint=h:1", "s3://b?endpoint=h:1&cache_budget=1GiB",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := ParseURL(raw)
		if err != nil {
			if u, perr := url.Parse(raw); perr == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && len(pw) > 3 && strings.Contains(err.Error(), pw) {
					t.Fatalf("error shows the password: %v", err)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseURL accepted an invalid config: %v", err)
		}
		if c.AccessKey != "" || c.SecretKey != "" {
			t.Fatal("credentials taken from the URL")
		}
		if validPrefix(c.Prefix) != nil || strings.Contains(c.Prefix, "..") && slices.Contains(strings.Split(c.Prefix, "/"), "..") {
			t.Fatalf("prefix %q accepted", c.Prefix)
		}
	})
}

// FuzzKeys: whatever id/version/path are accepted, the key built from them
// stays under the root and parses back to the same triple.
func FuzzKeys(f *testing.F) {
	f.Add("eta", "1", "model.bin")
	f.Add("a..b", "01", "../x")
	f.Add("é", "1", "a/b")
	f.Fuzz(func(t *testing.T, id, v, path string) {
		k := newKeys("root")
		if checkID(id) != nil || checkVersion(v) != nil || checkPath(path) != nil {
			return
		}
		key := k.file(id, v, path)
		if !strings.HasPrefix(key, "root/"+id+"/"+v+"/") || slices.Contains(strings.Split(key, "/"), "..") {
			t.Fatalf("key %q escapes", key)
		}
		p, ok := k.parse(key)
		if !ok || p.ID != id || p.Version != v || p.Path != path {
			t.Fatalf("parse(%q) = %+v, %v", key, p, ok)
		}
	})
}

func TestParseEvent(t *testing.T) {
	k := newKeys("models")
	ev := func(name, bucket, key string) string {
		return fmt.Sprintf(`{"EventName":%q,"Key":%q,"Records":[{"eventName":%q,"s3":{"bucket":{"name":%q},"object":{"key":%q}}}]}`,
			name, bucket+"/"+key, name, bucket, url.QueryEscape(key))
	}
	for _, tc := range []struct {
		body string
		want []string
		err  bool
	}{
		{ev("s3:ObjectCreated:Put", "b", "models/eta/3/manifest.json"), []string{"eta"}, false},
		{ev("s3:ObjectCreated:CompleteMultipartUpload", "b", "models/eta/LATEST"), []string{"eta"}, false},
		{ev("s3:ObjectRemoved:Delete", "b", "models/eta/3/manifest.json"), []string{"eta"}, false},
		{ev("s3:ObjectCreated:Put", "b", "models/eta/3/model.bin"), nil, false},
		{ev("s3:ObjectAccessed:Get", "b", "models/eta/LATEST"), nil, false},
		{ev("s3:ObjectCreated:Put", "other", "models/eta/LATEST"), nil, false},
		{ev("s3:ObjectCreated:Put", "b", "elsewhere/eta/LATEST"), nil, false},
		{ev("s3:ObjectCreated:Put", "b", "models/../eta/LATEST"), nil, false},
		{ev("s3:ObjectCreated:Put", "b", "models/Eta/1/manifest.json"), nil, false},
		{`{"EventName":"s3:ObjectCreated:Put","Key":"b/models/fraud/LATEST"}`, []string{"fraud"}, false},
		{`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"models%2Fb%2F1%2Fmanifest.json"}}},
		  {"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"models%2Fa%2FLATEST"}}},
		  {"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"models%2Fa%2F2%2Fmanifest.json"}}}]}`, []string{"a", "b"}, false},
		{`not json`, nil, true},
		{`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`, nil, true},
	} {
		got, err := parseEvent([]byte(tc.body), "b", k)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("parseEvent(%s) = %v, %v; want %v (error %v)", tc.body, got, err, tc.want, tc.err)
		}
	}
}

func TestWebhookHandlerHTTP(t *testing.T) {
	s := &Store{cfg: Config{Bucket: "b"}, keys: newKeys("")}
	var got []string
	h := s.WebhookHandler(func(id string) { got = append(got, id) }, WebhookToken("t"))
	body := `{"EventName":"s3:ObjectCreated:Put","Key":"b/eta/LATEST"}`
	for _, tc := range []struct {
		method, auth, body string
		code               int
	}{
		{"HEAD", "", "", 200},
		{"PUT", "Bearer t", body, 405},
		{"POST", "", body, 401},
		{"POST", "Bearer wrong", body, 401},
		{"POST", "Bearer t", "{", 400},
		{"POST", "Bearer t", body, 200},
	} {
		r := httptest.NewRequest(tc.method, "/hook", strings.NewReader(tc.body))
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.code {
			t.Errorf("%s auth=%q: %d, want %d", tc.method, tc.auth, w.Code, tc.code)
		}
	}
	if !slices.Equal(got, []string{"eta"}) {
		t.Fatalf("changes %v", got)
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"EventName":"s3:ObjectCreated:Put","Key":"b/models/eta/LATEST"}`))
	f.Add([]byte(`{"Records":[{"eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"models%2Fa%2F1%2Fmanifest.json"}}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, err := parseEvent(body, "b", newKeys("models"))
		if err != nil {
			return
		}
		for _, id := range ids {
			if checkID(id) != nil {
				t.Fatalf("invalid id %q from an event", id)
			}
		}
	})
}
