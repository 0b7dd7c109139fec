package pyworker

import (
	"context"
	"io"

	"github.com/manta-ml/manta/modelhost"
)

// Close shuts the registered runtime's workers down (CloseDefault), as
// io.Closer: modelhost.CloseRuntimes calls it when the SDK's last member
// in the process closes. A later Load starts a new supervisor.
func (r *lazyRuntime) Close() error { return CloseDefault() }

// WorkerStats reports the registered runtime's workers without starting
// them (ok is false while no Python model was loaded).
func (r *lazyRuntime) WorkerStats(ctx context.Context) (modelhost.WorkerStats, bool) {
	s := Started()
	if s == nil {
		return modelhost.WorkerStats{}, false
	}
	var st modelhost.WorkerStats
	for _, w := range s.Workers(ctx) {
		if w.Running {
			st.Alive++
		}
		st.Restarts += w.Restarts
		for _, m := range w.Models {
			st.MemoryBytes += m.MemoryBytes
		}
	}
	return st, true
}

var (
	_ io.Closer                = (*lazyRuntime)(nil)
	_ modelhost.WorkerReporter = (*lazyRuntime)(nil)
)
