package actors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/quality"
)

// MaxStashed bounds the join states a member keeps for activations that
// stopped with no successor (idle, memory pressure): a model activated
// again on this member takes its state back. The oldest goes first.
const MaxStashed = 32

// handOffTimeout bounds a stopping activation's question of where its
// identity lives now.
const handOffTimeout = 5 * time.Second

// tracker returns the activation's tracker, making it (or taking back
// the one its identity left on this member) when it has none. Before its
// first label or a monitored manifest an activation has none: 10^5 idle
// models hold no ring.
func (a *modelActor) tracker() *quality.Tracker {
	if t := a.track.Load(); t != nil {
		return t
	}
	t := a.host.unstash(a.identity)
	if t == nil {
		t = quality.NewTracker(a.host.Quality)
	}
	a.track.Store(t)
	a.host.setTracked(a.identity, t)
	a.maybeReference()
	return t
}

// onFeedback joins labels to the activation's predictions.
func (a *modelActor) onFeedback(ctx actor.Context, msg *api.FeedbackRequest) {
	a.lastActive = time.Now()
	t := a.tracker()
	resp := &api.FeedbackResponse{ModelId: a.id, Outcomes: make([]api.FeedbackOutcome, len(msg.Labels))}
	var counts [4]int
	unknown := 0
	for i, l := range msg.Labels {
		var at time.Time
		if l.At > 0 {
			at = time.Unix(0, l.At)
		}
		o := t.Join(l.RequestId, l.Value, at)
		resp.Outcomes[i] = api.FeedbackOutcome(o)
		if o == quality.UnknownID {
			unknown++
			if !msg.CountUnknown {
				continue
			}
		}
		counts[o]++
	}
	if msg.CountUnknown && unknown > 0 {
		t.CountUnknown(unknown)
	}
	if a.host.OnFeedback != nil && counts != [4]int{} {
		a.host.OnFeedback(a.id, counts)
	}
	if ctx.Sender() != nil {
		ctx.Respond(resp)
	}
}

// onQuality answers the activation's quality report.
func (a *modelActor) onQuality(ctx actor.Context) {
	r := &api.QualityReport{ModelId: a.id, Identity: a.identity, ServedBy: a.host.Member}
	if t := a.track.Load(); t != nil {
		r.Tracking = true
		FillQualityReport(r, t.Report())
	}
	ctx.Respond(r)
}

// FillQualityReport copies a tracker's report into its wire form.
func FillQualityReport(r *api.QualityReport, q quality.Report) {
	r.UnknownIds, r.Late, r.BadLabels = q.UnknownIDs, q.Late, q.BadLabels
	for _, v := range q.Versions {
		vq := &api.VersionQuality{Version: v.Version, Window: int32(v.Window), Joined: v.Joined}
		for _, name := range quality.MeasureNames(v.Measures) {
			vq.Measures = append(vq.Measures, &api.Measure{Name: name, Value: v.Measures[name]})
		}
		for _, name := range quality.MeasureNames(v.First) {
			vq.First = append(vq.First, &api.Measure{Name: name, Value: v.First[name]})
		}
		if d := v.Drift; d != nil {
			vq.HasDrift, vq.DriftScore, vq.PredictionPsi = true, d.Score, d.PredictionPSI
			vq.ReferenceRows, vq.Reference, vq.LiveRows = int32(d.ReferenceRows), d.Reference, d.LiveRows
			for _, f := range d.Features {
				vq.Features = append(vq.Features, &api.FeatureDrift{Index: int32(f.Index), Psi: f.PSI})
			}
		}
		r.Versions = append(r.Versions, vq)
	}
}

// onJoinState takes over the join state of the activation this one
// replaced (a move).
func (a *modelActor) onJoinState(msg *api.JoinState) {
	if err := a.tracker().Absorb(msg.State); err != nil {
		a.host.logger().Warn("model actor: join state refused", slog.String("identity", a.identity), slog.Any("error", err))
	}
}

// handOff runs when the activation stops with a tracker: the state goes
// to the activation that holds the identity now (a move), else it stays
// on this member for the identity's next activation here.
func (a *modelActor) handOff() {
	t := a.track.Load()
	if t == nil {
		return
	}
	h, identity, self, sys := a.host, a.identity, a.self, a.system
	h.untrack(identity, t)
	if h.Locate == nil {
		h.stashTracker(identity, t)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), handOffTimeout)
		defer cancel()
		if pid := h.Locate(ctx, identity); pid != nil && !pid.Equal(self) {
			data, err := t.Marshal()
			if err == nil {
				sys.Root.Send(pid, &api.JoinState{Identity: identity, State: data})
				return
			}
			h.logger().Warn("model actor: join state not handed off", slog.String("identity", identity), slog.Any("error", err))
		}
		h.stashTracker(identity, t)
	}()
}

func (h *Host) setTracked(identity string, t *quality.Tracker) {
	h.qmu.Lock()
	if h.tracked == nil {
		h.tracked = map[string]*quality.Tracker{}
	}
	h.tracked[identity] = t
	h.qmu.Unlock()
}

func (h *Host) untrack(identity string, t *quality.Tracker) {
	h.qmu.Lock()
	if h.tracked[identity] == t {
		delete(h.tracked, identity)
	}
	h.qmu.Unlock()
}

func (h *Host) stashTracker(identity string, t *quality.Tracker) {
	h.qmu.Lock()
	defer h.qmu.Unlock()
	if h.stash == nil {
		h.stash = map[string]*quality.Tracker{}
	}
	if _, ok := h.stash[identity]; ok {
		h.stashed = slices.DeleteFunc(h.stashed, func(s string) bool { return s == identity })
	}
	h.stash[identity] = t
	h.stashed = append(h.stashed, identity)
	for len(h.stashed) > MaxStashed {
		delete(h.stash, h.stashed[0])
		h.stashed = h.stashed[1:]
	}
}

func (h *Host) unstash(identity string) *quality.Tracker {
	h.qmu.Lock()
	defer h.qmu.Unlock()
	t, ok := h.stash[identity]
	if ok {
		delete(h.stash, identity)
		h.stashed = slices.DeleteFunc(h.stashed, func(s string) bool { return s == identity })
	}
	return t
}

// TrackedModel is one monitored activation's quality, for metrics and the
// status page.
type TrackedModel struct {
	Identity string
	Report   quality.Report
}

// QualityReports returns the reports of the activations on this member that keep
// a tracker (a report is computed per call: metrics read it at scrape).
func (h *Host) QualityReports() []TrackedModel {
	h.qmu.Lock()
	ts := make([]TrackedModel, 0, len(h.tracked))
	trackers := make([]*quality.Tracker, 0, len(h.tracked))
	for id, t := range h.tracked {
		ts = append(ts, TrackedModel{Identity: id})
		trackers = append(trackers, t)
	}
	h.qmu.Unlock()
	for i, t := range trackers {
		ts[i].Report = t.Report()
	}
	slices.SortFunc(ts, func(x, y TrackedModel) int {
		switch {
		case x.Identity < y.Identity:
			return -1
		case x.Identity > y.Identity:
			return 1
		}
		return 0
	})
	return ts
}

// Stashed reports whether this member keeps the join state of identity's
// stopped activation (for its next activation here).
func (h *Host) Stashed(identity string) bool {
	h.qmu.Lock()
	defer h.qmu.Unlock()
	_, ok := h.stash[identity]
	return ok
}

// maxReferenceBytes bounds a reference file read into memory.
const maxReferenceBytes = 256 << 20

// referenceLoaded carries a version's reference rows to the actor.
type referenceLoaded struct {
	version string
	rows    [][]float64
	err     error
}

// maybeReference reads the reference file of the version served, once per
// version, when the activation keeps a tracker (a goroutine under the
// actor's life; the rows come back as referenceLoaded).
func (a *modelActor) maybeReference() {
	t := a.track.Load()
	if t == nil || a.cur == nil {
		return
	}
	m := a.cur.lease.Manifest()
	if m.Reference == "" || a.refAsked[m.Version] {
		return
	}
	if a.refAsked == nil {
		a.refAsked = map[string]bool{}
	}
	a.refAsked[m.Version] = true
	var file modelhost.File
	for _, f := range m.Files {
		if f.Path == m.Reference {
			file = f
		}
	}
	self, sys, host, life, maxFeatures := a.self, a.system, a.host, a.life, t.Config().MaxFeatures
	go func() {
		rows, err := readReference(life.ctx, host.Store, m, file, maxFeatures)
		sys.Root.Send(self, &referenceLoaded{version: m.Version, rows: rows, err: err})
	}()
}

// readReference reads and verifies (size, sha256) a manifest's reference
// file and parses its rows.
func readReference(ctx context.Context, store modelhost.Store, m *modelhost.Manifest, f modelhost.File, maxFeatures int) ([][]float64, error) {
	if f.Path == "" || f.Size > maxReferenceBytes {
		return nil, fmt.Errorf("reference %q: not a file of the manifest, or larger than %d bytes", m.Reference, maxReferenceBytes)
	}
	rc, err := store.Open(ctx, m.ID, m.Version, f.Path)
	if err != nil {
		return nil, fmt.Errorf("reference %s: %w", f.Path, err)
	}
	defer rc.Close()
	h := sha256.New()
	data, err := io.ReadAll(io.TeeReader(io.LimitReader(rc, f.Size+1), h))
	if err != nil {
		return nil, fmt.Errorf("reference %s: %w", f.Path, err)
	}
	if int64(len(data)) != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return nil, fmt.Errorf("reference %s: size or sha256 does not match the manifest", f.Path)
	}
	return quality.ParseReference(data, maxFeatures)
}

func (a *modelActor) onReferenceLoaded(msg *referenceLoaded) {
	t := a.track.Load()
	if t == nil {
		return
	}
	if msg.err != nil {
		a.host.logger().Warn("model actor: reference profile not loaded: drift uses the first requests",
			slog.String("model", a.id), slog.String("version", msg.version), slog.Any("error", msg.err))
		return
	}
	t.SetReference(msg.version, msg.rows)
}
