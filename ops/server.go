package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"runtime/debug"
	"time"

	"github.com/manta-ml/manta/actors"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/httpjson"
	"github.com/manta-ml/manta/internal/redact"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/status"
)

// Backend is what the ops handlers need from a member or a client;
// *manta.Client satisfies it. Do answers one request (never nil). Store may
// return nil: the handlers then answer what they can without it. What the
// member itself holds (its model actors, its memory) comes with WithMember.
//
// Optional: a Backend with an HTTPAddr() string method (as *manta.Client
// has) lets /v1/members tell which member of the cluster status is itself.
type Backend interface {
	Do(ctx context.Context, req *api.PredictRequest) *api.PredictResponse
	Store() modelhost.Store
}

// Actors is what ops reads of a member's model actors; *actors.Host is one.
type Actors interface {
	// MemberName names the member (as served_by does).
	MemberName() string
	// Active lists the identities activated on the member.
	Active() []string
	// Counters are the member's actor counters.
	Counters() actors.Counters
	// ServedModels lists the models with stats on the member; ModelStats
	// is one model's (Since 0: never served here).
	ServedModels() []string
	ModelStats(id string) *api.ModelStats
}

// Cache is what ops reads of a member's model memory; *modelhost.Cache is
// one.
type Cache interface {
	Stats() modelhost.CacheStats
	Loaded() []modelhost.Entry
}

// httpAddresser is the optional ability of a Backend to name its own HTTP
// address.
type httpAddresser interface{ HTTPAddr() string }

// Option adjusts NewServer.
type Option func(*Server)

// WithMetrics serves m at GET /metrics (Register) and feeds the status
// page's latency chart from it.
func WithMetrics(m *Metrics) Option { return func(s *Server) { s.metrics = m } }

// WithStatus gives the cluster status for /v1/members, /v1/models/{id}
// and the status page: (*manta.Client).Status is such a function. Without
// it only this member is shown.
func WithStatus(f func(ctx context.Context) (*status.Cluster, error)) Option {
	return func(s *Server) { s.status = f }
}

// WithMember gives this member's model actors and memory cache, which
// /v1/member, this member's entry in /v1/members and /v1/models/{id} read
// (a client process, which hosts no models, has neither). A nil argument
// is left out.
func WithMember(a Actors, c Cache) Option {
	return func(s *Server) {
		if a != nil && !isNilPointer(a) {
			s.actors = a
		}
		if c != nil && !isNilPointer(c) {
			s.cache = c
		}
	}
}

// isNilPointer reports whether v holds a nil pointer (a nil *actors.Host
// passed as an Actors is not a nil interface).
func isNilPointer(v any) bool {
	p := reflect.ValueOf(v)
	return p.Kind() == reflect.Pointer && p.IsNil()
}

// WithReady sets the readiness check of GET /v2/health/ready (default:
// the store answers List, when there is a store).
func WithReady(f func(ctx context.Context) error) Option { return func(s *Server) { s.ready = f } }

// WithLogger logs failed requests (with their request ids). Default: none.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// WithMaxBodyBytes bounds an infer request body (default 64 MiB).
func WithMaxBodyBytes(n int64) Option { return func(s *Server) { s.maxBody = n } }

// WithRemoteClient sets the HTTP client used to ask other members for
// their details (default: 2 s timeout).
func WithRemoteClient(c *http.Client) Option { return func(s *Server) { s.remote = c } }

// WithMaxInferRows bounds the rows of one infer request (default 65536).
func WithMaxInferRows(n int) Option { return func(s *Server) { s.maxRows = n } }

// Server holds the member's operations endpoints: the Open Inference
// Protocol v2 (/v2/...), cluster and model state (/v1/members, /v1/member,
// /v1/models/{id}), the status page (/) and metrics (/metrics). It does
// not listen: mount it with Register or its single handlers.
type Server struct {
	b       Backend
	metrics *Metrics
	actors  Actors
	cache   Cache
	status  func(ctx context.Context) (*status.Cluster, error)
	ready   func(ctx context.Context) error
	logger  *slog.Logger
	maxBody int64
	maxRows int
	remote  *http.Client
	version string
}

// NewServer builds the endpoints over b.
func NewServer(b Backend, opts ...Option) (*Server, error) {
	if b == nil {
		return nil, errors.New("ops: nil backend")
	}
	s := &Server{b: b, maxBody: 64 << 20, maxRows: 1 << 16, version: moduleVersion()}
	for _, o := range opts {
		o(s)
	}
	if s.maxBody <= 0 || s.maxRows <= 0 {
		return nil, fmt.Errorf("ops: max body %d and max rows %d must be positive", s.maxBody, s.maxRows)
	}
	if s.remote == nil {
		s.remote = &http.Client{Timeout: 2 * time.Second}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.ready == nil {
		s.ready = func(ctx context.Context) error {
			st := b.Store()
			if st == nil {
				return nil
			}
			_, err := st.List(ctx)
			return err
		}
	}
	return s, nil
}

// Register mounts every endpoint on mux:
//
//	GET  /v2                                  server metadata
//	GET  /v2/health/live, /v2/health/ready
//	GET  /v2/models/{name}[/versions/{v}]         model metadata
//	GET  /v2/models/{name}[/versions/{v}]/ready   model readiness
//	POST /v2/models/{name}[/versions/{v}]/infer   inference
//	GET  /v1/members                          every member, with details
//	GET  /v1/member                           this member's details (JSON)
//	GET  /metrics                             Prometheus (WithMetrics)
//	GET  /                                    the status page
//	GET  /ui/...                              the page's assets
//
// GET /v1/models/{id} is not registered here (the SDK's handler has it);
// mount ModelHandler there to serve the richer answer.
func (s *Server) Register(mux *http.ServeMux) {
	s.RegisterOIP(mux)
	mux.Handle("GET /v1/members", s.MembersHandler())
	mux.Handle("GET /v1/member", s.MemberHandler())
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	page := s.PageHandler()
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /ui/", page)
}

// moduleVersion is the main module's version for server metadata.
func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/manta-ml/manta" {
				return d.Version
			}
		}
		if bi.Main.Path == "github.com/manta-ml/manta" && bi.Main.Version != "" {
			return bi.Main.Version
		}
	}
	return "devel"
}

// httpStatus maps an error code to its HTTP status (docs/ARCHITECTURE.md §2.3).
func httpStatus(code api.ErrorCode) int { return code.HTTPStatus() }

// writeError writes the protocol's error shape {"error": "..."} and logs
// server-side failures with the request id.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if status >= 500 {
		s.logger.ErrorContext(r.Context(), "ops request failed", slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.String("error", msg))
	}
	httpjson.Write(w, status, ErrorBody{Error: msg})
}

func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	s.writeError(w, r, httpStatus(api.CodeOf(err)), redact.Text(err.Error()))
}
