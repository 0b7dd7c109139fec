package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/actors"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/ops"
	"github.com/manta-ml/manta/status"
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

// selfAddressed gives a Backend the optional HTTPAddr ability.
type selfAddressed struct {
	*manta.Client
	addr string
}

func (s selfAddressed) HTTPAddr() string { return s.addr }

// TestMembersAsksOtherMembers: /v1/members merges this member's details
// with those other members serve at /v1/member (asked with the caller's
// bearer token), and names a member that does not answer.
func TestMembersAsksOtherMembers(t *testing.T) {
	e := newEnv(t, func(root string) { linear(t, root, "m1", "1", []float64{1}, 0) })
	e.predict(t, "m1", "[1]")
	var gotAuth atomic.Value
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Authorization"))
		if r.URL.Path != "/v1/member" || r.URL.Query().Get("model") != "m1" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(ops.MemberDetail{Member: "other-0",
			Models: []ops.ModelStats{{Model: "m1", Count: 41, Version: "1"}}})
	}))
	defer remote.Close()
	_, remotePort, _ := net.SplitHostPort(strings.TrimPrefix(remote.URL, "http://"))
	members := []status.Member{
		{ID: "a", Address: "127.0.0.1:7001", HTTP: "127.0.0.1:9999", ActiveModels: []string{}},
		// A wildcard HTTP address is dialled at the cluster address's host.
		{ID: "b", Address: "127.0.0.1:7002", HTTP: "0.0.0.0:" + remotePort, ActiveModels: []string{"m1@2"}},
		{ID: "c", Address: "127.0.0.1:7003", HTTP: "127.0.0.1:1", ActiveModels: []string{}},
	}
	s, err := ops.NewServer(selfAddressed{e.c, "127.0.0.1:9999"}, ops.WithMember(e.c.Host(), e.c.Cache()),
		ops.WithStatus(func(ctx context.Context) (*status.Cluster, error) {
			return &status.Cluster{Members: members}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	mux.Handle("GET /v1/models/{id}", s.ModelHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/models/m1", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var mv ops.ModelView
	err = json.NewDecoder(resp.Body).Decode(&mv)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := gotAuth.Load().(string); a != "Bearer tok" {
		t.Errorf("remote member asked with Authorization %q", a)
	}
	if st := mv.ByMember["other-0"]; st.Count != 41 {
		t.Errorf("remote stats %+v", mv.ByMember)
	}
	if st := mv.ByMember[e.c.MemberName()]; st.Count != 1 {
		t.Errorf("local stats %+v", mv.ByMember)
	}
	if len(mv.Members) != 1 || mv.Members[0] != "other-0" || mv.ActiveOn != "" {
		t.Errorf("replica m1@2 on other-0: members %v active_on %q", mv.Members, mv.ActiveOn)
	}

	var ms ops.Members
	resp, err = http.Get(srv.URL + "/v1/members")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&ms)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms.Members) != 3 || !ms.Members[0].Local || ms.Members[0].Detail == nil || ms.Members[0].Detail.Member != e.c.MemberName() {
		t.Fatalf("members %+v", ms.Members)
	}
	if ms.Members[1].Local || ms.Members[1].DetailError == "" {
		t.Errorf("member b answered 404 to /v1/member without ?model: %+v", ms.Members[1])
	}
	if ms.Members[2].Detail != nil || ms.Members[2].DetailError == "" {
		t.Errorf("unreachable member c: %+v", ms.Members[2])
	}
}

// fakeActors and fakeCache stand in for a member's model actors and cache:
// ops reads them through its interfaces, with no member running.
type fakeActors struct{}

func (fakeActors) MemberName() string        { return "fake-member" }
func (fakeActors) Active() []string          { return []string{"m1"} }
func (fakeActors) Counters() actors.Counters { return actors.Counters{Activations: 3, Active: 1} }
func (fakeActors) ServedModels() []string    { return []string{"m1"} }
func (fakeActors) ModelStats(id string) *api.ModelStats {
	return &api.ModelStats{ModelId: id, Version: "2", Count: 5, Since: 1}
}

type fakeCache struct{}

func (fakeCache) Stats() modelhost.CacheStats { return modelhost.CacheStats{Budget: 100, Used: 40} }
func (fakeCache) Loaded() []modelhost.Entry   { return nil }

type nullBackend struct{}

func (nullBackend) Do(context.Context, *api.PredictRequest) *api.PredictResponse {
	return &api.PredictResponse{}
}
func (nullBackend) Store() modelhost.Store { return nil }

// The member's state reaches ops through typed interfaces, and the cluster
// status as the SDK's type, with no JSON in between.
func TestMembersFromInterfaces(t *testing.T) {
	st := &status.Cluster{Members: []status.Member{
		{ID: "x", Address: "127.0.0.1:7001", HTTP: "127.0.0.1:9999", Goroutines: 42},
	}}
	s, err := ops.NewServer(nullBackend{}, ops.WithMember(fakeActors{}, fakeCache{}),
		ops.WithStatus(func(context.Context) (*status.Cluster, error) { return st, nil }))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := s.Members(context.Background(), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms.Members) != 1 {
		t.Fatalf("members %+v", ms.Members)
	}
	mv := ms.Members[0]
	if mv.Member.Goroutines != 42 || !mv.Local || mv.Detail == nil {
		t.Fatalf("member view %+v", mv)
	}
	d := mv.Detail
	if d.Member != "fake-member" || d.BudgetBytes != 100 || d.UsedBytes != 40 || d.Counters.Activations != 3 ||
		len(d.Models) != 1 || d.Models[0].Count != 5 || !d.Models[0].Active {
		t.Fatalf("detail %+v", d)
	}

	// A nil *actors.Host or *modelhost.Cache (a client process) counts as
	// none: no local member, and no panic.
	var h *actors.Host
	var c *modelhost.Cache
	s, err = ops.NewServer(nullBackend{}, ops.WithMember(h, c))
	if err != nil {
		t.Fatal(err)
	}
	ms, err = s.Members(context.Background(), 0, "")
	if err != nil || len(ms.Members) != 0 {
		t.Fatalf("members of a process without a member: %+v, %v", ms, err)
	}
	if d := s.Detail(0, ""); d.Member != "" || len(d.Models) != 0 {
		t.Fatalf("detail without a member: %+v", d)
	}
}
