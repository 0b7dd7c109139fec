package quality

import (
	"bytes"
	"encoding/gob"
	"fmt"
)

// The join state travels when an activation moves (the model actor sends
// it to the activation that took its identity over) and is kept by the
// member when an activation stops idle: Marshal and Absorb. It is gob:
// both ends are the same program.

type stateV1 struct {
	Unknown, Late, Bad int64
	Preds              []predState // oldest first
	Versions           []versionState
}

type predState struct {
	Key     uint64 // idKey of the request id
	Version string
	Value   float64
	At      int64
	Class   int32
	Probs   []float32
}

type versionState struct {
	Name    string
	Kind    int
	A, B    []float64 // window samples, oldest first
	Joined  int64
	First   map[string]float64
	Profile *profileState
}

type profileState struct {
	Source            string
	RefRows           int
	Edges, Ref, Live  [][]float64
	PredEdges         []float64
	PredRef, PredLive []float64
	HasPred           bool
	LiveRows          int64
	LiveN             float64
}

// Marshal encodes the tracker's join state: its pending predictions, its
// counts, and each version's window and complete drift profile (a profile
// still collecting its reference starts again where it lands).
func (t *Tracker) Marshal() ([]byte, error) {
	t.mu.Lock()
	st := t.snapshot()
	t.mu.Unlock()
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(st); err != nil {
		return nil, fmt.Errorf("quality: encode join state: %w", err)
	}
	return b.Bytes(), nil
}

func (t *Tracker) snapshot() *stateV1 {
	st := &stateV1{Unknown: t.unknown, Late: t.late, Bad: t.bad}
	r := t.ring
	for j := 0; j < len(r.slots); j++ {
		i := (r.next + j) % len(r.slots)
		s := &r.slots[i]
		if !s.used {
			continue
		}
		v := t.bySeq(s.ver)
		if v == nil {
			continue
		}
		ps := predState{Key: s.key, Version: v.name, Value: s.value, At: s.at, Class: s.cls}
		if s.probs {
			ps.Probs = append([]float32(nil), r.probs[i*r.k:(i+1)*r.k]...)
		}
		st.Preds = append(st.Preds, ps)
	}
	for _, v := range t.versions {
		vs := versionState{Name: v.name, Kind: int(v.kind), Joined: v.joined, First: v.first}
		w := v.win
		start := 0
		if w.full() {
			start = w.next
		}
		for j := 0; j < w.n; j++ {
			i := (start + j) % len(w.a)
			vs.A = append(vs.A, w.a[i])
			vs.B = append(vs.B, w.b[i])
		}
		if p := v.prof; p.ready {
			vs.Profile = &profileState{Source: p.source, RefRows: p.refRows, Edges: p.edges, Ref: p.ref, Live: p.live,
				PredEdges: p.predEdges, PredRef: p.predRef, PredLive: p.predLv, HasPred: p.hasPred, LiveRows: p.liveRows, LiveN: p.liveN}
		}
		st.Versions = append(st.Versions, vs)
	}
	return st
}

// Absorb merges a state made by Marshal (an older activation's) into t:
// its predictions go before t's own in the ring, its window samples
// before t's own, its counts add up, and its drift profile replaces a
// profile of t's that is not complete yet.
func (t *Tracker) Absorb(data []byte) error {
	var st stateV1
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return fmt.Errorf("quality: decode join state: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	own := t.snapshot()
	t.unknown += st.Unknown
	t.late += st.Late
	t.bad += st.Bad
	// versions: the older activation's first, then t's own
	for _, vs := range st.Versions {
		v := t.versionOf(vs.Name)
		if v.kind == unknownKind {
			v.kind = kind(vs.Kind)
		}
		if v.first == nil {
			v.first = vs.First
		}
		v.joined += vs.Joined
		if p := vs.Profile; p != nil && !v.prof.ready && len(p.Edges) > 0 {
			v.prof = &profile{bins: t.cfg.Bins, rows: t.cfg.ReferenceRows, source: p.Source, ready: true, refRows: p.RefRows,
				edges: p.Edges, ref: p.Ref, live: p.Live, predEdges: p.PredEdges, predRef: p.PredRef, predLv: p.PredLive,
				hasPred: p.HasPred, liveRows: p.LiveRows, liveN: p.LiveN}
		}
		var mine *versionState
		for i := range own.Versions {
			if own.Versions[i].Name == vs.Name {
				mine = &own.Versions[i]
			}
		}
		v.win = newWindow(t.cfg.Window)
		for i := range vs.A {
			v.win.push(vs.A[i], vs.B[i])
		}
		if mine != nil {
			for i := range mine.A {
				v.win.push(mine.A[i], mine.B[i])
			}
		}
	}
	// the ring: the older activation's predictions, then t's own
	t.ring = newRing(t.cfg.Ring)
	for _, group := range [][]predState{st.Preds, own.Preds} {
		for _, p := range group {
			v := t.findVersion(p.Version)
			if v == nil {
				continue
			}
			probs := t.pbuf[:0]
			for _, x := range p.Probs {
				probs = append(probs, float64(x))
			}
			t.ring.put(p.Key, v.seq, p.Value, p.At, probs)
			if len(p.Probs) == 0 && p.Class >= 0 {
				// a class without its probabilities (more than MaxClasses)
				t.ring.slots[t.ring.index[p.Key]].cls = p.Class
			}
		}
	}
	return nil
}

func (t *Tracker) bySeq(seq uint32) *version {
	for _, v := range t.versions {
		if v.seq == seq {
			return v
		}
	}
	return nil
}

func (t *Tracker) findVersion(name string) *version {
	for _, v := range t.versions {
		if v.name == name {
			return v
		}
	}
	return nil
}
