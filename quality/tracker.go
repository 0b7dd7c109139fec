package quality

import (
	"math"
	"sort"
	"sync"
	"time"
)

// Outcome is what happened to one label.
type Outcome int

// The outcomes, as counted by manta_model_feedback_total{outcome}.
const (
	Joined    Outcome = iota // matched a prediction in the ring within the join window
	UnknownID                // no prediction with that id in the ring (never made here, evicted, or joined already)
	Late                     // the prediction is in the ring but older than the join window
	BadLabel                 // not a usable label: NaN/Inf, or a class outside the probabilities
)

// String is the outcome's label value: joined, unknown_id, late, bad_label.
func (o Outcome) String() string {
	switch o {
	case Joined:
		return "joined"
	case UnknownID:
		return "unknown_id"
	case Late:
		return "late"
	case BadLabel:
		return "bad_label"
	}
	return "unknown"
}

type kind int

const (
	unknownKind kind = iota
	regressor
	classifier
)

// version is one model version's quality window and drift profile.
type version struct {
	name   string
	seq    uint32 // the ring's name for it
	kind   kind
	win    *window
	joined int64
	first  map[string]float64 // the measures of the version's first full window
	prof   *profile
	hist   []HistoryPoint // the primary measure every Window/10 joins, the last MaxHistory
}

// MaxHistory is how many points of a version's quality over time a
// tracker keeps (a point every Window/10 joined labels).
const MaxHistory = 60

// HistoryPoint is a version's primary measure (mae for a regressor,
// accuracy for a classifier) and drift score after Joined labels.
type HistoryPoint struct {
	Joined  int64   `json:"joined"`
	At      int64   `json:"at_unix_ms"`
	Measure string  `json:"measure"`
	Value   float64 `json:"value"`
	Drift   float64 `json:"drift"`
}

// Tracker is one model activation's predictions, joins, quality and
// drift. Its methods are safe for concurrent use: Observe runs on the
// batch workers, Join on the actor.
type Tracker struct {
	mu       sync.Mutex
	cfg      Config
	ring     *ring
	versions []*version // oldest first, at most MaxVersions
	nextSeq  uint32
	unknown  int64
	late     int64
	bad      int64
	xbuf     []float64 // scratch for a request's features
	pbuf     []float64 // scratch for an output's probabilities
}

// NewTracker makes a tracker with its ring allocated (cfg's zero fields
// take the defaults).
func NewTracker(cfg Config) *Tracker {
	cfg = cfg.WithDefaults()
	return &Tracker{cfg: cfg, ring: newRing(cfg.Ring),
		xbuf: make([]float64, 0, cfg.MaxFeatures), pbuf: make([]float64, 0, MaxClasses)}
}

// Config returns the tracker's configuration (defaults applied).
func (t *Tracker) Config() Config { return t.cfg }

// versionOf returns the state of version name, making it (and dropping
// the oldest beyond MaxVersions). t.mu is held.
func (t *Tracker) versionOf(name string) *version {
	for i := len(t.versions) - 1; i >= 0; i-- {
		if t.versions[i].name == name {
			return t.versions[i]
		}
	}
	t.nextSeq++
	v := &version{name: name, seq: t.nextSeq, win: newWindow(t.cfg.Window), prof: newProfile(t.cfg.Bins, t.cfg.ReferenceRows)}
	if len(t.versions) == MaxVersions {
		old := t.versions[0]
		t.versions = append(t.versions[:0], t.versions[1:]...)
		// predictions of a dropped version can no longer be scored
		for i := range t.ring.slots {
			if t.ring.slots[i].used && t.ring.slots[i].ver == old.seq {
				t.ring.free(i)
			}
		}
	}
	t.versions = append(t.versions, v)
	return v
}

// Observe records one answered request of version: its id (for the join),
// its payload's features (for drift) and its output's prediction and
// probabilities. A payload or output it cannot read is skipped for that
// part. It allocates nothing but a new version's state.
func (t *Tracker) Observe(versionName, id string, payload, output []byte, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.versionOf(versionName)
	y, hasY, probs := t.scan(output)
	if v.kind == unknownKind && hasY {
		v.kind = regressor
		if probs != nil {
			v.kind = classifier
		}
	}
	if id != "" && hasY {
		t.ring.put(idKey(id), v.seq, y, at.UnixNano(), probs)
	}
	x, ok := scanFeatures(t.xbuf[:0], payload)
	if ok && len(x) > 0 {
		if len(x) > t.cfg.MaxFeatures {
			x = x[:t.cfg.MaxFeatures]
		}
		v.prof.observe(x, y, hasY)
	}
	t.xbuf = x[:0]
}

// scan reads an output's prediction and probabilities into t.pbuf (t.mu
// held): y is the prediction (the most likely class when only
// probabilities are given), probs nil when there are none.
func (t *Tracker) scan(output []byte) (y float64, hasY bool, probs []float64) {
	y, hasY, probs, hasProbs := scanOutput(t.pbuf[:0], output)
	if cap(probs) > cap(t.pbuf) {
		t.pbuf = probs[:0]
	}
	if !hasProbs {
		return y, hasY, nil
	}
	if !hasY {
		y, hasY = float64(argmax(probs)), true
	}
	return y, hasY, probs
}

// ObserveAnswer records an answer in the ring for the join: the part of
// Observe a label needs, which the model actor runs before it sends the
// answers (a label may follow its answer at once).
func (t *Tracker) ObserveAnswer(versionName, id string, output []byte, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.versionOf(versionName)
	y, hasY, probs := t.scan(output)
	if v.kind == unknownKind && hasY {
		v.kind = regressor
		if probs != nil {
			v.kind = classifier
		}
	}
	if id != "" && hasY {
		t.ring.put(idKey(id), v.seq, y, at.UnixNano(), probs)
	}
}

// ObserveInput counts a request's features and its prediction in the
// version's drift histograms: the part of Observe no caller waits for,
// which the model actor runs after it sends the answers.
func (t *Tracker) ObserveInput(versionName string, payload, output []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.versionOf(versionName)
	y, hasY, _ := t.scan(output)
	x, ok := scanFeatures(t.xbuf[:0], payload)
	if ok && len(x) > 0 {
		if len(x) > t.cfg.MaxFeatures {
			x = x[:t.cfg.MaxFeatures]
		}
		v.prof.observe(x, y, hasY)
	}
	t.xbuf = x[:0]
}

// Join joins label to the prediction of request id. at is when the truth
// was known (the zero time: now).
func (t *Tracker) Join(id string, label float64, at time.Time) Outcome {
	if at.IsZero() {
		at = time.Now()
	}
	if math.IsNaN(label) || math.IsInf(label, 0) {
		t.mu.Lock()
		t.bad++
		t.mu.Unlock()
		return BadLabel
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, probs, ok := t.ring.take(idKey(id))
	if !ok {
		return UnknownID
	}
	if at.UnixNano()-s.at > int64(t.cfg.JoinWindow) {
		t.late++
		return Late
	}
	v := t.bySeq(s.ver)
	if v == nil {
		return UnknownID // its version was dropped (cannot happen: its slots go with it)
	}
	switch v.kind {
	case classifier:
		c := int(label)
		if float64(c) != label || c < 0 || (probs != nil && c >= len(probs)) {
			t.bad++
			return BadLabel
		}
		correct := 0.0
		if int(s.cls) == c {
			correct = 1
		}
		ll := math.NaN()
		if probs != nil {
			ll = logLoss(probs, c)
		}
		v.win.push(correct, ll)
	default:
		d := s.value - label
		v.win.push(math.Abs(d), d*d)
	}
	v.joined++
	if v.first == nil && v.win.full() {
		v.first = v.win.measures(v.kind)
	}
	if every := max(1, t.cfg.Window/10); v.joined%int64(every) == 0 {
		v.record(at)
	}
	return Joined
}

// record appends a history point (t.mu held).
func (v *version) record(at time.Time) {
	name := "mae"
	if v.kind == classifier {
		name = "accuracy"
	}
	p := HistoryPoint{Joined: v.joined, At: at.UnixMilli(), Measure: name, Value: v.win.measures(v.kind)[name]}
	if _, _, score, ok := v.prof.drift(); ok {
		p.Drift = score
	}
	if len(v.hist) == MaxHistory {
		copy(v.hist, v.hist[1:])
		v.hist = v.hist[:MaxHistory-1]
	}
	v.hist = append(v.hist, p)
}

// CountUnknown counts n labels that no activation of the model could join
// (the actor calls it for the labels its replicas' answers left unknown).
func (t *Tracker) CountUnknown(n int) {
	t.mu.Lock()
	t.unknown += int64(n)
	t.mu.Unlock()
}

// SetReference makes version's reference profile from rows of features (a
// manifest's reference file), in place of its first ReferenceRows
// requests.
func (t *Tracker) SetReference(versionName string, rows [][]float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.versionOf(versionName)
	p := newProfile(t.cfg.Bins, t.cfg.ReferenceRows)
	p.setReference(rows, t.cfg.MaxFeatures)
	v.prof = p
}

// Report is a tracker's state as shown by GET /v1/models/{id}/quality.
type Report struct {
	UnknownIDs int64           `json:"unknown_ids"`
	Late       int64           `json:"late"`
	BadLabels  int64           `json:"bad_labels"`
	Pending    int             `json:"pending"` // predictions waiting in the ring
	Versions   []VersionReport `json:"versions"`
}

// VersionReport is one version's quality and drift.
type VersionReport struct {
	Version  string             `json:"version"`
	Window   int                `json:"window"`
	Joined   int64              `json:"joined"`
	Measures map[string]float64 `json:"measures"`
	// First holds the measures of the version's first full window (the
	// baseline MantaModelQualityDrop compares against); nil before.
	First map[string]float64 `json:"first,omitempty"`
	Drift *Drift             `json:"drift,omitempty"`
	// History is the version's quality over time: its primary measure
	// every Window/10 joined labels, the last MaxHistory points.
	History []HistoryPoint `json:"history,omitempty"`
}

// Drift is a version's drift against its reference profile.
type Drift struct {
	Score         float64        `json:"score"`
	PredictionPSI float64        `json:"prediction_psi"`
	Features      []FeatureDrift `json:"features"`
	Reference     string         `json:"reference"` // "file" or "requests"
	ReferenceRows int            `json:"reference_rows"`
	LiveRows      int64          `json:"live_rows"`
}

// FeatureDrift is one feature's PSI.
type FeatureDrift struct {
	Index int     `json:"index"`
	PSI   float64 `json:"psi"`
}

// Report returns the tracker's counts and each version's measures and
// drift (newest version last).
func (t *Tracker) Report() Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := Report{UnknownIDs: t.unknown, Late: t.late, BadLabels: t.bad, Pending: t.ring.n}
	for _, v := range t.versions {
		vr := VersionReport{Version: v.name, Window: t.cfg.Window, Joined: v.joined, Measures: v.win.measures(v.kind)}
		if v.first != nil {
			vr.First = v.first
		}
		vr.History = append([]HistoryPoint(nil), v.hist...)
		if vr.Measures == nil {
			vr.Measures = map[string]float64{}
		}
		if fs, pred, score, ok := v.prof.drift(); ok {
			d := &Drift{Score: score, PredictionPSI: pred, Reference: v.prof.source, ReferenceRows: v.prof.refRows, LiveRows: v.prof.liveRows}
			for i, psi := range fs {
				d.Features = append(d.Features, FeatureDrift{Index: i, PSI: psi})
			}
			vr.Drift = d
		}
		r.Versions = append(r.Versions, vr)
	}
	return r
}

// MeasureNames returns the measures a report carries, sorted (for tables).
func MeasureNames(m map[string]float64) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Live returns version's primary measure (mae for a regressor, accuracy
// for a classifier), its value over the last window and the labels joined
// for it; ok is false before any label joined.
func (t *Tracker) Live(versionName string) (measure string, value float64, joined int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.findVersion(versionName)
	if v == nil || v.win.n == 0 {
		return "", 0, 0, false
	}
	measure = "mae"
	if v.kind == classifier {
		measure = "accuracy"
	}
	return measure, v.win.measures(v.kind)[measure], v.joined, true
}
