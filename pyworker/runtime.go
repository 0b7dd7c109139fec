package pyworker

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
)

// RuntimeName is the name the runtime is registered under: manifests say
// "runtime": "python".
const RuntimeName = "python"

// Formats are the model formats the worker loads.
var Formats = []string{"sklearn-joblib", "python-class", "xgboost"}

func init() {
	modelhost.RegisterRuntime(RuntimeName, defaultRuntime)
}

// defaultRuntime is the registered runtime: it creates its supervisor at
// the first Load, from the configuration given to Configure (else
// DefaultConfig).
var defaultRuntime = &lazyRuntime{}

type lazyRuntime struct {
	mu  sync.Mutex
	cfg *Config
	s   *Supervisor
}

func (r *lazyRuntime) get() (*Supervisor, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s != nil {
		return r.s, nil
	}
	cfg := DefaultConfig()
	if r.cfg != nil {
		cfg = *r.cfg
	}
	s, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrLoadFailed, err)
	}
	r.s = s
	return s, nil
}

func (r *lazyRuntime) Load(ctx context.Context, m *modelhost.Manifest, dir string) (modelhost.Model, error) {
	s, err := r.get()
	if err != nil {
		return nil, err
	}
	return s.Load(ctx, m, dir)
}

func (r *lazyRuntime) CheckManifest(m *modelhost.Manifest) error { return CheckManifest(m) }

// Configure sets the configuration of the registered "python" runtime. It
// must come before the runtime's first Load; afterwards it is an error.
func Configure(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	defaultRuntime.mu.Lock()
	defer defaultRuntime.mu.Unlock()
	if defaultRuntime.s != nil {
		return errors.New("pyworker: Configure after the python runtime started")
	}
	defaultRuntime.cfg = &cfg
	return nil
}

// Default returns the registered runtime's supervisor, creating it if no
// model has been loaded yet (to Warm it or list its Workers).
func Default() (*Supervisor, error) { return defaultRuntime.get() }

// CloseDefault shuts the registered runtime's workers down (a member
// calls it at exit). A later Load starts a new supervisor.
func CloseDefault() error {
	defaultRuntime.mu.Lock()
	s := defaultRuntime.s
	defaultRuntime.s = nil
	defaultRuntime.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.Close()
}

// CheckManifest refuses a manifest the worker could never load: an unknown
// format, or an entrypoint that is not a file inside the model's directory
// (python-class: "module.py:ClassName"). Errors wrap api.ErrBadInput.
// An empty format is inferred from the entrypoint as the worker does
// (.joblib/.pkl/.pickle: sklearn-joblib; .json/.ubj/.xgb/.model/.bst:
// xgboost; file.py:Class: python-class).
func CheckManifest(m *modelhost.Manifest) error {
	format := m.Format
	if format == "" {
		format = inferFormat(m.Entrypoint)
		if format == "" {
			return fmt.Errorf("%w: python model %s: no format, and none can be inferred from entrypoint %q (formats: %s)", api.ErrBadInput, m.ID, m.Entrypoint, strings.Join(Formats, ", "))
		}
	}
	known := false
	for _, f := range Formats {
		known = known || f == format
	}
	if !known {
		return fmt.Errorf("%w: python model %s: unknown format %q (formats: %s)", api.ErrBadInput, m.ID, format, strings.Join(Formats, ", "))
	}
	path := m.Entrypoint
	if format == "python-class" {
		p, cls, ok := strings.Cut(m.Entrypoint, ":")
		if !ok || cls == "" || !strings.HasSuffix(p, ".py") || strings.Contains(cls, ":") {
			return fmt.Errorf("%w: python model %s: python-class entrypoint must be module.py:ClassName, got %q", api.ErrBadInput, m.ID, m.Entrypoint)
		}
		path = p
	}
	if path == "" || !filepath.IsLocal(path) {
		return fmt.Errorf("%w: python model %s: entrypoint %q must be a relative path inside the model's directory", api.ErrBadInput, m.ID, m.Entrypoint)
	}
	return nil
}

func inferFormat(entrypoint string) string {
	if p, _, ok := strings.Cut(entrypoint, ":"); ok && strings.HasSuffix(p, ".py") {
		return "python-class"
	}
	low := strings.ToLower(entrypoint)
	for _, s := range []string{".joblib", ".pkl", ".pickle"} {
		if strings.HasSuffix(low, s) {
			return "sklearn-joblib"
		}
	}
	for _, s := range []string{".json", ".ubj", ".xgb", ".model", ".bst"} {
		if strings.HasSuffix(low, s) {
			return "xgboost"
		}
	}
	return ""
}

func lookPython(python string) (string, error) {
	p, err := exec.LookPath(python)
	if err != nil {
		return "", fmt.Errorf("pyworker: python interpreter %q not found (set MANTA_PYTHON or Config.Python; Debian: apt-get install python3 python3-numpy python3-sklearn python3-joblib python3-protobuf): %w", python, err)
	}
	return p, nil
}

var (
	_ modelhost.Runtime         = (*lazyRuntime)(nil)
	_ modelhost.ManifestChecker = (*lazyRuntime)(nil)
	_ modelhost.ManifestChecker = (*Supervisor)(nil)
)

// CheckManifest is CheckManifest, as the optional modelhost.ManifestChecker.
func (s *Supervisor) CheckManifest(m *modelhost.Manifest) error { return CheckManifest(m) }

// Started returns the registered runtime's supervisor if a Python model was
// loaded (nil otherwise): metrics read it without starting workers.
func Started() *Supervisor {
	defaultRuntime.mu.Lock()
	defer defaultRuntime.mu.Unlock()
	return defaultRuntime.s
}
