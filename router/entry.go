package router

import (
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
)

// Request stream fields (docs/ARCHITECTURE.md §2.2).
const (
	FieldModel       = "model"
	FieldID          = "id"
	FieldPayload     = "payload"
	FieldContentType = "content_type"
	FieldReplyTo     = "reply_to"
	FieldDeadlineMS  = "deadline_ms"
	FieldStrategy    = "strategy"
	FieldModels      = "models"
)

// Result stream fields.
const (
	FieldVersion   = "version"
	FieldOutput    = "output"
	FieldError     = "error"
	FieldLatencyUS = "latency_us"
	FieldServedBy  = "served_by"
)

// Fields a dead letter carries besides the original entry's fields.
const (
	FieldReason       = "reason"        // one of the Reason* constants
	FieldDetail       = "detail"        // human-readable explanation
	FieldSourceStream = "source_stream" // request stream the entry came from
	FieldSourceID     = "source_id"     // its entry id there
)

// Reasons of dead letters: short, machine-readable, stable.
const (
	ReasonMissingModel     = "missing_model"
	ReasonBadModelID       = "bad_model_id"
	ReasonMissingID        = "missing_id"
	ReasonBadID            = "bad_id"
	ReasonMissingPayload   = "missing_payload"
	ReasonPayloadTooLarge  = "payload_too_large"
	ReasonBadContentType   = "bad_content_type"
	ReasonBadReplyTo       = "bad_reply_to"
	ReasonBadDeadline      = "bad_deadline"
	ReasonBadStrategy      = "bad_strategy"
	ReasonMissingModels    = "missing_models"
	ReasonBadModels        = "bad_models"
	ReasonModelsNoStrategy = "models_without_strategy"
	ReasonBadFieldType     = "bad_field_type"
	ReasonMaxDeliveries    = "max_deliveries"
	ReasonReplyFailed      = "reply_failed"
)

// Limits of ParseEntry that do not depend on the router's configuration.
const (
	MaxIDBytes          = 256 // request id
	MaxStreamNameBytes  = 256 // reply_to
	MaxContentTypeBytes = 128
	MaxStrategyBytes    = 64
	MaxModels           = 32 // models of a speculative entry
	// MaxDeadline bounds deadline_ms before the router's own clamp
	// (Config.MaxDeadline): about 24 days, so that it fits any duration.
	MaxDeadlineMS = 1<<31 - 1
)

// DefaultContentType is the content type of an entry that names none.
const DefaultContentType = "application/json"

// Entry is a parsed, validated request stream entry.
type Entry struct {
	Model       string        // model id; with a strategy, the first of Models if absent
	ID          string        // request id, echoed in the result
	Payload     []byte        // model input
	ContentType string        // DefaultContentType if absent
	ReplyTo     string        // result stream; "" means the router's default
	Deadline    time.Duration // 0 means the router's default
	Strategy    string        // speculative strategy; "" for a plain request
	Models      []string      // candidate models of a speculative request
}

// EntryError is why an entry is malformed: a Reason (one of the Reason*
// constants, the dead letter's reason field) and a human-readable Detail.
// It wraps api.ErrBadInput.
type EntryError struct {
	Reason string
	Detail string
}

func (e *EntryError) Error() string {
	return "router: malformed entry: " + e.Reason + ": " + e.Detail
}

// Unwrap returns api.ErrBadInput.
func (e *EntryError) Unwrap() error { return api.ErrBadInput }

func entryErr(reason, format string, args ...any) *EntryError {
	return &EntryError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// validModelID reports whether id is a valid model id: the model store's
// rule (modelhost.ValidID, docs/ARCHITECTURE.md).
func validModelID(id string) bool { return modelhost.ValidID(id) == nil }

// validStrategy reports whether s matches ^[a-z0-9][a-z0-9._-]{0,63}$.
func validStrategy(s string) bool { return validName(s, MaxStrategyBytes) }

// validName reports whether s matches ^[a-z0-9][a-z0-9._-]{0,max-1}$
// (FuzzValidName checks it against the regular expression).
func validName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ParseEntry parses and validates the fields of a request stream entry (as
// go-redis returns them: string values). It checks everything that does
// not depend on a router's configuration; the router then applies its
// payload limit and reply_to rules. The error is an *EntryError whose
// Reason is the dead letter's reason. Unknown fields are ignored.
func ParseEntry(fields map[string]interface{}) (Entry, error) {
	return parseEntry(fields, 0)
}

// parseEntry is ParseEntry with a payload limit (0: none), checked before
// the payload is copied.
func parseEntry(fields map[string]interface{}, maxPayload int) (Entry, error) {
	var e Entry
	str := func(name string) (string, bool, error) {
		v, ok := fields[name]
		if !ok {
			return "", false, nil
		}
		switch v := v.(type) {
		case string:
			return v, true, nil
		case []byte:
			return string(v), true, nil
		default:
			return "", true, entryErr(ReasonBadFieldType, "field %s is %T, want a string", name, v)
		}
	}

	strategy, hasStrategy, err := str(FieldStrategy)
	if err != nil {
		return e, err
	}
	models, hasModels, err := str(FieldModels)
	if err != nil {
		return e, err
	}
	if hasStrategy {
		if !validStrategy(strategy) {
			return e, entryErr(ReasonBadStrategy, "strategy %q: want ^[a-z0-9][a-z0-9._-]{0,63}$", clip(strategy))
		}
		if !hasModels || models == "" {
			return e, entryErr(ReasonMissingModels, "strategy %s needs a models field (comma-separated model ids)", strategy)
		}
		list := strings.Split(models, ",")
		if len(list) > MaxModels {
			return e, entryErr(ReasonBadModels, "%d models, at most %d", len(list), MaxModels)
		}
		for i, m := range list {
			m = strings.TrimSpace(m)
			if !validModelID(m) {
				return e, entryErr(ReasonBadModels, "models[%d] %q is not a valid model id", i, clip(m))
			}
			list[i] = m
		}
		e.Strategy, e.Models = strategy, list
	} else if hasModels {
		return e, entryErr(ReasonModelsNoStrategy, "models given without a strategy")
	}

	model, _, err := str(FieldModel)
	if err != nil {
		return e, err
	}
	switch {
	case model == "" && e.Strategy != "":
		model = e.Models[0]
	case model == "":
		return e, entryErr(ReasonMissingModel, "no model field")
	case !validModelID(model):
		return e, entryErr(ReasonBadModelID, "model %q: want ^[a-z0-9][a-z0-9._-]{0,127}$ without \"..\"", clip(model))
	}
	e.Model = model

	id, _, err := str(FieldID)
	if err != nil {
		return e, err
	}
	if id == "" {
		return e, entryErr(ReasonMissingID, "no id field")
	}
	if len(id) > MaxIDBytes || !printable(id) {
		return e, entryErr(ReasonBadID, "id must be at most %d bytes of printable UTF-8", MaxIDBytes)
	}
	e.ID = id

	payload, _, err := str(FieldPayload)
	if err != nil {
		return e, err
	}
	if payload == "" {
		return e, entryErr(ReasonMissingPayload, "no payload field")
	}
	if maxPayload > 0 && len(payload) > maxPayload {
		return e, entryErr(ReasonPayloadTooLarge, "payload is %d bytes, at most %d", len(payload), maxPayload)
	}
	e.Payload = []byte(payload)

	ct, hasCT, err := str(FieldContentType)
	if err != nil {
		return e, err
	}
	e.ContentType = DefaultContentType
	if hasCT {
		if len(ct) > MaxContentTypeBytes || !printable(ct) {
			return e, entryErr(ReasonBadContentType, "content_type must be at most %d printable bytes", MaxContentTypeBytes)
		}
		if _, _, err := mime.ParseMediaType(ct); err != nil {
			return e, entryErr(ReasonBadContentType, "content_type %q: %v", ct, err)
		}
		e.ContentType = ct
	}

	replyTo, hasReplyTo, err := str(FieldReplyTo)
	if err != nil {
		return e, err
	}
	if hasReplyTo {
		if replyTo == "" || len(replyTo) > MaxStreamNameBytes || !printable(replyTo) || strings.ContainsRune(replyTo, ' ') {
			return e, entryErr(ReasonBadReplyTo, "reply_to must be 1 to %d printable bytes without spaces", MaxStreamNameBytes)
		}
		e.ReplyTo = replyTo
	}

	dl, hasDL, err := str(FieldDeadlineMS)
	if err != nil {
		return e, err
	}
	if hasDL {
		ms, err := strconv.ParseInt(dl, 10, 64)
		if err != nil || ms <= 0 || ms > MaxDeadlineMS {
			return e, entryErr(ReasonBadDeadline, "deadline_ms %q: want a positive integer of milliseconds up to %d", clip(dl), MaxDeadlineMS)
		}
		e.Deadline = time.Duration(ms) * time.Millisecond
	}
	return e, nil
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// clip shortens s for an error message (a hostile entry may be huge).
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
