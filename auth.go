package manta

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/manta-ml/manta/internal/httpjson"
)

// requireToken wraps the member's HTTP API with a bearer token check
// (Config.HTTPToken). Open without a token: the liveness/readiness probes
// (/v2/health/*), the store webhook (it has its own token), and /metrics
// unless Config.ProtectMetrics, and the status page's static files (/ and
// /ui/; the page sends the token, from /#token=…, on its data calls).
// Everything else, /v1 and /v2, answers 401 without
// "Authorization: Bearer <token>".
func requireToken(token string, protectMetrics bool, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		// the status page's static files are open; its data calls carry
		// the token (taken from /#token=…)
		open := strings.HasPrefix(p, "/v2/health/") || p == "/v1/hooks/minio" || (p == "/metrics" && !protectMetrics) ||
			p == "/" || strings.HasPrefix(p, "/ui/")
		if !open && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="manta"`)
			httpjson.Write(w, http.StatusUnauthorized, map[string]any{"error": ErrorJSON{Code: "unauthorized", Message: "missing or wrong bearer token"}})
			return
		}
		next.ServeHTTP(w, r)
	})
}
