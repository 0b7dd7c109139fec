package manta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/httpjson"
)

// maxFeedbackBody bounds a POST /v1/models/{id}/feedback body.
const maxFeedbackBody = 4 << 20

// labelJSON is one label of a feedback body: {"id", "label", "at"}.
type labelJSON struct {
	ID    string          `json:"id"`
	Label json.RawMessage `json:"label"`
	At    json.RawMessage `json:"at,omitempty"`
}

// ParseLabelValue reads a label: a JSON number, or a string holding one
// (a class given as "2"). Anything else is an error.
func ParseLabelValue(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("label %q is not a number (a regressor's value, or a classifier's class index)", clipText(s))
	}
	return v, nil
}

// ParseLabelTime reads a label's optional time: Unix milliseconds, or
// RFC 3339.
func ParseLabelTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("at %q: want Unix milliseconds or RFC 3339", clipText(s))
	}
	return t, nil
}

func clipText(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// rawText is a JSON value as text: a string's contents, else the literal.
func rawText(m json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(m, &s) == nil {
		return s, true
	}
	var f json.Number
	if json.Unmarshal(m, &f) == nil {
		return f.String(), true
	}
	return "", false
}

// parseFeedbackBody reads {"id","label"[,"at"]} or a list of them.
func parseFeedbackBody(body []byte) ([]Label, error) {
	body = bytes.TrimSpace(body)
	var items []labelJSON
	if len(body) > 0 && body[0] == '[' {
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, fmt.Errorf("feedback body: %v", err)
		}
	} else {
		var one labelJSON
		if err := json.Unmarshal(body, &one); err != nil {
			return nil, fmt.Errorf("feedback body: %v (want {\"id\": ..., \"label\": ...} or a list of them)", err)
		}
		items = []labelJSON{one}
	}
	if len(items) == 0 || len(items) > MaxFeedbackLabels {
		return nil, fmt.Errorf("feedback body: %d labels, want 1 to %d", len(items), MaxFeedbackLabels)
	}
	out := make([]Label, len(items))
	for i, it := range items {
		if it.ID == "" {
			return nil, fmt.Errorf("label %d: missing id (the request id the prediction's result carried)", i)
		}
		if len(it.Label) == 0 {
			return nil, fmt.Errorf("label %d (%s): missing label", i, clipText(it.ID))
		}
		s, ok := rawText(it.Label)
		if !ok {
			return nil, fmt.Errorf("label %d (%s): label must be a number or a string", i, clipText(it.ID))
		}
		v, err := ParseLabelValue(s)
		if err != nil {
			return nil, fmt.Errorf("label %d (%s): %v", i, clipText(it.ID), err)
		}
		out[i] = Label{RequestID: it.ID, Value: v}
		if len(it.At) > 0 && string(it.At) != "null" {
			s, ok := rawText(it.At)
			if !ok {
				return nil, fmt.Errorf("label %d (%s): at must be a number or a string", i, clipText(it.ID))
			}
			at, err := ParseLabelTime(s)
			if err != nil {
				return nil, fmt.Errorf("label %d (%s): %v", i, clipText(it.ID), err)
			}
			out[i].At = at
		}
	}
	return out, nil
}

// httpFeedback is POST /v1/models/{id}/feedback.
func (c *Client) httpFeedback(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFeedbackBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeErr(w, api.ErrorCode_ERROR_CODE_TOO_LARGE, fmt.Sprintf("feedback body larger than %d bytes", maxFeedbackBody))
			return
		}
		writeErr(w, api.ErrorCode_ERROR_CODE_BAD_INPUT, "read body: "+err.Error())
		return
	}
	labels, err := parseFeedbackBody(body)
	if err != nil {
		writeErr(w, api.ErrorCode_ERROR_CODE_BAD_INPUT, err.Error())
		return
	}
	res, err := c.Feedback(r.Context(), r.PathValue("id"), labels)
	if err != nil {
		writeErr(w, api.CodeOf(err), err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

// httpQuality is GET /v1/models/{id}/quality.
func (c *Client) httpQuality(w http.ResponseWriter, r *http.Request) {
	q, err := c.Model(r.PathValue("id")).Quality(r.Context())
	if err != nil {
		writeErr(w, api.CodeOf(err), err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, q)
}
