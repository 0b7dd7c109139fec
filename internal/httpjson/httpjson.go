// Package httpjson writes JSON HTTP responses one way for every handler
// (the SDK's /v1, ops' /v2 and status endpoints).
package httpjson

import (
	"encoding/json"
	"net/http"
)

// Write sends v as a JSON body with status. Responses describe live state
// (predictions, members, stats), so they are marked not to be cached. An
// encoding error after the header is sent cannot be reported to the client
// and is dropped.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
