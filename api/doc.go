// Package api holds every message that crosses a process boundary in Manta:
// PredictRequest/PredictResponse, model stats, reload and member status, and
// the closed set of error codes (ErrorCode, with wire names such as
// "not_found" from ErrorCode.Name).
//
// The Go code is generated from manta.proto by `make proto` (Debian's protoc
// and a pinned protoc-gen-go) and committed.
package api
