package modelhost

import (
	"sort"
	"sync"
)

// ManifestChecker is an optional interface of a Runtime, found by type
// assertion (like database/sql/driver.Pinger). Manifest.Validate calls
// CheckManifest after its generic checks, so a runtime can refuse a manifest
// it could never load (a format it does not know, a missing option) when the
// model is pushed or listed, not when the first request arrives. The error
// should wrap api.ErrBadInput.
type ManifestChecker interface {
	CheckManifest(m *Manifest) error
}

// MemoryEstimator is an optional interface of a Runtime: EstimateMemory
// gives the cache's admission estimate for a manifest without memory_bytes
// (the default estimate is the sum of the file sizes).
type MemoryEstimator interface {
	EstimateMemory(m *Manifest) int64
}

var (
	runtimesMu sync.RWMutex
	runtimes   = make(map[string]Runtime)
)

// RegisterRuntime makes a runtime available under name, to be named by the
// "runtime" field of manifests. Like database/sql.Register it is meant to be
// called from init functions, and it panics if r is nil, name is empty, or
// name is already registered.
func RegisterRuntime(name string, r Runtime) {
	if name == "" {
		panic("modelhost: RegisterRuntime with an empty name")
	}
	if r == nil {
		panic("modelhost: RegisterRuntime " + name + ": runtime is nil")
	}
	runtimesMu.Lock()
	defer runtimesMu.Unlock()
	if _, dup := runtimes[name]; dup {
		panic("modelhost: RegisterRuntime called twice for runtime " + name)
	}
	runtimes[name] = r
}

// Runtimes returns the names of the registered runtimes, sorted.
func Runtimes() []string {
	runtimesMu.RLock()
	defer runtimesMu.RUnlock()
	names := make([]string, 0, len(runtimes))
	for n := range runtimes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupRuntime returns the runtime registered under name.
func LookupRuntime(name string) (Runtime, bool) {
	runtimesMu.RLock()
	defer runtimesMu.RUnlock()
	r, ok := runtimes[name]
	return r, ok
}
