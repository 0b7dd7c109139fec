package router

import (
	"errors"
	"testing"
	"time"

	"github.com/manta-ml/manta/api"
)

func TestParseFeedback(t *testing.T) {
	ok := map[string]interface{}{"model": "eta", "id": "r1", "label": "41.5"}
	req, err := ParseFeedback(ok)
	if err != nil || req.ModelId != "eta" || len(req.Labels) != 1 || req.Labels[0].RequestId != "r1" || req.Labels[0].Value != 41.5 || req.Labels[0].At != 0 {
		t.Fatalf("%+v %v", req, err)
	}
	at, err := ParseFeedback(map[string]interface{}{"model": "eta", "id": "r1", "label": "2", "at": "1764312000123"})
	if err != nil || at.Labels[0].At != time.UnixMilli(1764312000123).UnixNano() {
		t.Fatalf("at in ms: %+v %v", at, err)
	}
	at, err = ParseFeedback(map[string]interface{}{"model": "eta", "id": "r1", "label": "2", "at": "2026-12-04T10:00:00Z"})
	if err != nil || at.Labels[0].At != time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC).UnixNano() {
		t.Fatalf("at in RFC 3339: %+v %v", at, err)
	}
	for _, c := range []struct {
		fields map[string]interface{}
		reason string
	}{
		{map[string]interface{}{"id": "r1", "label": "1"}, ReasonMissingModel},
		{map[string]interface{}{"model": "Bad/Id", "id": "r1", "label": "1"}, ReasonBadModelID},
		{map[string]interface{}{"model": "eta", "label": "1"}, ReasonMissingID},
		{map[string]interface{}{"model": "eta", "id": "a\x00b", "label": "1"}, ReasonBadID},
		{map[string]interface{}{"model": "eta", "id": "r1"}, ReasonMissingLabel},
		{map[string]interface{}{"model": "eta", "id": "r1", "label": "NaN"}, ReasonBadLabel},
		{map[string]interface{}{"model": "eta", "id": "r1", "label": "1e999"}, ReasonBadLabel},
		{map[string]interface{}{"model": "eta", "id": "r1", "label": "cat"}, ReasonBadLabel},
		{map[string]interface{}{"model": "eta", "id": "r1", "label": "1", "at": "noon"}, ReasonBadAt},
		{map[string]interface{}{"model": "eta", "id": "r1", "label": 1}, ReasonBadFieldType},
	} {
		_, err := ParseFeedback(c.fields)
		var ee *EntryError
		if !errors.As(err, &ee) || ee.Reason != c.reason || !errors.Is(err, api.ErrBadInput) {
			t.Errorf("%v: %v, want reason %s", c.fields, err, c.reason)
		}
	}
}

func TestFeedbackStreamConfig(t *testing.T) {
	c := DefaultConfig()
	if c.FeedbackStream != "manta:feedback" {
		t.Fatalf("default feedback stream %q", c.FeedbackStream)
	}
	for _, s := range []string{"manta:requests", "manta:dead", "manta:results"} {
		c.FeedbackStream = s
		if err := c.Validate(); err == nil {
			t.Errorf("feedback stream %s accepted", s)
		}
	}
}

func FuzzParseFeedback(f *testing.F) {
	f.Add("eta", "r1", "41.5", "")
	f.Add("eta", "r1", "2", "1764312000123")
	f.Add("x", "", "nan", "2026-12-04T10:00:00Z")
	f.Fuzz(func(t *testing.T, model, id, label, at string) {
		fields := map[string]interface{}{"model": model, "id": id, "label": label}
		if at != "" {
			fields["at"] = at
		}
		req, err := ParseFeedback(fields)
		if err != nil {
			var ee *EntryError
			if !errors.As(err, &ee) || ee.Reason == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if req.ModelId != model || len(req.Labels) != 1 || req.Labels[0].RequestId != id {
			t.Fatalf("parsed %+v from %v", req, fields)
		}
	})
}
