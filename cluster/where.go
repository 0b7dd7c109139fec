package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/manta-ml/manta/cluster/internal/wire"
)

// ErrNotManta is returned by the placement helpers of a member started
// with another Config.Lookup.
var ErrNotManta = errors.New("cluster: the member does not use Manta's placement")

// Placement is where one activation of a model lives.
type Placement struct {
	Identity string `json:"identity"` // id, or id@k for replica k
	Member   string `json:"member"`   // member id
	Address  string `json:"address"`  // member's cluster address
	HTTP     string `json:"http,omitempty"`
	PID      string `json:"pid"`
}

// Where is the answer of Member.Where: the activations of a model (none
// when it is not active).
type Where struct {
	Model       string      `json:"model"`
	Replicas    int         `json:"replicas"` // extra replicas in the rebalancer's table
	Activations []Placement `json:"activations"`
}

// Where asks the directories of model id (and of its replicas) where it
// is active. It activates nothing. ctx bounds the whole question.
func (m *Member) Where(ctx context.Context, id string) (*Where, error) {
	l := m.lookup
	if l == nil {
		return nil, ErrNotManta
	}
	out := &Where{Model: id, Replicas: l.Replicas(id)}
	loads := m.loadsByAddr(ctx)
	for k := 0; k <= out.Replicas; k++ {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		identity := ReplicaIdentity(id, k)
		resp, err := l.Resolve(identity, KindModel, true)
		if err != nil {
			return out, fmt.Errorf("cluster: where %s: %w", identity, err)
		}
		if resp.Pid == nil {
			continue
		}
		p := Placement{Identity: identity, Member: resp.Member, Address: resp.Pid.Address, PID: resp.Pid.Address + "/" + resp.Pid.Id}
		if ld, ok := loads[p.Address]; ok {
			p.HTTP = ld.HTTP
			if p.Member == "" {
				p.Member = ld.ID
			}
		}
		out.Activations = append(out.Activations, p)
	}
	return out, nil
}

// MemberLoad is one member's load as gossiped.
type MemberLoad struct {
	ID           string        `json:"id"`
	Address      string        `json:"address"`
	HTTP         string        `json:"http,omitempty"`
	Budget       int64         `json:"budget_bytes"`
	Used         int64         `json:"used_bytes"`
	Pinned       int64         `json:"pinned_bytes"`
	Active       int64         `json:"active_bytes"` // promised to activations
	ModelsLoaded int           `json:"models_loaded"`
	Activations  int           `json:"activations"`
	Rate         float64       `json:"rate"` // requests/s, EWMA
	Hosted       []HostedModel `json:"hosted,omitempty"`
	Age          time.Duration `json:"age"` // since the member published it
	// Placement is what the member's placement counted: its directory,
	// activator and, on the leader, rebalancer.
	Placement Stats `json:"placement"`
}

// HostedModel is one activation in a MemberLoad.
type HostedModel struct {
	Identity string    `json:"identity"`
	Bytes    int64     `json:"bytes"`
	Rate     float64   `json:"rate"`
	Since    time.Time `json:"since"`
}

func memberLoad(ld *wire.Load, now time.Time) MemberLoad {
	out := MemberLoad{ID: ld.MemberId, Address: ld.Address, HTTP: ld.Http, Budget: ld.Budget, Used: ld.Used,
		Pinned: ld.Pinned, Active: ld.Active, ModelsLoaded: int(ld.ModelsLoaded), Activations: int(ld.Activations),
		Rate: ld.Rate, Age: now.Sub(time.UnixMilli(ld.AtUnixMs))}
	for _, h := range ld.Hosted {
		out.Hosted = append(out.Hosted, HostedModel{Identity: h.Identity, Bytes: h.Bytes, Rate: h.Rate, Since: time.UnixMilli(h.SinceUnixMs)})
	}
	if c := ld.Counters; c != nil {
		out.Placement = Stats{Lookups: c.Lookups, Placed: c.Placed, Refused: c.Refused, TooLarge: c.TooLarge, Duplicates: c.Duplicates,
			Adopted: c.Adopted, Activated: c.Activated, Plans: c.Plans, MovesPlanned: c.MovesPlanned, Moves: c.Moves,
			MoveFailures: c.MoveFailures, ReplicasAdded: c.ReplicasAdded, ReplicasGone: c.ReplicasGone}
	}
	return out
}

// Loads returns every member's gossiped load, by address. A member reads
// its own gossip; a client asks the leader.
func (m *Member) Loads(ctx context.Context) ([]MemberLoad, error) {
	l := m.lookup
	if l == nil {
		return nil, ErrNotManta
	}
	var loads []*wire.Load
	if !l.client {
		loads = l.loadsResponse().Loads
	} else {
		t := l.topo.Load()
		if t.leader == "" {
			return nil, ErrNoMembers
		}
		wait := l.cfg.FailureDetection
		if d, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(d))
		}
		res, err := l.ask(placerAt(t.leader), &wire.LoadsRequest{}, wait, t, t.leader)
		if err != nil {
			return nil, fmt.Errorf("cluster: loads: %w", err)
		}
		r, ok := res.(*wire.LoadsResponse)
		if !ok {
			return nil, fmt.Errorf("cluster: loads: unexpected answer %T", res)
		}
		loads = r.Loads
	}
	now := time.Now()
	out := make([]MemberLoad, 0, len(loads))
	for _, ld := range loads {
		out = append(out, memberLoad(ld, now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

func (m *Member) loadsByAddr(ctx context.Context) map[string]MemberLoad {
	out := map[string]MemberLoad{}
	loads, _ := m.Loads(ctx)
	for _, ld := range loads {
		out[ld.Address] = ld
	}
	return out
}

// PlacementStats returns what this process's placement counted (zero with
// another Config.Lookup).
func (m *Member) PlacementStats() Stats {
	if m.lookup == nil {
		return Stats{}
	}
	return m.lookup.Stats()
}

// Alive reports whether addr is this process or a current member (true
// for any address with another Config.Lookup). The SDK uses it to resend
// requests whose target member left instead of waiting for their
// deadline.
func (m *Member) Alive(addr string) bool {
	if m.lookup == nil {
		return true
	}
	return m.lookup.Alive(addr)
}

// Route picks the identity to send a request for model id to: id, or one
// of its hot-model replicas by power of two choices on outstanding
// requests. Call done when the request has ended.
func (m *Member) Route(id string) (identity string, done func()) {
	if m.lookup == nil {
		return id, func() {}
	}
	return m.lookup.Route(id)
}

// SetHTTP records the member's HTTP address for its gossiped load.
func (m *Member) SetHTTP(addr string) {
	if m.lookup != nil {
		m.lookup.SetHTTP(addr)
	}
}
