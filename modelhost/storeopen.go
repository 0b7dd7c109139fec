package modelhost

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/manta-ml/manta/internal/redact"
)

// OpenStoreFunc opens a store from a URL of its scheme.
type OpenStoreFunc func(ctx context.Context, u *url.URL) (Store, error)

var (
	schemesMu sync.RWMutex
	schemes   = make(map[string]OpenStoreFunc)
)

// RegisterStore makes OpenStore handle URLs of scheme (e.g. "s3", which
// package modelhost/s3store registers in its init). Like database/sql.Register
// it panics if open is nil, scheme is empty or "file" (built in), or scheme
// is already registered. Schemes are case-insensitive.
func RegisterStore(scheme string, open func(ctx context.Context, u *url.URL) (Store, error)) {
	scheme = strings.ToLower(scheme)
	if scheme == "" {
		panic("modelhost: RegisterStore with an empty scheme")
	}
	if open == nil {
		panic("modelhost: RegisterStore " + scheme + ": open is nil")
	}
	if scheme == "file" {
		panic("modelhost: RegisterStore: scheme file is built in")
	}
	schemesMu.Lock()
	defer schemesMu.Unlock()
	if _, dup := schemes[scheme]; dup {
		panic("modelhost: RegisterStore called twice for scheme " + scheme)
	}
	schemes[scheme] = open
}

// StoreSchemes returns the URL schemes OpenStore accepts, sorted ("file"
// included).
func StoreSchemes() []string {
	schemesMu.RLock()
	defer schemesMu.RUnlock()
	names := []string{"file"}
	for s := range schemes {
		names = append(names, s)
	}
	sort.Strings(names)
	return names
}

// OpenStore opens the store a spec names: a plain directory path
// ("./models", "/srv/models") or a file:// URL opens a DirStore; any other
// URL goes to the opener registered for its scheme, e.g.
// "s3://bucket/prefix?endpoint=127.0.0.1:9000" once modelhost/s3store is
// imported. An unknown scheme is an error (wrapping api.ErrBadInput) that
// lists the known ones.
func OpenStore(ctx context.Context, spec string) (Store, error) {
	if spec == "" {
		return nil, badInput("store: empty spec")
	}
	i := strings.Index(spec, "://")
	if i <= 0 {
		return NewDirStore(spec) // a path (possibly containing ':')
	}
	u, err := url.Parse(spec)
	if err != nil {
		return nil, badInput("store %q: %v", redact.URL(spec), redact.Text(err.Error()))
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return nil, badInput("store %q: file URLs on another host are not supported", spec)
		}
		if u.Path == "" {
			return nil, badInput("store %q: no path", spec)
		}
		return NewDirStore(u.Path)
	}
	schemesMu.RLock()
	open := schemes[scheme]
	schemesMu.RUnlock()
	if open == nil {
		return nil, badInput("store %q: unknown scheme %q (known: %s; is the package that registers it imported?)",
			redact.URL(spec), u.Scheme, strings.Join(StoreSchemes(), ", "))
	}
	s, err := open(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", redact.URL(spec), err)
	}
	if s == nil {
		return nil, fmt.Errorf("store %s: opener returned a nil store", redact.URL(spec))
	}
	return s, nil
}
