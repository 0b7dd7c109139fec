package router

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/manta-ml/manta/api"
)

// Feedback stream fields (docs/ARCHITECTURE.md §2.4): model and id as in a
// request, label, and optional at.
const (
	FieldLabel = "label"
	FieldAt    = "at"
)

// Dead-letter reasons of the feedback stream.
const (
	ReasonMissingLabel   = "missing_label"
	ReasonBadLabel       = "bad_label"
	ReasonBadAt          = "bad_at"
	ReasonFeedbackFailed = "feedback_failed"
)

// ParseFeedback reads a feedback stream entry: model, id (the request id
// the prediction's result carried), label (a number, or a classifier's
// class index) and optional at (Unix milliseconds or RFC 3339). A
// malformed entry is an *EntryError whose Reason the dead letter carries.
func ParseFeedback(fields map[string]interface{}) (*api.FeedbackRequest, error) {
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
	model, _, err := str(FieldModel)
	if err != nil {
		return nil, err
	}
	switch {
	case model == "":
		return nil, entryErr(ReasonMissingModel, "missing model")
	case !validModelID(model):
		return nil, entryErr(ReasonBadModelID, "model %q is not a valid model id", clip(model))
	}
	id, _, err := str(FieldID)
	if err != nil {
		return nil, err
	}
	switch {
	case id == "":
		return nil, entryErr(ReasonMissingID, "missing id (the request id of the prediction)")
	case len(id) > MaxIDBytes || !printable(id):
		return nil, entryErr(ReasonBadID, "id %q: want 1 to %d printable bytes", clip(id), MaxIDBytes)
	}
	ls, has, err := str(FieldLabel)
	if err != nil {
		return nil, err
	}
	if !has || ls == "" {
		return nil, entryErr(ReasonMissingLabel, "missing label")
	}
	v, perr := strconv.ParseFloat(ls, 64)
	if perr != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, entryErr(ReasonBadLabel, "label %q is not a finite number (a regressor's value, or a classifier's class index)", clip(ls))
	}
	l := &api.Label{RequestId: id, Value: v}
	as, has, err := str(FieldAt)
	if err != nil {
		return nil, err
	}
	if has && as != "" {
		if ms, err := strconv.ParseInt(as, 10, 64); err == nil && ms > 0 {
			l.At = time.UnixMilli(ms).UnixNano()
		} else if t, err := time.Parse(time.RFC3339Nano, as); err == nil {
			l.At = t.UnixNano()
		} else {
			return nil, entryErr(ReasonBadAt, "at %q: want Unix milliseconds or RFC 3339", clip(as))
		}
	}
	return &api.FeedbackRequest{ModelId: model, Labels: []*api.Label{l}}, nil
}

// handleFeedback takes one feedback entry, already started with start1
// and holding an in-flight slot: a malformed one goes to the writer as a
// dead letter, a good one to a worker.
func (r *Router) handleFeedback(j *job, m redis.XMessage) {
	req, err := ParseFeedback(m.Values)
	if err != nil {
		var ee *EntryError
		if !errors.As(err, &ee) {
			ee = &EntryError{Reason: "malformed", Detail: err.Error()}
		}
		j.deadLetter(ee.Reason, ee.Detail)
		r.out <- j
		return
	}
	r.dispatch(task{j: j, fb: req})
}

// serveFeedback hands a label to the Feedbacker. Joined or not, the entry
// is then acknowledged with nothing written (the outcome is counted by
// the model's activation); a model that does not exist or refuses the
// label dead-letters it; any other failure (the member is away, the
// deadline passed) leaves it pending for reclaim.
func (r *Router) serveFeedback(t task) {
	ctx, cancel := context.WithTimeout(r.hardCtx, r.cfg.DefaultDeadline)
	defer cancel()
	err := r.callFeedback(ctx, t.fb)
	switch {
	case r.hardCtx.Err() != nil:
		r.abandon(t.j)
		return
	case err == nil:
		t.j.ackOnly = true
	case errors.Is(err, api.ErrNotFound) || errors.Is(err, api.ErrBadInput):
		t.j.deadLetter(ReasonFeedbackFailed, err.Error())
	default:
		r.log.Warn("router: feedback left pending", "model", t.fb.ModelId, "err", err)
		r.abandon(t.j)
		return
	}
	r.out <- t.j
}

func (r *Router) callFeedback(ctx context.Context, req *api.FeedbackRequest) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("router: feedback panicked", "model", req.ModelId, "panic", p)
			err = api.Errorf(api.ErrorCode_ERROR_CODE_INTERNAL, "feedback panicked: %v", p)
		}
	}()
	return r.fb.FeedbackRequest(ctx, req)
}
