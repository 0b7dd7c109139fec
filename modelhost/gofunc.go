package modelhost

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/manta-ml/manta/api"
)

// GoRuntimeName is the name of the Go-function runtime.
const GoRuntimeName = "go"

// LoadFunc loads a Go-native model. m is the manifest, dir holds its files
// (already verified; there may be none).
type LoadFunc func(ctx context.Context, m *Manifest, dir string) (Model, error)

var (
	funcsMu sync.RWMutex
	funcs   = make(map[string]LoadFunc)
)

// RegisterFunc registers a Go model loader under name, for manifests
// {"runtime": "go", "entrypoint": name}. It is how tests, examples and
// Go-native models plug in without a file format. Like RegisterRuntime it
// panics if load is nil, name is empty, or name is already registered.
func RegisterFunc(name string, load LoadFunc) {
	if name == "" {
		panic("modelhost: RegisterFunc with an empty name")
	}
	if load == nil {
		panic("modelhost: RegisterFunc " + name + ": load is nil")
	}
	funcsMu.Lock()
	defer funcsMu.Unlock()
	if _, dup := funcs[name]; dup {
		panic("modelhost: RegisterFunc called twice for " + name)
	}
	funcs[name] = load
}

// Funcs returns the names registered with RegisterFunc, sorted.
func Funcs() []string {
	funcsMu.RLock()
	defer funcsMu.RUnlock()
	names := make([]string, 0, len(funcs))
	for n := range funcs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// goRuntime is the "go" runtime: the entrypoint names a registered LoadFunc.
type goRuntime struct{}

func init() { RegisterRuntime(GoRuntimeName, goRuntime{}) }

// Load calls the LoadFunc the entrypoint names. A name that is not
// registered in this process is a load failure (api.ErrLoadFailed), not
// not_found: the model exists in the store, this member just cannot run
// it. The error lists the registered names.
func (goRuntime) Load(ctx context.Context, m *Manifest, dir string) (Model, error) {
	funcsMu.RLock()
	load, ok := funcs[m.Entrypoint]
	funcsMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: go function %q is not registered in this process (registered: %s)",
			api.ErrLoadFailed, m.Entrypoint, strings.Join(Funcs(), ", "))
	}
	model, err := load(ctx, m, dir)
	if err != nil {
		return nil, loadFailed(fmt.Errorf("go function %s: %w", m.Entrypoint, err))
	}
	if model == nil {
		return nil, fmt.Errorf("%w: go function %s returned a nil model", api.ErrLoadFailed, m.Entrypoint)
	}
	return model, nil
}

// PredictFunc is the signature of a model's Predict.
type PredictFunc func(ctx context.Context, batch []Input) ([]Output, error)

// NewFuncModel makes a Model of a predict function that reports
// memoryBytes and has nothing to close.
func NewFuncModel(predict PredictFunc, memoryBytes int64) Model {
	return &funcModel{predict: predict, mem: memoryBytes}
}

type funcModel struct {
	predict PredictFunc
	mem     int64
}

func (f *funcModel) Predict(ctx context.Context, batch []Input) ([]Output, error) {
	return f.predict(ctx, batch)
}
func (f *funcModel) MemoryBytes() int64 { return f.mem }
func (f *funcModel) Close() error       { return nil }

// Interface guards.
var (
	_ Runtime = goRuntime{}
	_ Model   = (*funcModel)(nil)
)
