package ops_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/manta-ml/manta/ops"
)

func TestMembersAndModelState(t *testing.T) {
	e := newEnv(t, func(root string) {
		linear(t, root, "m1", "1", []float64{1, 2}, 0)
		linear(t, root, "m1", "2", []float64{2, 2}, 0)
		linear(t, root, "cold", "1", []float64{1}, 0)
	})
	for i := range 4 {
		e.predict(t, "m1", fmt.Sprintf("[%d,%d]", i, i))
	}
	member := e.c.MemberName()

	var ms ops.Members
	e.getJSON(t, "/v1/members", &ms)
	if len(ms.Members) != 1 {
		t.Fatalf("members %+v", ms)
	}
	mv := ms.Members[0]
	if !mv.Local || mv.Detail == nil || mv.Detail.Member != member || mv.BudgetBytes != 64<<20 || mv.ModelsLoaded != 1 {
		t.Fatalf("member %+v", mv)
	}
	if len(mv.ActiveModels) != 1 || mv.ActiveModels[0] != "m1" {
		t.Fatalf("active %v", mv.ActiveModels)
	}
	d := mv.Detail
	if len(d.Models) != 1 || d.Models[0].Model != "m1" || d.Models[0].Count != 4 || !d.Models[0].Active ||
		d.Models[0].Version != "2" || d.Models[0].MeanMS <= 0 || d.Models[0].P99MS < d.Models[0].P50MS {
		t.Fatalf("model stats %+v", d.Models)
	}
	if len(d.Loaded) != 1 || !d.Loaded[0].Pinned || d.Loaded[0].Version != "2" {
		t.Fatalf("loaded %+v", d.Loaded)
	}
	var reqs int64
	for _, p := range d.Recent {
		reqs += p.Requests
	}
	if reqs != 4 || len(d.Recent) != 300 {
		t.Fatalf("recent: %d requests over %d points", reqs, len(d.Recent))
	}

	var mvw ops.ModelView
	e.getJSON(t, "/v1/models/m1", &mvw)
	if mvw.ID != "m1" || mvw.Latest != "2" || len(mvw.Versions) != 2 || mvw.Manifest == nil || mvw.Manifest.Runtime != "linear" {
		t.Fatalf("model view %+v", mvw)
	}
	if mvw.ActiveOn != member || len(mvw.Members) != 1 || mvw.Stats == nil || mvw.Stats.Count != 4 || mvw.Stats.Version != "2" {
		t.Fatalf("model placement/stats %+v %+v", mvw, mvw.Stats)
	}
	if st, ok := mvw.ByMember[member]; !ok || st.Count != 4 {
		t.Fatalf("stats by member %+v", mvw.ByMember)
	}
	if len(mvw.Loaded) != 1 {
		t.Fatalf("loaded %+v", mvw.Loaded)
	}
	// A model in the store that never ran: no placement, no stats by member.
	mvw = ops.ModelView{}
	e.getJSON(t, "/v1/models/cold", &mvw)
	if mvw.ActiveOn != "" || len(mvw.ByMember) != 0 || mvw.Stats.Count != 0 {
		t.Fatalf("cold model %+v", mvw)
	}
	status, body := e.do(t, http.MethodGet, "/v1/models/nope", "")
	if status != http.StatusNotFound {
		t.Fatalf("unknown model: %d %s", status, body)
	}
	errorBody(t, body)

	var one ops.MemberDetail
	e.getJSON(t, "/v1/member?model=cold", &one)
	if len(one.Models) != 0 {
		t.Fatalf("filtered detail %+v", one.Models)
	}
	one = ops.MemberDetail{}
	e.getJSON(t, "/v1/member?model=m1", &one)
	if len(one.Models) != 1 {
		t.Fatalf("filtered detail %+v", one.Models)
	}
	// The SDK's own routes still answer beside ours.
	var st struct {
		Members []map[string]any `json:"members"`
	}
	e.getJSON(t, "/v1/status", &st)
	if len(st.Members) != 1 {
		t.Fatalf("status %+v", st)
	}
}
