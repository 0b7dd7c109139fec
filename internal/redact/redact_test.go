package redact

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"redis://:hunter2@127.0.0.1:6379/0", "redis://:[REDACTED]@127.0.0.1:6379/0"},
		{"dial redis://app:s3cr3t@redis:6379: refused", "dial redis://app:[REDACTED]@redis:6379: refused"},
		{"GET https://minio:9000/models/x?X-Amz-Signature=abcdef&X-Amz-Date=2026", "GET https://minio:9000/models/x?X-Amz-Signature=[REDACTED]&X-Amz-Date=2026"},
		{"Authorization: Bearer eyJhbGciOi.payload.sig", "Authorization: Bearer [REDACTED]"},
		{`{"password": "pw1", "user": "u"}`, `{"password": "[REDACTED]", "user": "u"}`},
		{"MANTA_S3_SECRET_KEY=abc123 MANTA_STORE=s3://m", "MANTA_S3_SECRET_KEY=[REDACTED] MANTA_STORE=s3://m"},
		{"api_key=xyz&q=1", "api_key=[REDACTED]&q=1"},
		{"model eta-eu v3: verify model.joblib: sha256 mismatch", "model eta-eu v3: verify model.joblib: sha256 mismatch"},
		{"http://127.0.0.1:8080/v1/status", "http://127.0.0.1:8080/v1/status"},
		{"", ""},
	}
	for _, c := range cases {
		if got := Text(c.in); got != c.want {
			t.Errorf("Text(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://user:pw@h:6379/1":                                                   "redis://user:[REDACTED]@h:6379/1",
		"rediss://:pw@h:6380/0?dial_timeout=1s":                                      "rediss://:[REDACTED]@h:6380/0?dial_timeout=1s",
		"s3://models/p?endpoint=m:9000&token=t0k":                                    "s3://models/p?endpoint=m:9000&token=[REDACTED]",
		"s3://b/p?access_key=AK&secret_key=SK&region=eu&key=k1&sig=s":                "s3://b/p?access_key=[REDACTED]&secret_key=[REDACTED]&region=eu&key=[REDACTED]&sig=[REDACTED]",
		"https://m/o?X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=ab12&X-Amz-Date=1": "https://m/o?X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]&X-Amz-Date=1",
		// pairs the standard query parser drops are still redacted
		"redis://h/0?token=a;b=1&password=%zz": "redis://h/0?token=[REDACTED];b=1&password=[REDACTED]",
		"user:secret@tcp(db:3306)/app":         "user:[REDACTED]@tcp(db:3306)/app",
		"http://h/x?a=1":                       "http://h/x?a=1",
		"not a url with password=pw":           "not a url with password=[REDACTED]",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsSecretKey(t *testing.T) {
	for name, want := range map[string]bool{
		"password": true, "AWS_SECRET_ACCESS_KEY": true, "X-Amz-Signature": true, "redis_password": true,
		"api-key": true, "Authorization": true, "access_key": true, "X-Amz-Credential": true,
		"model": false, "tokens_used": false, "endpoint": false, "key": false,
	} {
		if got := IsSecretKey(name); got != want {
			t.Errorf("IsSecretKey(%q) = %v", name, got)
		}
	}
}

// secretParams are query parameter names whose values URL must hide.
var secretParams = []string{
	"password", "secret", "token", "key", "signature", "X-Amz-Signature", "X-Amz-Credential",
	"X-Amz-Security-Token", "access_key", "secret_key", "api_key", "apikey", "accessKey", "client_secret",
	"sig", "auth", "credential", "AWS_SECRET_ACCESS_KEY", "session_token", "pass", "pwd",
}

// FuzzURL builds a URL with a userinfo password and a secret-named query
// parameter (in a random spelling of its case) among ordinary ones, and
// checks that URL never panics and that neither secret survives in any
// spelling (raw or escaped), unless that spelling also occurs in the parts
// of the URL that are not secret (as given, or as URL rewrites them).
func FuzzURL(f *testing.F) {
	f.Add("redis", "alice", "s3cret", uint8(0), uint8(0), "hunter2", "db=1")
	f.Add("s3", "", "", uint8(4), uint8(1), "AKIA/2026+x", "endpoint=127.0.0.1:9000")
	f.Add("https", "u", "p@ss:w/o?r#d", uint8(5), uint8(3), "a;b=c&d", "X-Amz-Date=20260101")
	f.Add("rediss", "bob", "[REDACTED]x", uint8(3), uint8(2), "%zz%", "a=1;b=2")
	f.Add("http", "x", "y", uint8(200), uint8(255), "v a l", "")
	f.Fuzz(func(t *testing.T, scheme, user, pass string, keyIdx, caseMask uint8, value, rest string) {
		if scheme == "" || !isScheme(scheme) {
			scheme = "redis"
		}
		key := []byte(secretParams[int(keyIdx)%len(secretParams)])
		for i := range key {
			if caseMask&(1<<(i%8)) != 0 {
				key[i] = flipCase(key[i])
			}
		}
		build := func(pass, value string) string {
			u := url.URL{Scheme: scheme, Host: "host.example:6379", Path: "/0"}
			if pass != "" || user != "" {
				u.User = url.UserPassword(user, pass)
			}
			q := url.QueryEscape(string(key)) + "=" + url.QueryEscape(value)
			if rest != "" {
				q = rest + "&" + q + "&" + rest
			}
			u.RawQuery = q
			return u.String()
		}
		in := build(pass, value)
		out := URL(in) // must not panic
		_ = Text(in)
		if _, err := url.Parse(in); err != nil {
			return // the fuzzer's rest broke the URL; only no panic is asked
		}
		// What is not secret, as given and as URL writes it back (it
		// escapes what url.Parse left raw: a control byte in the query
		// becomes %01, whose "1" is no leaked password "1").
		skeleton := build("", "") + Redacted + URL(build("", ""))
		for _, secret := range []string{pass, value} {
			if secret == "" {
				continue
			}
			for _, form := range spellings(secret) {
				if form == "" || strings.Contains(skeleton, form) {
					continue
				}
				if strings.Contains(out, form) {
					t.Fatalf("URL(%q) = %q: the secret %q survives as %q", in, out, secret, form)
				}
			}
		}
	})
}

// FuzzText: Text and URL never panic on any input, and keep it valid
// UTF-8 when it was.
func FuzzText(f *testing.F) {
	for _, s := range []string{"redis://:pw@h/0", "token=x", "Bearer abc", "user:pw@tcp(h)/db", "%zz://a:b@c", "s3://b/p?key=k#token=t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, b := Text(s), URL(s)
		if utf8.ValidString(s) && (!utf8.ValidString(a) || !utf8.ValidString(b)) {
			t.Fatalf("invalid UTF-8 out of %q: %q, %q", s, a, b)
		}
	})
}

// spellings are the ways a secret can appear in a URL's text.
func spellings(s string) []string {
	return []string{s, url.QueryEscape(s), url.PathEscape(s), url.UserPassword("", s).String()[1:]}
}

func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

func flipCase(c byte) byte {
	switch {
	case c >= 'a' && c <= 'z':
		return c - 'a' + 'A'
	case c >= 'A' && c <= 'Z':
		return c - 'A' + 'a'
	}
	return c
}
