package modelhost

import (
	"testing"
	"time"
)

func TestProgressMeter(t *testing.T) {
	var got []Progress
	m := NewProgressMeter(func(p Progress) { got = append(got, p) }, Progress{ID: "m", Version: "1", Path: "a", Total: 1000})
	now := m.start
	m.now = func() time.Time { return now }
	now = now.Add(time.Second)
	m.Add(100) // first report: a second in, 100 B/s
	m.Add(100) // within ProgressInterval: no report
	now = now.Add(ProgressInterval)
	m.SetPath("b")
	if _, err := m.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	m.Finish()
	if len(got) != 3 {
		t.Fatalf("%d reports: %+v", len(got), got)
	}
	if p := got[0]; p.Bytes != 100 || p.Rate != 100 || p.ETA != 9*time.Second || p.Path != "a" || p.Done {
		t.Errorf("first report %+v", p)
	}
	if p := got[1]; p.Bytes != 300 || p.Path != "b" || p.ID != "m" || p.Version != "1" {
		t.Errorf("second report %+v", p)
	}
	if p := got[2]; !p.Done || p.Bytes != 1000 || p.ETA != 0 {
		t.Errorf("final report %+v", p)
	}

	unknown := NewProgressMeter(func(p Progress) { got = append(got, p) }, Progress{Total: -5})
	unknown.now = func() time.Time { return unknown.start.Add(time.Second) }
	unknown.Add(10)
	if p := got[len(got)-1]; p.Total != -1 || p.ETA != -1 || p.Rate != 10 {
		t.Errorf("unknown total %+v", p)
	}
	NewProgressMeter(nil, Progress{}).Add(1) // counting only
}
