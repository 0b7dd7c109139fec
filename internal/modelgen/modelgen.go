// Package modelgen writes model versions straight into a directory store
// (the layout of docs/ARCHITECTURE.md) for tests, examples and the demo.
package modelgen

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/manta-ml/manta/modelhost"
)

// Write writes one version of a model: files first, manifest.json last.
// m.ID, m.Version, m.Runtime and m.Entrypoint must be set; Files and
// CreatedAt are filled in.
func Write(root string, m modelhost.Manifest, files map[string][]byte) error {
	dir := filepath.Join(root, m.ID, m.Version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m.Files = nil
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m.Files = append(m.Files, modelhost.File{Path: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now().UTC().Truncate(time.Second)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644)
}

// LinearJSON encodes a linear model's entrypoint file compactly.
func LinearJSON(weights []float64, bias float64, link string) []byte {
	b := make([]byte, 0, 16+len(weights)*8)
	b = append(b, `{"weights":[`...)
	for i, w := range weights {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, w, 'g', 4, 64)
	}
	b = append(b, `],"bias":`...)
	b = strconv.AppendFloat(b, bias, 'g', -1, 64)
	if link == "" {
		link = "identity"
	}
	b = append(b, fmt.Sprintf(`,"link":%q}`, link)...)
	return b
}

// Linear writes a linear model version with the given weights.
func Linear(root, id, version string, weights []float64, bias float64, link string) error {
	return Write(root, modelhost.Manifest{
		ID: id, Version: version, Runtime: "linear", Format: "linear-json", Entrypoint: "model.json",
		MemoryBytes: int64(len(weights))*8 + 1024,
	}, map[string][]byte{"model.json": LinearJSON(weights, bias, link)})
}

// Func writes a version of a model served by a Go function registered with
// modelhost.RegisterFunc under fn.
func Func(root, id, version, fn string, memoryBytes int64, batch modelhost.Batch) error {
	return Write(root, modelhost.Manifest{
		ID: id, Version: version, Runtime: "go", Entrypoint: fn, MemoryBytes: memoryBytes, Batch: batch,
	}, nil)
}
