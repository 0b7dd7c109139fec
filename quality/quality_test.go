package quality

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

func out(y float64) []byte {
	return []byte(`{"prediction":` + strconv.FormatFloat(y, 'g', -1, 64) + `}`)
}

func feats(x ...float64) []byte {
	b := []byte(`{"features":[`)
	for i, v := range x {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, "]}"...)
}

func TestRegressorMeasures(t *testing.T) {
	tr := NewTracker(Config{Window: 4})
	now := time.Now()
	preds := []float64{1, 2, 3, 4, 5}
	labels := []float64{1.5, 2, 1, 4, 7} // errors .5 0 2 0 2
	for i, p := range preds {
		tr.Observe("1", fmt.Sprint("r", i), feats(1), out(p), now)
	}
	for i, l := range labels {
		if o := tr.Join(fmt.Sprint("r", i), l, now); o != Joined {
			t.Fatalf("label %d: %v", i, o)
		}
	}
	r := tr.Report()
	m := r.Versions[0].Measures
	// the window holds the last 4: 0 2 0 2
	if got, want := m["mae"], 1.0; math.Abs(got-want) > 1e-12 {
		t.Errorf("mae %v want %v", got, want)
	}
	if got, want := m["rmse"], math.Sqrt(2); math.Abs(got-want) > 1e-12 {
		t.Errorf("rmse %v want %v", got, want)
	}
	// the first full window was .5 0 2 0
	if got, want := r.Versions[0].First["mae"], 0.625; math.Abs(got-want) > 1e-12 {
		t.Errorf("first mae %v want %v", got, want)
	}
	if r.Versions[0].Joined != 5 {
		t.Errorf("joined %d", r.Versions[0].Joined)
	}
}

func TestOutcomes(t *testing.T) {
	tr := NewTracker(Config{Ring: 3, JoinWindow: time.Hour})
	t0 := time.Unix(1000, 0)
	for i := range 5 {
		tr.Observe("1", fmt.Sprint("r", i), nil, out(1), t0)
	}
	cases := []struct {
		id    string
		label float64
		at    time.Time
		want  Outcome
	}{
		{"r0", 1, t0, UnknownID}, // evicted: the ring keeps 3
		{"r1", 1, t0, UnknownID},
		{"nope", 1, t0, UnknownID},
		{"r2", math.NaN(), t0, BadLabel},
		{"r2", 1, t0.Add(2 * time.Hour), Late},
		{"r2", 1, t0, UnknownID}, // taken by the late label
		{"r3", 2, t0.Add(time.Minute), Joined},
		{"r3", 2, t0, UnknownID}, // joined once
		{"r4", math.Inf(1), t0, BadLabel},
	}
	for _, c := range cases {
		if got := tr.Join(c.id, c.label, c.at); got != c.want {
			t.Errorf("Join(%s, %v): %v, want %v", c.id, c.label, got, c.want)
		}
	}
	tr.CountUnknown(4)
	r := tr.Report()
	if r.UnknownIDs != 4 || r.Late != 1 || r.BadLabels != 2 || r.Pending != 1 {
		t.Errorf("report %+v", r)
	}
}

func TestClassifierMeasures(t *testing.T) {
	tr := NewTracker(Config{})
	now := time.Now()
	probs := [][]float64{{0.7, 0.2, 0.1}, {0.1, 0.8, 0.1}, {0.3, 0.3, 0.4}, {0, 1, 0}}
	labels := []float64{0, 2, 2, 0}
	var wantLL, wantAcc float64
	for i, p := range probs {
		o := fmt.Sprintf(`{"prediction":%d,"probabilities":[%g,%g,%g]}`, argmax(p), p[0], p[1], p[2])
		tr.Observe("7", fmt.Sprint(i), nil, []byte(o), now)
		c := int(labels[i])
		wantLL += -math.Log(math.Min(math.Max(p[c], epsilon), 1-epsilon))
		if argmax(p) == c {
			wantAcc++
		}
	}
	for i, l := range labels {
		if o := tr.Join(fmt.Sprint(i), l, now); o != Joined {
			t.Fatalf("%d: %v", i, o)
		}
	}
	if o := tr.Join("x", 1.5, now); o != UnknownID {
		t.Fatalf("unknown id: %v", o)
	}
	tr.Observe("7", "y", nil, []byte(`{"prediction":0,"probabilities":[0.5,0.5,0]}`), now)
	if o := tr.Join("y", 3, now); o != BadLabel {
		t.Fatalf("class 3 of 3: %v", o)
	}
	m := tr.Report().Versions[0].Measures
	if math.Abs(m["accuracy"]-wantAcc/4) > 1e-12 || math.Abs(m["logloss"]-wantLL/4) > 1e-6 {
		t.Errorf("measures %v, want accuracy %v logloss %v", m, wantAcc/4, wantLL/4)
	}
}

// TestDriftPSI: a reference from the first 1,000 standard-normal rows;
// 500 more from the same distribution stay under 0.1; 1,500 shifted by two
// standard deviations go over 0.25.
func TestDriftPSI(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := NewTracker(Config{})
	now := time.Now()
	row := func(shift float64) []byte {
		return feats(rng.NormFloat64()+shift, rng.NormFloat64()+shift, rng.NormFloat64()+shift)
	}
	for i := range 1500 {
		tr.Observe("1", strconv.Itoa(i), row(0), out(rng.NormFloat64()), now)
	}
	d := tr.Report().Versions[0].Drift
	if d == nil || d.Score >= 0.1 || d.ReferenceRows != 1000 || d.LiveRows != 500 || d.Reference != "requests" {
		t.Fatalf("before the shift: %+v", d)
	}
	for i := range 1500 {
		tr.Observe("1", strconv.Itoa(i), row(2), out(rng.NormFloat64()+2), now)
	}
	d = tr.Report().Versions[0].Drift
	if d.Score <= 0.25 || d.PredictionPSI <= 0.25 || len(d.Features) != 3 {
		t.Fatalf("after the shift: %+v", d)
	}
}

func TestReferenceFile(t *testing.T) {
	tr := NewTracker(Config{})
	rows := make([][]float64, 2000)
	for i := range rows {
		rows[i] = []float64{float64(i % 100), 5}
	}
	tr.SetReference("2", rows)
	for i := range 200 {
		tr.Observe("2", "", feats(float64(i%100), 5), out(0), time.Now())
	}
	d := tr.Report().Versions[0].Drift
	if d == nil || d.Reference != "file" || d.ReferenceRows != 2000 || d.Score > 0.01 {
		t.Fatalf("drift %+v", d)
	}
}

func TestPSI(t *testing.T) {
	if got := PSI([]float64{1, 1}, []float64{2, 2}); got != 0 {
		t.Errorf("same proportions: %v", got)
	}
	// (0.9-0.5)ln(0.9/0.5) + (0.1-0.5)ln(0.1/0.5)
	want := 0.4*math.Log(1.8) - 0.4*math.Log(0.2)
	if got := PSI([]float64{5, 5}, []float64{9, 1}); math.Abs(got-want) > 1e-12 {
		t.Errorf("PSI %v want %v", got, want)
	}
	if got := PSI([]float64{0, 0}, []float64{1, 1}); got != 0 {
		t.Errorf("empty reference: %v", got)
	}
}

// TestObserveAllocates: the request path allocates nothing once the
// ring and the version exist (and the reference is complete).
func TestObserveAllocates(t *testing.T) {
	tr := NewTracker(Config{ReferenceRows: 10})
	now := time.Now()
	ids := make([]string, 20000)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	p, o := feats(1, 2, 3), []byte(`{"prediction":1,"probabilities":[0.2,0.8]}`)
	for i := range 100 {
		tr.Observe("1", ids[i], p, o, now)
	}
	i := 100
	allocs := testing.AllocsPerRun(5000, func() {
		tr.Observe("1", ids[i%len(ids)], p, o, now)
		i++
	})
	if allocs != 0 {
		t.Fatalf("Observe allocates %v per call", allocs)
	}
}

// TestRingBounded: the ring never holds more than Ring predictions.
func TestRingBounded(t *testing.T) {
	tr := NewTracker(Config{Ring: 100})
	for i := range 1000 {
		tr.Observe("1", strconv.Itoa(i%150), nil, out(1), time.Now())
	}
	if r := tr.Report(); r.Pending != 100 || len(tr.ring.index) != 100 {
		t.Fatalf("pending %d index %d", r.Pending, len(tr.ring.index))
	}
}

// TestAbsorb: a moved activation's predictions and windows join the new
// activation's.
func TestAbsorb(t *testing.T) {
	now := time.Now()
	old := NewTracker(Config{Window: 10})
	for i := range 4 {
		old.Observe("3", fmt.Sprint("old", i), nil, out(1), now)
	}
	old.Join("old0", 2, now) // error 1
	old.Join("zz", 2, now)
	old.CountUnknown(1)
	data, err := old.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTracker(Config{Window: 10})
	tr.Observe("3", "new0", nil, out(1), now)
	tr.Join("new0", 4, now) // error 3
	tr.Observe("3", "new1", nil, out(1), now)
	if err := tr.Absorb(data); err != nil {
		t.Fatal(err)
	}
	if o := tr.Join("old2", 1, now); o != Joined {
		t.Fatalf("old prediction after the move: %v", o)
	}
	if o := tr.Join("new1", 1, now); o != Joined {
		t.Fatalf("own prediction after absorbing: %v", o)
	}
	r := tr.Report()
	v := r.Versions[0]
	if v.Joined != 4 || math.Abs(v.Measures["mae"]-1) > 1e-12 || r.UnknownIDs != 1 || r.Pending != 2 {
		t.Fatalf("report %+v", r)
	}
	if err := tr.Absorb([]byte("junk")); err == nil {
		t.Fatal("junk absorbed")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{Ring: -1}, {Window: -3}, {Bins: 1}, {ReferenceRows: 5}, {JoinWindow: -time.Second}, {MaxFeatures: -1}, {MinLabels: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// FuzzObserve: any payload and output are read or skipped, never a panic,
// and the ring stays bounded.
func FuzzObserve(f *testing.F) {
	f.Add([]byte(`{"features":[1,2,3]}`), []byte(`{"prediction":1.5}`), 1.0)
	f.Add([]byte(`{"features":[1e308,-0]}`), []byte(`{"prediction":0,"probabilities":[0.1,0.9]}`), 1.0)
	f.Add([]byte(`{"features":`), []byte(`{"probabilities":[`), 7.0)
	f.Fuzz(func(t *testing.T, payload, output []byte, label float64) {
		tr := NewTracker(Config{Ring: 4, ReferenceRows: 10})
		for i := range 30 {
			tr.Observe(strconv.Itoa(i%3), strconv.Itoa(i), payload, output, time.Now())
		}
		for i := range 30 {
			tr.Join(strconv.Itoa(i), label, time.Time{})
		}
		r := tr.Report()
		if r.Pending > 4 {
			t.Fatalf("ring holds %d", r.Pending)
		}
	})
}

func TestParseReference(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{`[[1,2],[3,4],[5,6]]`, 3},
		{" [ [1] , [2]\n]\n", 2},
		{"[1,2]\n[3,4]\n\n[5,6]\n", 3},
		{`{"features":[1,2]}` + "\n" + `{"features": [3,4]}`, 2},
	} {
		rows, err := ParseReference([]byte(c.in), 64)
		if err != nil || len(rows) != c.want {
			t.Errorf("%q: %d rows %v", c.in, len(rows), err)
		}
	}
	rows, _ := ParseReference([]byte(`[[1,2,3]]`), 2)
	if len(rows[0]) != 2 {
		t.Errorf("rows not cut to max features: %v", rows)
	}
	for _, bad := range []string{``, `[[1,2]`, `[[1],[x]]`, `[[]]`, "[1]\nfoo", `{"x":[1]}`, `[[1]] [`} {
		if _, err := ParseReference([]byte(bad), 64); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseReference(f *testing.F) {
	f.Add([]byte(`[[1,2],[3,4]]`))
	f.Add([]byte("[1]\n{\"features\":[2]}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := ParseReference(b, 8)
		if err != nil {
			return
		}
		for _, r := range rows {
			if len(r) == 0 || len(r) > 8 {
				t.Fatalf("row of %d features", len(r))
			}
		}
	})
}

// TestHistory: a point every Window/10 joined labels, the last MaxHistory.
func TestHistory(t *testing.T) {
	tr := NewTracker(Config{Window: 20})
	now := time.Now()
	for i := range 1000 {
		id := strconv.Itoa(i)
		tr.Observe("1", id, nil, out(1), now)
		tr.Join(id, 1+float64(i%2), now) // errors 0 1 0 1 ...
	}
	h := tr.Report().Versions[0].History
	if len(h) != MaxHistory || h[len(h)-1].Joined != 1000 || h[0].Joined != 1000-2*(MaxHistory-1) {
		t.Fatalf("history of %d points, first %+v last %+v", len(h), h[0], h[len(h)-1])
	}
	if p := h[len(h)-1]; p.Measure != "mae" || p.Value != 0.5 {
		t.Fatalf("last point %+v", p)
	}
}

// BenchmarkObserve is the request path's cost of a monitored model: one
// answer recorded in the ring and the drift histograms (10 features).
func BenchmarkObserve(b *testing.B) {
	tr := NewTracker(Config{})
	ids := make([]string, 50000)
	for i := range ids {
		ids[i] = "req-" + strconv.Itoa(i)
	}
	p, o := feats(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), []byte(`{"prediction":38.5}`)
	now := time.Now()
	for i := range 2000 {
		tr.Observe("1", ids[i], p, o, now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr.Observe("1", ids[i%len(ids)], p, o, now)
	}
}
