package actors

import (
	"context"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/manta-ml/manta/api"
)

// PollVersions notices new versions in the store: every interval it asks
// each model actor active on this member to re-resolve its version (LATEST
// or the highest); an actor that finds a new one rolls it out (loaded
// beside the old one, or drained then swapped when memory is short). It
// returns when ctx ends. Each check costs one Store.Latest per active model.
func (h *Host) PollVersions(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, pid := range h.activePIDs("") {
			h.send(pid, &api.ReloadRequest{})
		}
	}
}

// ReloadLocal asks the activations of model id on this member (replicas
// included) to check for a new version now, e.g. when the store's webhook
// says LATEST or a manifest changed. It returns how many it asked.
func (h *Host) ReloadLocal(id string) int {
	pids := h.activePIDs(id)
	for _, pid := range pids {
		h.send(pid, &api.ReloadRequest{ModelId: id})
	}
	return len(pids)
}

func (h *Host) activePIDs(id string) []*actor.PID {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*actor.PID
	for identity, pid := range h.active {
		if id == "" || identity == id || strings.HasPrefix(identity, id+"@") {
			out = append(out, pid)
		}
	}
	return out
}

func (h *Host) send(pid *actor.PID, msg any) {
	h.mu.Lock()
	sys := h.system
	h.mu.Unlock()
	if sys != nil {
		sys.Root.Send(pid, msg)
	}
}
