package strategy

import (
	"fmt"
	"sort"
	"sync"

	"github.com/manta-ml/manta/api"
)

// Factory builds a Strategy for one request from its params. It returns an
// error wrapping api.ErrBadInput for a param it does not know or cannot parse.
type Factory func(params map[string]string) (Strategy, error)

var (
	registryMu sync.RWMutex
	factories  = map[string]Factory{}
)

// RegisterStrategy makes a strategy available by name, as database/sql's
// Register does for drivers; call it from an init function. It panics when
// name is empty, factory is nil, or name is already registered.
func RegisterStrategy(name string, factory Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if name == "" {
		panic("strategy: RegisterStrategy with an empty name")
	}
	if factory == nil {
		panic("strategy: RegisterStrategy " + name + " with a nil factory")
	}
	if _, dup := factories[name]; dup {
		panic("strategy: RegisterStrategy called twice for " + name)
	}
	factories[name] = factory
}

// Strategies returns the registered names, sorted.
func Strategies() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]string, 0, len(factories))
	for n := range factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup returns the factory registered under name.
func Lookup(name string) (Factory, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	f, ok := factories[name]
	return f, ok
}

// New builds the strategy registered under name for one request. An unknown
// name, or params the strategy rejects, give an error wrapping
// api.ErrBadInput. A factory that panics gives an error wrapping
// api.ErrInternal.
func New(name string, params map[string]string) (s Strategy, err error) {
	f, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: unknown strategy %q (registered: %v)", api.ErrBadInput, name, Strategies())
	}
	defer func() {
		if v := recover(); v != nil {
			s, err = nil, fmt.Errorf("%w: strategy %q: factory panicked: %v", api.ErrInternal, name, v)
		}
	}()
	s, err = f(params)
	if err != nil {
		return nil, fmt.Errorf("strategy %q: %w", name, err)
	}
	if s == nil {
		return nil, fmt.Errorf("%w: strategy %q: factory returned nil", api.ErrInternal, name)
	}
	return s, nil
}
