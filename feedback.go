package manta

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/quality"
)

// Label is the ground truth for one prediction: the request id its
// result carried, the true value (a number for a regressor, the class's
// index in the model's probabilities for a classifier) and, optionally,
// when it was known (zero: now). See docs/ARCHITECTURE.md §2.4.
type Label struct {
	RequestID string
	Value     float64
	At        time.Time
}

// FeedbackResult counts what happened to the labels of one Feedback call.
// Labels for ids the model's activations do not hold (never predicted,
// pushed out of the ring, or joined already) are counted, not errors.
type FeedbackResult struct {
	Joined    int `json:"joined"`
	UnknownID int `json:"unknown_id"`
	Late      int `json:"late"`
	BadLabel  int `json:"bad_label"`
}

// MaxFeedbackLabels bounds the labels of one Feedback call.
const MaxFeedbackLabels = 10000

// Feedback gives the model the true value of the prediction it made for
// requestID: it joins it to that prediction (kept by the activation that
// answered) and counts it in the version's live quality. ctx bounds the
// call; a model that is not active is activated, like a request.
func (m *Model) Feedback(ctx context.Context, requestID string, label float64) (FeedbackResult, error) {
	return m.c.Feedback(ctx, m.id, []Label{{RequestID: requestID, Value: label}})
}

// Feedback sends labels for model id to its activations: to the one
// activation of a model with no replicas; to every replica (id, id@1 …
// id@k) otherwise, since any of them may have answered, each joining what
// its own ring holds (a label none of them holds is then counted unknown
// once, by id's activation). A bad model id or an empty or oversized list
// is bad_input; a label with an empty request id or a value that is not a
// finite number is counted bad_label and not sent.
func (c *Client) Feedback(ctx context.Context, id string, labels []Label) (FeedbackResult, error) {
	var res FeedbackResult
	if err := modelhost.ValidID(id); err != nil {
		return res, err
	}
	if len(labels) == 0 || len(labels) > MaxFeedbackLabels {
		return res, api.Errorf(api.ErrorCode_ERROR_CODE_BAD_INPUT, "feedback for %s: %d labels, want 1 to %d", id, len(labels), MaxFeedbackLabels)
	}
	wire := make([]*api.Label, 0, len(labels))
	for _, l := range labels {
		if l.RequestID == "" || math.IsNaN(l.Value) || math.IsInf(l.Value, 0) {
			res.BadLabel++
			continue
		}
		w := &api.Label{RequestId: l.RequestID, Value: l.Value}
		if !l.At.IsZero() {
			w.At = l.At.UnixNano()
		}
		wire = append(wire, w)
	}
	if res.BadLabel > 0 && c.host != nil && c.host.OnFeedback != nil {
		c.host.OnFeedback(id, [4]int{quality.BadLabel: res.BadLabel})
	}
	if len(wire) == 0 {
		return res, nil
	}
	k := c.member.Replicas(id)
	deadline := c.deadline(ctx, callOptions{})
	if k == 0 {
		out, err := c.feedback1(ctx, id, &api.FeedbackRequest{ModelId: id, Labels: wire, CountUnknown: true}, deadline)
		if err != nil {
			return res, err
		}
		for _, o := range out {
			res.add(o)
		}
		return res, nil
	}
	// Every replica joins what it holds; a label is joined if any did.
	best := make([]api.FeedbackOutcome, len(wire))
	for i := range best {
		best[i] = api.FeedbackOutcome_FEEDBACK_OUTCOME_UNKNOWN_ID
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for r := 0; r <= k; r++ {
		wg.Add(1)
		go func(identity string) {
			defer wg.Done()
			out, err := c.feedback1(ctx, identity, &api.FeedbackRequest{ModelId: id, Labels: wire}, deadline)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			for i, o := range out {
				if o != api.FeedbackOutcome_FEEDBACK_OUTCOME_UNKNOWN_ID {
					best[i] = o
				}
			}
		}(cluster.ReplicaIdentity(id, r))
	}
	wg.Wait()
	var unknown []*api.Label
	for i, o := range best {
		if o == api.FeedbackOutcome_FEEDBACK_OUTCOME_UNKNOWN_ID {
			unknown = append(unknown, wire[i])
			continue
		}
		res.add(o)
	}
	if len(unknown) > 0 {
		// counted once, by the model's first activation
		out, err := c.feedback1(ctx, id, &api.FeedbackRequest{ModelId: id, Labels: unknown, CountUnknown: true}, deadline)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		for _, o := range out {
			res.add(o)
		}
	}
	return res, firstErr
}

func (r *FeedbackResult) add(o api.FeedbackOutcome) {
	switch quality.Outcome(o) {
	case quality.Joined:
		r.Joined++
	case quality.UnknownID:
		r.UnknownID++
	case quality.Late:
		r.Late++
	default:
		r.BadLabel++
	}
}

// feedback1 sends one FeedbackRequest to identity and returns the
// outcomes.
func (c *Client) feedback1(ctx context.Context, identity string, req *api.FeedbackRequest, deadline time.Time) ([]api.FeedbackOutcome, error) {
	r := c.call(ctx, identity, req, deadline)
	resp, err := r.response(ctx)
	if err != nil {
		return nil, err
	}
	fr, ok := resp.(*api.FeedbackResponse)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected answer %T to feedback", ErrInternal, resp)
	}
	if err := fr.Error.Err(); err != nil {
		return nil, err
	}
	if len(fr.Outcomes) != len(req.Labels) {
		return nil, fmt.Errorf("%w: %d outcomes for %d labels", ErrInternal, len(fr.Outcomes), len(req.Labels))
	}
	return fr.Outcomes, nil
}

// ModelQuality is a model's live quality and drift as GET
// /v1/models/{id}/quality answers it: the version served now at the top
// level (the newest version of the model's first activation), and every
// version of every activation (id and its replicas) in Versions.
type ModelQuality struct {
	Model      string             `json:"model"`
	Version    string             `json:"version"`
	Window     int                `json:"window"`
	Joined     int64              `json:"joined"`
	UnknownIDs int64              `json:"unknown_ids"`
	Late       int64              `json:"late"`
	BadLabels  int64              `json:"bad_labels"`
	Measures   map[string]float64 `json:"measures"`
	First      map[string]float64 `json:"first,omitempty"`
	Drift      *quality.Drift     `json:"drift,omitempty"`
	// Tracking is false when no activation keeps predictions yet (no
	// label came and the manifest does not ask for monitoring).
	Tracking bool             `json:"tracking"`
	Versions []VersionQuality `json:"versions"`
}

// VersionQuality is one version's live quality on one activation.
type VersionQuality struct {
	Model      string             `json:"model"`
	Version    string             `json:"version"`
	Identity   string             `json:"identity"`
	ServedBy   string             `json:"served_by"`
	Window     int                `json:"window"`
	Joined     int64              `json:"joined"`
	UnknownIDs int64              `json:"unknown_ids"`
	Measures   map[string]float64 `json:"measures"`
	First      map[string]float64 `json:"first,omitempty"`
	Drift      *quality.Drift     `json:"drift,omitempty"`
}

// Quality asks the model's activations (id and its replicas) for their
// live quality and drift. Like Stats it activates the model if it is not
// active; a fresh activation has no labels (Tracking false).
func (m *Model) Quality(ctx context.Context) (*ModelQuality, error) {
	if err := modelhost.ValidID(m.id); err != nil {
		return nil, err
	}
	out := &ModelQuality{Model: m.id, Versions: []VersionQuality{}}
	deadline := m.c.deadline(ctx, callOptions{})
	for k := 0; k <= m.c.member.Replicas(m.id); k++ {
		identity := cluster.ReplicaIdentity(m.id, k)
		resp, err := m.c.call(ctx, identity, &api.QualityRequest{ModelId: m.id}, deadline).response(ctx)
		if err != nil {
			return nil, err
		}
		qr, ok := resp.(*api.QualityReport)
		if !ok {
			return nil, fmt.Errorf("%w: unexpected answer %T to quality", ErrInternal, resp)
		}
		if err := qr.Error.Err(); err != nil {
			return nil, err
		}
		out.Tracking = out.Tracking || qr.Tracking
		out.UnknownIDs += qr.UnknownIds
		out.Late += qr.Late
		out.BadLabels += qr.BadLabels
		for _, v := range qr.Versions {
			vq := VersionQuality{Model: m.id, Version: v.Version, Identity: identity, ServedBy: qr.ServedBy,
				Window: int(v.Window), Joined: v.Joined, UnknownIDs: qr.UnknownIds, Measures: map[string]float64{}}
			for _, x := range v.Measures {
				vq.Measures[x.Name] = x.Value
			}
			if len(v.First) > 0 {
				vq.First = map[string]float64{}
				for _, x := range v.First {
					vq.First[x.Name] = x.Value
				}
			}
			if v.HasDrift {
				d := &quality.Drift{Score: v.DriftScore, PredictionPSI: v.PredictionPsi, Reference: v.Reference,
					ReferenceRows: int(v.ReferenceRows), LiveRows: v.LiveRows, Features: []quality.FeatureDrift{}}
				for _, f := range v.Features {
					d.Features = append(d.Features, quality.FeatureDrift{Index: int(f.Index), PSI: f.Psi})
				}
				vq.Drift = d
			}
			out.Versions = append(out.Versions, vq)
			if k == 0 {
				out.Version, out.Window, out.Joined = vq.Version, vq.Window, vq.Joined
				out.Measures, out.First, out.Drift = vq.Measures, vq.First, vq.Drift
			}
		}
	}
	if out.Measures == nil {
		out.Measures = map[string]float64{}
	}
	return out, nil
}

// FeedbackRequest takes the labels of a wire request (the router's
// Feedbacker: one entry of the manta:feedback stream).
func (c *Client) FeedbackRequest(ctx context.Context, req *api.FeedbackRequest) error {
	labels := make([]Label, len(req.Labels))
	for i, l := range req.Labels {
		labels[i] = Label{RequestID: l.RequestId, Value: l.Value}
		if l.At > 0 {
			labels[i].At = time.Unix(0, l.At)
		}
	}
	_, err := c.Feedback(ctx, req.ModelId, labels)
	return err
}
