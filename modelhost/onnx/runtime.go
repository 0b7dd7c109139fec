package onnx

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
)

// RuntimeName is the runtime's name, as manifests' "runtime" field names it.
const RuntimeName = "onnx"

// Format is the value the runtime accepts in a manifest's optional
// "format" field.
const Format = "onnx"

// maxModelBytes bounds the entrypoint file read into memory (protobuf's
// own limit for one message is 2 GiB).
const maxModelBytes = 2 << 30

func init() { modelhost.RegisterRuntime(RuntimeName, Runtime{}) }

// Runtime loads ONNX models; see the package documentation for the
// contract.
type Runtime struct{}

// Load reads and checks the entrypoint file (already verified against its
// sha256). A file that does not parse, an unsupported operator or shapes
// that do not fit are errors wrapping api.ErrLoadFailed, naming the file
// and what is wrong.
func (Runtime) Load(ctx context.Context, m *modelhost.Manifest, dir string) (modelhost.Model, error) {
	mod, err := load(m, dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrLoadFailed, err)
	}
	return mod, nil
}

// CheckPush loads the model once, at push: a file that does not parse (or
// that the runtime could not serve) is bad_input naming it and why;
// otherwise the answer is the loaded model's memory, which Push writes to
// memory_bytes when the manifest has none.
func (Runtime) CheckPush(ctx context.Context, m *modelhost.Manifest, dir string) (int64, error) {
	mod, err := load(m, dir)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", api.ErrBadInput, err)
	}
	return mod.MemoryBytes(), nil
}

// CheckManifest refuses a format other than "onnx".
func (Runtime) CheckManifest(m *modelhost.Manifest) error {
	if m.Format != "" && m.Format != Format {
		return fmt.Errorf("%w: format %q: runtime %s reads %q (or leave format out)", api.ErrBadInput, m.Format, RuntimeName, Format)
	}
	return nil
}

func load(m *modelhost.Manifest, dir string) (*Model, error) {
	where := fmt.Sprintf("%s %s v%s", RuntimeName, m.ID, m.Version)
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
	mod, err := Parse(b, m.Options[OptionOutput], m.Batch.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %v", where, m.Entrypoint, err)
	}
	mod.where = where
	return mod, nil
}

// Parse loads an ONNX model from its bytes: for tests and Go code that
// holds a model in memory. output names the graph output to answer with
// ("" for all of them); maxBatch is the largest batch the memory bound
// assumes (0: DefaultMaxBatch).
func Parse(b []byte, output string, maxBatch int) (*Model, error) {
	g, err := parseGraph(b)
	if err != nil {
		return nil, err
	}
	return newModel(g, RuntimeName, output, maxBatch)
}

// Interface guards.
var (
	_ modelhost.Runtime         = Runtime{}
	_ modelhost.PushChecker     = Runtime{}
	_ modelhost.ManifestChecker = Runtime{}
)
