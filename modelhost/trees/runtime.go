package trees

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
)

// Runtime names, as manifests' "runtime" field names them.
const (
	XGBoostRuntimeName  = "xgboost"
	LightGBMRuntimeName = "lightgbm"
)

// Formats the runtimes accept in a manifest's optional "format" field.
const (
	XGBoostFormat  = "xgboost-json"
	LightGBMFormat = "lightgbm-text"
)

// maxModelBytes bounds the entrypoint file a runtime reads into memory.
const maxModelBytes = 4 << 30

func init() {
	modelhost.RegisterRuntime(XGBoostRuntimeName, &Runtime{name: XGBoostRuntimeName, format: XGBoostFormat})
	modelhost.RegisterRuntime(LightGBMRuntimeName, &Runtime{name: LightGBMRuntimeName, format: LightGBMFormat})
}

// Runtime is the xgboost or the lightgbm runtime. Both read the manifest's
// entrypoint file; see the package documentation for the contract.
type Runtime struct {
	name   string
	format string
}

// Load reads and parses the entrypoint file (already verified against its
// sha256). A file that does not parse is an error wrapping
// api.ErrLoadFailed, naming the file and the parser's message.
func (r *Runtime) Load(ctx context.Context, m *modelhost.Manifest, dir string) (modelhost.Model, error) {
	mod, err := r.load(m, dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrLoadFailed, err)
	}
	return mod, nil
}

// CheckPush loads the model once, at push: a file that does not parse is
// bad_input naming it; otherwise the answer is the loaded structure's
// memory, which Push writes to memory_bytes when the manifest has none.
// It also records what the model is in the manifest's options, unless
// they are set, for the Open Inference Protocol's metadata: "n_features"
// (the row width) and, for classifiers, "predict_proba": "true" (answers
// carry probabilities). The runtime itself reads neither.
func (r *Runtime) CheckPush(ctx context.Context, m *modelhost.Manifest, dir string) (int64, error) {
	mod, err := r.load(m, dir)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", api.ErrBadInput, err)
	}
	if m.Options == nil {
		m.Options = make(map[string]string)
	}
	if _, ok := m.Options["n_features"]; !ok {
		m.Options["n_features"] = strconv.Itoa(mod.nfeat)
	}
	if _, ok := m.Options["predict_proba"]; !ok && mod.kind != Regressor {
		m.Options["predict_proba"] = "true"
	}
	return mod.MemoryBytes(), nil
}

// CheckManifest refuses a format other than the runtime's own.
func (r *Runtime) CheckManifest(m *modelhost.Manifest) error {
	if m.Format != "" && m.Format != r.format {
		return fmt.Errorf("%w: format %q: runtime %s reads %q (or leave format out)", api.ErrBadInput, m.Format, r.name, r.format)
	}
	return nil
}

func (r *Runtime) load(m *modelhost.Manifest, dir string) (*Model, error) {
	where := fmt.Sprintf("%s %s v%s", r.name, m.ID, m.Version)
	if err := modelhost.ValidPath(m.Entrypoint); err != nil {
		return nil, fmt.Errorf("%s: entrypoint: %w", where, err)
	}
	path := filepath.Join(dir, filepath.FromSlash(m.Entrypoint))
	if st, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	} else if st.Size() > maxModelBytes {
		return nil, fmt.Errorf("%s: %s: %d bytes, above the %d-byte limit", where, m.Entrypoint, st.Size(), int64(maxModelBytes))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	mod, err := r.parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %v", where, m.Entrypoint, err)
	}
	mod.where = where
	return mod, nil
}

func (r *Runtime) parse(b []byte) (*Model, error) {
	if r.name == XGBoostRuntimeName {
		return ParseXGBoost(b)
	}
	return ParseLightGBM(b)
}

// ParseXGBoost loads an XGBoost JSON model (Booster.save_model("model.json"))
// from its bytes: for tests and Go code that holds a model in memory.
func ParseXGBoost(b []byte) (*Model, error) {
	f, kind, err := parseXGBoost(b)
	if err != nil {
		return nil, err
	}
	width := 1
	if kind == Multiclass {
		width = f.ngroup
	}
	return &Model{where: XGBoostRuntimeName, kind: kind, nfeat: f.nfeat, width: width, f32: true, ev: f, memory: f.memoryBytes()}, nil
}

// ParseLightGBM loads a LightGBM text model (Booster.save_model) from its
// bytes.
func ParseLightGBM(b []byte) (*Model, error) {
	l, kind, err := parseLightGBM(b)
	if err != nil {
		return nil, err
	}
	return &Model{where: LightGBMRuntimeName, kind: kind, nfeat: l.nfeat, width: l.ngroup, ev: l, memory: l.memory}, nil
}

// Interface guards.
var (
	_ modelhost.Runtime         = (*Runtime)(nil)
	_ modelhost.PushChecker     = (*Runtime)(nil)
	_ modelhost.ManifestChecker = (*Runtime)(nil)
)
