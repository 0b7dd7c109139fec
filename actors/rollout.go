package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/modelhost"
)

// PollVersions notices new versions in the store. Its checks are spread
// over the interval, a slice of the active models on every tick, so a pass
// over all of them takes about interval, and bounded by PollRate checks a
// second (a member with many models takes longer per pass instead of
// bursting). A model actor that is asked re-resolves its version (LATEST
// or the highest) and rolls a new one out (loaded beside the old one, or
// drained then swapped when memory is short). When the store is a
// modelhost.VersionStamper, a model whose stamp has not changed since the
// last pass is not asked at all: the check costs the stamp (two stats for
// a directory), not a version resolution. It returns when ctx ends.
func (h *Host) PollVersions(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	tick := min(interval/10, 100*time.Millisecond)
	if tick <= 0 {
		tick = interval
	}
	rate := h.PollRate
	if rate <= 0 {
		rate = DefaultPollRate
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	stamper, _ := h.Store.(modelhost.VersionStamper)
	var credit float64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		n := len(h.order)
		want := float64(n) * float64(tick) / float64(interval)
		credit = min(credit+min(want, rate*tick.Seconds()), float64(n)+1)
		var batch []string
		for credit >= 1 && n > 0 && len(batch) < n {
			if h.cursor >= n {
				h.cursor = 0
			}
			batch = append(batch, h.order[h.cursor])
			h.cursor++
			credit--
		}
		h.mu.Unlock()
		for _, identity := range batch {
			if stamper != nil && !h.stampChanged(ctx, stamper, identity) {
				continue
			}
			h.mu.Lock()
			pid := h.active[identity]
			h.mu.Unlock()
			if pid != nil {
				h.send(pid, &api.ReloadRequest{})
			}
		}
	}
}

// DefaultPollRate is Host.PollRate's default: version checks per second.
const DefaultPollRate = 200

// stampChanged reports whether identity's model has a stamp other than the
// last one seen (or none seen yet, or the stamp fails: then check).
func (h *Host) stampChanged(ctx context.Context, st modelhost.VersionStamper, identity string) bool {
	id := cluster.ModelOf(identity)
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	stamp, err := st.VersionStamp(c, id)
	cancel()
	if err != nil || stamp == "" {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, active := h.active[identity]; !active {
		return false
	}
	if h.stamps == nil {
		h.stamps = map[string]string{}
	}
	old, seen := h.stamps[identity]
	h.stamps[identity] = stamp
	return !seen || old != stamp
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
		if id == "" || cluster.ModelOf(identity) == id {
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
