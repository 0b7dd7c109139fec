package ops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/manta-ml/manta/internal/redact"
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

// RedactAttr is a slog ReplaceAttr function: an attribute whose key names
// a secret (password, token, api_key, ...) is replaced by "[REDACTED]";
// string and error values go through Manta's one redaction of free text
// (internal/redact: URL passwords, secret query parameters and key=value
// pairs, Bearer/Basic credentials).
func RedactAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Key != "" && redact.IsSecretKey(a.Key) {
		return slog.String(a.Key, redact.Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); s != "" {
			if r := redact.Text(s); r != s {
				return slog.String(a.Key, r)
			}
		}
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			return slog.String(a.Key, redact.Text(v.Error()))
		case fmt.Stringer:
			if s := v.String(); redact.Text(s) != s {
				return slog.String(a.Key, redact.Text(s))
			}
		}
	}
	return a
}
