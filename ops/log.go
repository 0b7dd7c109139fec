package ops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// LogConfig configures NewLogger. The zero value is text at info level.
type LogConfig struct {
	// Format is "text" (default) or "json".
	Format string `json:"format" yaml:"format"`
	// Level is debug, info (default), warn or error; also "info+2" forms
	// that slog.Level accepts.
	Level string `json:"level" yaml:"level"`
	// AddSource adds the file:line of the log call.
	AddSource bool `json:"add_source,omitempty" yaml:"add_source,omitempty"`
}

// ParseLevel parses a level name (debug, info, warn, error, or slog's
// "warn+1" forms). Empty means info.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("ops: log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// NewLogger builds a logger writing to w. Every record is redacted
// (RedactAttr: secrets in URLs, tokens and secret-named attributes), and a
// record logged with a context carrying a request id (ContextWithRequestID,
// the RequestID middleware) gets a request_id attribute.
func NewLogger(w io.Writer, cfg LogConfig) (*slog.Logger, error) {
	h, err := NewHandler(w, cfg)
	if err != nil {
		return nil, err
	}
	return slog.New(h), nil
}

// NewHandler is NewLogger's handler, for callers that wrap it further.
func NewHandler(w io.Writer, cfg LogConfig) (slog.Handler, error) {
	level, err := ParseLevel(cfg.Level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level, AddSource: cfg.AddSource, ReplaceAttr: RedactAttr}
	var h slog.Handler
	switch strings.ToLower(cfg.Format) {
	case "", "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("ops: log format %q: want text or json", cfg.Format)
	}
	return requestIDHandler{h}, nil
}

// requestIDHandler adds the context's request id to each record.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestIDFrom(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

type requestIDKey struct{}

// ContextWithRequestID returns ctx carrying a request id.
func ContextWithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request id ctx carries ("" if none).
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// RequestIDHeader carries a request id in and out of the HTTP API.
const RequestIDHeader = "X-Request-Id"

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:/@-]{1,128}$`)

// NewRequestID returns a random 16-hex-digit request id.
func NewRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RequestID is HTTP middleware: it takes the request id from the
// X-Request-Id header (when well-formed: at most 128 of [A-Za-z0-9._:/@-])
// or makes one, puts it in the request's context and the response header,
// and logs every answer of status 500 or more at error level and 4xx at
// warn (with method, path, status, duration and the request id); other
// requests are logged at debug. logger nil: no logging.
func RequestID(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !requestIDPattern.MatchString(id) {
			id = NewRequestID()
			r.Header.Set(RequestIDHeader, id)
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := ContextWithRequestID(r.Context(), id)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(sw, r.WithContext(ctx))
		if logger == nil {
			return
		}
		level := slog.LevelDebug
		switch {
		case sw.status >= 500:
			level = slog.LevelError
		case sw.status >= 400:
			level = slog.LevelWarn
		}
		logger.LogAttrs(ctx, level, "http request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Duration("duration", time.Since(start)))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Redacted replaces a secret in logs and errors.
const Redacted = "[REDACTED]"

// secretKeys are attribute and query parameter names whose values are
// secrets (compared case-insensitively, "-" and "_" ignored).
var secretKeys = map[string]bool{
	"password": true, "passwd": true, "pass": true, "pwd": true, "secret": true, "secretkey": true,
	"token": true, "accesstoken": true, "refreshtoken": true, "sessiontoken": true, "idtoken": true,
	"apikey": true, "accesskey": true, "authorization": true, "auth": true, "credential": true,
	"credentials": true, "privatekey": true, "clientsecret": true, "cookie": true, "setcookie": true,
	"xamzsignature": true, "xamzcredential": true, "xamzsecuritytoken": true, "signature": true, "sig": true,
	"awssecretaccesskey": true, "awssessiontoken": true, "mantas3secretkey": true, "mantas3sessiontoken": true,
	"miniorootpassword": true, "requirepass": true,
}

// IsSecretKey reports whether a name (an attribute, a query parameter, an
// environment variable) holds a secret: password, token, secret, api_key,
// access_key, authorization, X-Amz-Signature, AWS_SECRET_ACCESS_KEY, ...
func IsSecretKey(name string) bool {
	k := strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == '_' || r == '.':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, name)
	if secretKeys[k] {
		return true
	}
	for _, suffix := range []string{"password", "secret", "secretkey", "token", "apikey"} {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

var (
	// scheme://user:password@host in free text (the password may be empty
	// only if the user is not: redis://:pass@host is the common form).
	urlWithPassword = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s:/@]*):([^\s/@]+)@`)
	// Bearer and Basic credentials.
	authScheme = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+`)
	// key=value and "key": "value" pairs whose key names a secret.
	secretPair = regexp.MustCompile(`(?i)([A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|signature|credential)[A-Za-z0-9_.-]*)(["']?\s*[=:]\s*["']?)([^\s&"',;}]+)`)
)

// Redact removes secrets from free text (an error message, a URL, a
// command line): the password of scheme://user:password@host URLs, the
// values of secret-named query parameters and key=value / "key": "value"
// pairs (password, token, secret, api_key, access_key, X-Amz-Signature,
// ...), and Bearer/Basic credentials. Other text is left as it is.
func Redact(s string) string {
	if s == "" {
		return s
	}
	if strings.Contains(s, "://") {
		s = urlWithPassword.ReplaceAllString(s, "${1}${2}:"+Redacted+"@")
	}
	s = authScheme.ReplaceAllString(s, "${1} "+Redacted)
	s = secretPair.ReplaceAllStringFunc(s, func(m string) string {
		sub := secretPair.FindStringSubmatch(m)
		if sub[3] == Redacted {
			return m
		}
		return sub[1] + sub[2] + Redacted
	})
	return s
}

// RedactURL returns u with its password and secret-named query parameter
// values replaced by Redacted. A string that does not parse as a URL is
// passed through Redact.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" {
		return Redact(u)
	}
	if _, has := p.User.Password(); has {
		p.User = url.UserPassword(p.User.Username(), Redacted)
	}
	if p.RawQuery != "" {
		q := p.Query()
		changed := false
		for k, vs := range q {
			if IsSecretKey(k) {
				for i := range vs {
					vs[i] = Redacted
				}
				changed = true
			}
		}
		if changed {
			p.RawQuery = q.Encode()
		}
	}
	return strings.Replace(p.String(), url.QueryEscape(Redacted), Redacted, -1)
}

// RedactAttr is a slog ReplaceAttr function: an attribute whose key names
// a secret is replaced by Redacted; string and error values go through
// Redact.
func RedactAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Key != "" && IsSecretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); s != "" {
			if r := Redact(s); r != s {
				return slog.String(a.Key, r)
			}
		}
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			return slog.String(a.Key, Redact(v.Error()))
		case fmt.Stringer:
			if s := v.String(); Redact(s) != s {
				return slog.String(a.Key, Redact(s))
			}
		}
	}
	return a
}
