package ops

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed ui
var uiFiles embed.FS

// PageHandler serves the status page: GET / is ui/index.html, GET /ui/...
// its assets (plain HTML, CSS and JS embedded in the binary; no build
// step). The page polls /v1/members (or /v1/status) and /v1/member every
// two seconds; its asset and API paths are relative, so it also works
// mounted under a prefix (with http.StripPrefix).
func (s *Server) PageHandler() http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		switch {
		case r.URL.Path == "/" || r.URL.Path == "":
			http.ServeFileFS(w, r, sub, "index.html")
		case strings.HasPrefix(r.URL.Path, "/ui/") && !strings.HasSuffix(r.URL.Path, "/"):
			http.StripPrefix("/ui", files).ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
