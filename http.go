package manta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/httpjson"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/ops"
)

// DefaultMaxPayloadBytes is Config.MaxPayloadBytes when none is set: the
// largest payload of one request, at every entry point.
const DefaultMaxPayloadBytes = 16 << 20

// ResponseJSON is PredictResponse as the HTTP API writes it. Output is the
// model's JSON output inline when the content type is JSON, else a JSON
// string (base64, as encoding/json writes []byte).
type ResponseJSON struct {
	RequestID    string          `json:"request_id"`
	ModelID      string          `json:"model_id"`
	ModelVersion string          `json:"model_version,omitempty"`
	Output       json.RawMessage `json:"output,omitempty"`
	ContentType  string          `json:"content_type,omitempty"`
	DurationUS   int64           `json:"duration_us"`
	LatencyUS    int64           `json:"latency_us,omitempty"`
	ServedBy     string          `json:"served_by,omitempty"`
	BatchSize    int32           `json:"batch_size,omitempty"`
	Error        *ErrorJSON      `json:"error,omitempty"`
}

// ErrorJSON is an error in the HTTP API: a code of the closed set and a message.
type ErrorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ToJSON converts a PredictResponse for the HTTP API.
func ToJSON(r *api.PredictResponse) *ResponseJSON {
	out := &ResponseJSON{
		RequestID: r.RequestId, ModelID: r.ModelId, ModelVersion: r.ModelVersion,
		ContentType: r.ContentType, DurationUS: r.Duration / 1000, ServedBy: r.ServedBy, BatchSize: r.BatchSize,
	}
	if len(r.Output) > 0 {
		if (r.ContentType == "" || r.ContentType == "application/json") && json.Valid(r.Output) {
			out.Output = r.Output
		} else {
			b, _ := json.Marshal(r.Output)
			out.Output = b
		}
	}
	if r.Error != nil && r.Error.Code != api.ErrorCode_ERROR_CODE_UNSPECIFIED {
		out.Error = &ErrorJSON{Code: r.Error.Code.Name(), Message: r.Error.Message}
	}
	return out
}

// HTTPStatus maps an error code to its HTTP status (docs/ARCHITECTURE.md §2.3).
func HTTPStatus(code api.ErrorCode) int { return code.HTTPStatus() }

// Handler is the member's HTTP API:
//
//	POST /v1/models/{id}/predict   body = payload; ?timeout=250ms
//	POST /v1/models/{id}/reload    roll out a new version if there is one
//	GET  /v1/models                models in the store
//	GET  /v1/models/{id}           versions, LATEST and stats
//	GET  /v1/status                members, activated models, memory
//	GET  /v1/where/{id}            the members where a model (and its replicas) is active
//	GET  /v1/loads                 every member's gossiped load: budget, used, rate, activations
//	POST /v1/hooks/minio           MinIO webhook target (S3 stores only)
func (c *Client) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/models/{id}/predict", c.httpPredict)
	mux.HandleFunc("POST /v1/models/{id}/reload", c.httpReload)
	mux.HandleFunc("POST /v1/models/{id}/feedback", c.httpFeedback)
	mux.HandleFunc("GET /v1/models/{id}/quality", c.httpQuality)
	mux.HandleFunc("POST /v1/models/{id}/canary", c.httpCanary)
	mux.HandleFunc("GET /v1/models", c.httpModels)
	if c.host == nil {
		mux.HandleFunc("GET /v1/models/{id}", c.httpModel)
	}
	if st, ok := c.store.(modelhost.ChangeNotifier); ok {
		// MinIO's webhook notification target points here (the S3 store):
		// a changed manifest or LATEST makes local activations look for a
		// new version.
		mux.Handle("POST /v1/hooks/minio", st.ChangeHandler(func(id string) { c.ReloadLocal(id) }, c.cfg.WebhookToken))
	}
	if c.host != nil {
		// metrics, the Open Inference Protocol (/v2), /v1/members,
		// /v1/models/{id} and the status page at /
		s, err := ops.NewServer(c, ops.WithMember(c.host, c.cache), ops.WithMetrics(c.metrics),
			ops.WithLogger(c.logger), ops.WithStatus(c.Status))
		if err == nil {
			s.Register(mux)
			mux.Handle("GET /v1/models/{id}", s.ModelHandler())
		}
	}
	mux.HandleFunc("GET /v1/where/{id}", func(w http.ResponseWriter, r *http.Request) {
		wh, err := c.Where(r.Context(), r.PathValue("id"))
		if err != nil {
			writeErr(w, api.CodeOf(err), err.Error())
			return
		}
		httpjson.Write(w, http.StatusOK, wh)
	})
	mux.HandleFunc("GET /v1/loads", func(w http.ResponseWriter, r *http.Request) {
		loads, err := c.Loads(r.Context())
		if err != nil {
			writeErr(w, api.CodeOf(err), err.Error())
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]any{"members": loads})
	})
	if c.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := c.Status(r.Context())
		if err != nil {
			writeErr(w, api.CodeOf(err), err.Error())
			return
		}
		httpjson.Write(w, http.StatusOK, st)
	})
	return ops.RequestID(c.logger, mux)
}

func (c *Client) serveHTTP(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("manta: http listen %s: %w", addr, err)
	}
	c.httpAddr = l.Addr().String()
	var h http.Handler = c.Handler()
	if c.cfg.HTTPToken != "" {
		h = requireToken(c.cfg.HTTPToken, c.cfg.ProtectMetrics, h)
	}
	c.httpSrv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.httpSrv.Serve(l) }()
	return nil
}

func writeErr(w http.ResponseWriter, code api.ErrorCode, msg string) {
	httpjson.Write(w, HTTPStatus(code), map[string]any{"error": ErrorJSON{Code: code.Name(), Message: msg}})
}

func (c *Client) httpPredict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.PathValue("id")
	limit := c.payloadLimit()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeErr(w, api.ErrorCode_ERROR_CODE_TOO_LARGE, fmt.Sprintf("payload larger than %d bytes", limit))
			return
		}
		writeErr(w, api.ErrorCode_ERROR_CODE_BAD_INPUT, "read body: "+err.Error())
		return
	}
	ctx := r.Context()
	if t := r.URL.Query().Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			writeErr(w, api.ErrorCode_ERROR_CODE_BAD_INPUT, fmt.Sprintf("bad timeout %q", t))
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	ct := payloadContentType(r.Header.Get("Content-Type"))
	resp := c.Do(ctx, &api.PredictRequest{ModelId: id, Payload: body, ContentType: ct,
		RequestId: r.Header.Get("X-Request-Id"), Version: r.URL.Query().Get("version")})
	out := ToJSON(resp)
	out.LatencyUS = time.Since(start).Microseconds()
	code := api.ErrorCode_ERROR_CODE_UNSPECIFIED
	if resp.Error != nil {
		code = resp.Error.Code
	}
	httpjson.Write(w, HTTPStatus(code), out)
}

func (c *Client) httpReload(w http.ResponseWriter, r *http.Request) {
	v, changed, err := c.Model(r.PathValue("id")).Reload(r.Context())
	if err != nil {
		writeErr(w, api.CodeOf(err), err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"model_id": r.PathValue("id"), "version": v, "changed": changed})
}

func (c *Client) httpModels(w http.ResponseWriter, r *http.Request) {
	if c.store == nil {
		writeErr(w, api.ErrorCode_ERROR_CODE_NOT_FOUND, "this process has no store")
		return
	}
	ids, err := c.store.List(r.Context())
	if err != nil {
		writeErr(w, api.CodeOf(err), err.Error())
		return
	}
	active := map[string]bool{}
	if c.host != nil {
		for _, id := range c.host.Active() {
			active[id] = true
		}
	}
	type entry struct {
		ID     string `json:"id"`
		Active bool   `json:"active"`
	}
	out := make([]entry, 0, len(ids))
	for _, id := range ids {
		out = append(out, entry{ID: id, Active: active[id]})
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"models": out})
}

func (c *Client) httpModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if c.store == nil {
		writeErr(w, api.ErrorCode_ERROR_CODE_NOT_FOUND, "this process has no store")
		return
	}
	versions, err := c.store.Versions(r.Context(), id)
	if err != nil {
		writeErr(w, api.CodeOf(err), err.Error())
		return
	}
	latest, _ := c.store.Latest(r.Context(), id)
	out := map[string]any{"id": id, "versions": versions, "latest": latest}
	if c.host != nil {
		st := c.host.Stats.Snapshot(id)
		out["stats"] = map[string]any{
			"count": st.Count, "errors": st.Errors, "version": st.Version,
			"total_us": st.TotalDuration / 1000, "min_us": st.MinDuration / 1000, "max_us": st.MaxDuration / 1000,
			"p50_us": st.P50 / 1000, "p99_us": st.P99 / 1000, "since": time.Unix(0, st.Since).UTC().Format(time.RFC3339),
		}
		for _, a := range c.host.Active() {
			if a == id {
				out["active_on"] = c.host.Member
			}
		}
	}
	httpjson.Write(w, http.StatusOK, out)
}

var _ = strconv.Itoa

// payloadContentType is the content type a /v1 predict body is passed on
// with. No content type, and curl's default for -d
// (application/x-www-form-urlencoded, which no model reads), mean JSON, as
// does application/json with parameters ("; charset=utf-8"). Any other
// explicit type is passed on as sent, for the runtime to accept or refuse.
func payloadContentType(header string) string {
	if strings.TrimSpace(header) == "" {
		return modelhost.ContentTypeJSON
	}
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		return header
	}
	switch mt {
	case "application/x-www-form-urlencoded", modelhost.ContentTypeJSON:
		return modelhost.ContentTypeJSON
	}
	return header
}
