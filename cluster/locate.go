package cluster

import (
	"github.com/asynkron/protoactor-go/actor"
)

// Replicas returns the extra replicas (id@1..id@k) of model id in the
// rebalancer's table as this member last saw it: 0 for a model served by
// one activation, and with another Config.Lookup. Feedback fans out to
// id and these (docs/ARCHITECTURE.md §2.4).
func (m *Member) Replicas(id string) int {
	if m.lookup == nil {
		return 0
	}
	return m.lookup.Replicas(id)
}

// Activation returns the PID of identity's live activation as its
// directory records it, activating nothing; nil when it has none, when
// the directory cannot be reached, or with another Config.Lookup. (A
// stopping model activation asks it to hand its join state to the
// activation that replaced it after a move.)
func (m *Member) Activation(identity string) *actor.PID {
	if m.lookup == nil {
		return nil
	}
	resp, err := m.lookup.Resolve(identity, KindModel, true)
	if err != nil || resp == nil {
		return nil
	}
	return pidOf(resp.Pid)
}
