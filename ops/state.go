package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/internal/httpjson"
	"github.com/manta-ml/manta/internal/redact"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/status"
)

// ModelStats are one model's serving statistics on one member (usage
// count, durations, since: the seed design's per-model stats).
type ModelStats struct {
	Model       string    `json:"model"`
	Version     string    `json:"version,omitempty"`
	Active      bool      `json:"active"`
	Count       int64     `json:"count"`
	Errors      int64     `json:"errors"`
	Batches     int64     `json:"batches"`
	TotalMS     float64   `json:"total_ms"`
	MeanMS      float64   `json:"mean_ms"`
	MinMS       float64   `json:"min_ms"`
	MaxMS       float64   `json:"max_ms"`
	P50MS       float64   `json:"p50_ms"`
	P95MS       float64   `json:"p95_ms"`
	P99MS       float64   `json:"p99_ms"`
	MemoryBytes int64     `json:"memory_bytes"`
	Since       time.Time `json:"since"`
	// Quality is the model's live quality and drift on this member, for
	// a monitored model (its newest version; with replicas here, the
	// activation with the most joined labels).
	Quality *QualityView `json:"quality,omitempty"`
}

// LoadedModel is one model version in the member's memory.
type LoadedModel struct {
	Model    string    `json:"model"`
	Version  string    `json:"version"`
	Bytes    int64     `json:"bytes"`
	Pinned   bool      `json:"pinned"`
	LoadMS   float64   `json:"load_ms"`
	LoadedAt time.Time `json:"loaded_at"`
	LastUsed time.Time `json:"last_used"`
}

// MemberCounters are the member's actor and cache counters.
type MemberCounters struct {
	Activations   int64 `json:"activations"`
	Deactivations int64 `json:"deactivations"`
	Batches       int64 `json:"batches"`
	Active        int   `json:"active"`
	Loads         int64 `json:"loads"`
	Hits          int64 `json:"hits"`
	Shared        int64 `json:"shared"`
	Evictions     int64 `json:"evictions"`
	Failures      int64 `json:"load_failures"`
	Loading       int   `json:"loading"`
}

// MemberDetail is GET /v1/member: what this member holds and serves.
type MemberDetail struct {
	Member         string         `json:"member"`
	Time           time.Time      `json:"time"`
	BudgetBytes    int64          `json:"budget_bytes"`
	UsedBytes      int64          `json:"used_bytes"`
	PinnedBytes    int64          `json:"pinned_bytes"`
	HighWaterBytes int64          `json:"high_water_bytes"`
	Counters       MemberCounters `json:"counters"`
	Active         []string       `json:"active"`
	Loaded         []LoadedModel  `json:"loaded"`
	// Models are the models with stats on this member: active ones first,
	// then by request count, at most the limit asked (default 200).
	Models      []ModelStats  `json:"models"`
	ModelsTotal int           `json:"models_total"`
	Recent      []RecentPoint `json:"recent,omitempty"`
}

// MemberView is one member in GET /v1/members: its status (as
// manta.Client.Status reports it) and, when it answered, its details.
type MemberView struct {
	status.Member
	Local       bool          `json:"local"`
	Detail      *MemberDetail `json:"detail,omitempty"`
	DetailError string        `json:"detail_error,omitempty"`
}

// Members is the answer of GET /v1/members.
type Members struct {
	Members []MemberView `json:"members"`
}

const defaultModelLimit = 200

// Detail computes this member's details, with at most limit models
// (<= 0: the default, 200), or only model's stats when model is not "".
func (s *Server) Detail(limit int, model string) *MemberDetail {
	if limit <= 0 {
		limit = defaultModelLimit
	}
	d := &MemberDetail{Time: time.Now().UTC(), Active: []string{}, Loaded: []LoadedModel{}, Models: []ModelStats{}}
	active := map[string]bool{}
	host, cache := s.actors, s.cache
	if host != nil {
		d.Member = host.MemberName()
		d.Active = host.Active()
		sort.Strings(d.Active)
		for _, id := range d.Active {
			active[cluster.ModelOf(id)] = true
		}
		ct := host.Counters()
		d.Counters.Activations, d.Counters.Deactivations, d.Counters.Batches, d.Counters.Active = ct.Activations, ct.Deactivations, ct.Batches, ct.Active
		quality := qualityViews(host)
		ids := host.ServedModels()
		if model != "" {
			ids = []string{model}
		}
		stats := make([]ModelStats, 0, len(ids))
		for _, id := range ids {
			snap := host.ModelStats(id)
			if snap.Since == 0 {
				continue // asked for a model this member never served
			}
			st := statsOf(snap)
			st.Active = active[id]
			st.Quality = quality[id]
			stats = append(stats, st)
		}
		sort.SliceStable(stats, func(i, j int) bool {
			if stats[i].Active != stats[j].Active {
				return stats[i].Active
			}
			return stats[i].Count > stats[j].Count
		})
		d.ModelsTotal = len(stats)
		d.Models = stats[:min(len(stats), limit)]
	}
	if cache != nil {
		cs := cache.Stats()
		d.BudgetBytes, d.UsedBytes, d.PinnedBytes, d.HighWaterBytes = cs.Budget, cs.Used, cs.Pinned, cs.HighWater
		d.Counters.Loads, d.Counters.Hits, d.Counters.Shared = cs.Loads, cs.Hits, cs.Shared
		d.Counters.Evictions, d.Counters.Failures, d.Counters.Loading = cs.Evictions, cs.Failures, cs.Loading
		for _, e := range cache.Loaded() {
			d.Loaded = append(d.Loaded, LoadedModel{Model: e.ID, Version: e.Version, Bytes: e.Bytes, Pinned: e.Refs > 0,
				LoadMS: durMS(int64(e.LoadDuration)), LoadedAt: e.LoadedAt.UTC(), LastUsed: e.LastUsed.UTC()})
		}
	}
	if s.metrics != nil {
		d.Recent = s.metrics.Recent()
	}
	return d
}

func durMS(ns int64) float64 { return ms(float64(ns)) }

func statsOf(st *api.ModelStats) ModelStats {
	out := ModelStats{
		Model: st.ModelId, Version: st.Version, Count: st.Count, Errors: st.Errors, Batches: st.Batches,
		TotalMS: durMS(st.TotalDuration), MinMS: durMS(st.MinDuration), MaxMS: durMS(st.MaxDuration),
		P50MS: durMS(st.P50), P95MS: durMS(st.P95), P99MS: durMS(st.P99), MemoryBytes: st.MemoryBytes,
	}
	if st.Since > 0 {
		out.Since = time.Unix(0, st.Since).UTC()
	}
	if st.Count > 0 {
		out.MeanMS = ms(float64(st.TotalDuration) / float64(st.Count))
	}
	return out
}

// MemberHandler serves GET /v1/member[?limit=n][&model=id]: this
// member's details (with only model's stats when asked).
func (s *Server) MemberHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		httpjson.Write(w, http.StatusOK, s.Detail(limit, r.URL.Query().Get("model")))
	})
}

// MembersHandler serves GET /v1/members: the cluster's members (from the
// WithStatus function), each with its details: this member's computed
// here, the others' asked over HTTP (GET http://<member http>/v1/member)
// in parallel, a member that does not answer in time is listed with
// detail_error.
func (s *Server) MembersHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		ms, err := s.Members(withAuth(r), limit, "")
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		httpjson.Write(w, http.StatusOK, ms)
	})
}

// Members returns the cluster's members with their details (limit and
// model as for Detail).
func (s *Server) Members(ctx context.Context, limit int, model string) (*Members, error) {
	var out Members
	if s.status != nil {
		st, err := s.status(ctx)
		if err != nil {
			return nil, err
		}
		if st != nil {
			out.Members = make([]MemberView, len(st.Members))
			for i, m := range st.Members {
				out.Members[i] = MemberView{Member: m}
			}
		}
	}
	self := ""
	if a, ok := s.b.(httpAddresser); ok {
		self = a.HTTPAddr()
	}
	hasLocal := s.actors != nil || s.cache != nil
	if len(out.Members) == 0 && hasLocal {
		d := s.Detail(limit, model)
		out.Members = []MemberView{{Member: status.Member{ID: d.Member, Address: d.Member, BudgetBytes: d.BudgetBytes,
			UsedBytes: d.UsedBytes, PinnedBytes: d.PinnedBytes, HighWater: d.HighWaterBytes, ModelsLoaded: len(d.Loaded),
			ActiveModels: d.Active, Loads: d.Counters.Loads, Evictions: d.Counters.Evictions,
			Activations: d.Counters.Activations}, Local: true, Detail: d}}
		return &out, nil
	}
	var wg sync.WaitGroup
	for i := range out.Members {
		mv := &out.Members[i]
		if mv.ActiveModels == nil {
			mv.ActiveModels = []string{}
		}
		local := hasLocal && ((self != "" && mv.HTTP == self) || len(out.Members) == 1)
		switch {
		case local:
			mv.Local = true
			mv.Detail = s.Detail(limit, model)
		case mv.HTTP != "":
			addr := routableHTTP(mv.HTTP, mv.Address)
			wg.Add(1)
			go func() {
				defer wg.Done()
				mv.Detail, mv.DetailError = s.remoteDetail(ctx, addr, limit, model)
			}()
		}
	}
	wg.Wait()
	return &out, nil
}

// routableHTTP turns a member's HTTP listen address into one to dial: a
// wildcard host (0.0.0.0, [::], "") is replaced by the host of its
// cluster address (a pod's IP), with the HTTP port kept.
func routableHTTP(httpAddr, clusterAddr string) string {
	h, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return httpAddr
	}
	if ip := net.ParseIP(h); h != "" && (ip == nil || !ip.IsUnspecified()) {
		return httpAddr
	}
	ch, _, err := net.SplitHostPort(clusterAddr)
	if err != nil || ch == "" {
		return httpAddr
	}
	return net.JoinHostPort(ch, port)
}

type authKey struct{}

// withAuth carries the request's Authorization header to the requests
// made for it to other members (which require the same token, if any).
func withAuth(r *http.Request) context.Context {
	if a := r.Header.Get("Authorization"); a != "" {
		return context.WithValue(r.Context(), authKey{}, a)
	}
	return r.Context()
}

// remoteDetail asks another member for its details.
func (s *Server) remoteDetail(ctx context.Context, addr string, limit int, model string) (*MemberDetail, string) {
	u := url.URL{Scheme: "http", Host: addr, Path: "/v1/member"}
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if model != "" {
		q.Set("model", model)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err.Error()
	}
	if id := RequestIDFrom(ctx); id != "" {
		req.Header.Set(RequestIDHeader, id)
	}
	if auth, _ := ctx.Value(authKey{}).(string); auth != "" {
		req.Header.Set("Authorization", auth) // members share the HTTP token
	}
	resp, err := s.remote.Do(req)
	if err != nil {
		return nil, redact.Text(err.Error())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, err.Error()
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Sprintf("%s answered %s", addr, resp.Status)
	}
	var d MemberDetail
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Sprintf("%s: %v", addr, err)
	}
	return &d, ""
}

// ModelView is the answer of GET /v1/models/{id}: the store's view (all
// versions, LATEST, the manifest served), where the model is active in the
// cluster, the versions in this member's memory and its stats on each
// member that has served it.
type ModelView struct {
	ID       string                `json:"id"`
	Versions []string              `json:"versions"`
	Latest   string                `json:"latest"`
	Manifest *modelhost.Manifest   `json:"manifest,omitempty"`
	ActiveOn string                `json:"active_on,omitempty"`
	Members  []string              `json:"active_members"`
	Loaded   []LoadedModel         `json:"loaded"`
	Stats    *legacyStats          `json:"stats,omitempty"`
	ByMember map[string]ModelStats `json:"stats_by_member"`
}

// legacyStats keeps the field names of the SDK's earlier /v1/models/{id}.
type legacyStats struct {
	Count   int64  `json:"count"`
	Errors  int64  `json:"errors"`
	Version string `json:"version"`
	TotalUS int64  `json:"total_us"`
	MinUS   int64  `json:"min_us"`
	MaxUS   int64  `json:"max_us"`
	MeanUS  int64  `json:"mean_us"`
	P50US   int64  `json:"p50_us"`
	P95US   int64  `json:"p95_us"`
	P99US   int64  `json:"p99_us"`
	Batches int64  `json:"batches"`
	Memory  int64  `json:"memory_bytes"`
	Since   string `json:"since"`
}

// ModelHandler serves GET /v1/models/{id} (the path value "id"). It does
// not activate the model.
func (s *Server) ModelHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := s.Model(withAuth(r), r.PathValue("id"))
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		httpjson.Write(w, http.StatusOK, v)
	})
}

// Model describes model id (see ModelView).
func (s *Server) Model(ctx context.Context, id string) (*ModelView, error) {
	m, versions, err := s.manifest(ctx, id, "")
	if err != nil {
		return nil, err
	}
	v := &ModelView{ID: id, Versions: versions, Latest: m.Version, Manifest: m, Members: []string{},
		Loaded: []LoadedModel{}, ByMember: map[string]ModelStats{}}
	if c := s.cache; c != nil {
		for _, e := range c.Loaded() {
			if e.ID == id {
				v.Loaded = append(v.Loaded, LoadedModel{Model: e.ID, Version: e.Version, Bytes: e.Bytes, Pinned: e.Refs > 0,
					LoadMS: durMS(int64(e.LoadDuration)), LoadedAt: e.LoadedAt.UTC(), LastUsed: e.LastUsed.UTC()})
			}
		}
	}
	if h := s.actors; h != nil {
		st := h.ModelStats(id)
		v.Stats = &legacyStats{Count: st.Count, Errors: st.Errors, Version: st.Version,
			TotalUS: st.TotalDuration / 1000, MinUS: st.MinDuration / 1000, MaxUS: st.MaxDuration / 1000,
			P50US: st.P50 / 1000, P95US: st.P95 / 1000, P99US: st.P99 / 1000, Batches: st.Batches, Memory: st.MemoryBytes}
		if st.Count > 0 {
			v.Stats.MeanUS = st.TotalDuration / st.Count / 1000
		}
		if st.Since > 0 {
			v.Stats.Since = time.Unix(0, st.Since).UTC().Format(time.RFC3339)
		}
	}
	ms, err := s.Members(ctx, 0, id)
	if err != nil {
		return v, nil // the store's view still answers
	}
	for _, mv := range ms.Members {
		name := mv.Address
		if mv.Detail != nil && mv.Detail.Member != "" {
			name = mv.Detail.Member
		}
		for _, a := range mv.ActiveModels {
			if cluster.ModelOf(a) == id {
				v.Members = append(v.Members, name)
				if a == id {
					v.ActiveOn = name
				}
			}
		}
		if mv.Detail != nil {
			for _, st := range mv.Detail.Models {
				if st.Model == id {
					v.ByMember[name] = st
				}
			}
		}
	}
	return v, nil
}
