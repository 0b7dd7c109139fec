package modelhost

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/manta-ml/manta/api"
)

// ContentTypeJSON is the default content type of inputs and outputs.
const ContentTypeJSON = "application/json"

// Input is one request's payload as it reaches a model.
type Input struct {
	Payload     []byte
	ContentType string // "" means application/json
}

// Output is one answer of a model, at the same index as its Input.
// Err set means this row failed (e.g. wraps api.ErrBadInput) while the rest
// of the batch succeeded.
type Output struct {
	Payload     []byte
	ContentType string
	Err         error
}

// Model is a loaded, callable model. Predict is called with batches and must
// return exactly len(batch) outputs (or an error for the whole batch). It may
// be called from several goroutines at once.
type Model interface {
	Predict(ctx context.Context, batch []Input) ([]Output, error)
	// MemoryBytes is the measured memory the loaded model holds.
	MemoryBytes() int64
	Close() error
}

// Runtime loads models of one kind (linear, python, go, ...). dir holds the
// version's files, each already verified against its sha256.
type Runtime interface {
	Load(ctx context.Context, m *Manifest, dir string) (Model, error)
}

// File is one artifact file of a manifest.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Quality is the manifest's quality figure (used by speculative strategies).
type Quality struct {
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	// HigherIsBetter says how to compare values; false for errors such as MAE.
	HigherIsBetter bool `json:"higher_is_better,omitempty"`
}

// Batch is the manifest's micro-batching configuration.
type Batch struct {
	MaxSize   int `json:"max_size,omitempty"`
	MaxWaitMS int `json:"max_wait_ms,omitempty"`
}

// Manifest describes one version of one model (docs/ARCHITECTURE.md §9).
type Manifest struct {
	ID          string            `json:"id"`
	Version     string            `json:"version"`
	Runtime     string            `json:"runtime"`
	Format      string            `json:"format,omitempty"`
	Entrypoint  string            `json:"entrypoint"`
	MemoryBytes int64             `json:"memory_bytes,omitempty"`
	Files       []File            `json:"files"`
	CreatedAt   time.Time         `json:"created_at"`
	Description string            `json:"description,omitempty"`
	Quality     *Quality          `json:"quality,omitempty"`
	Batch       Batch             `json:"batch,omitempty"`
	Options     map[string]string `json:"options,omitempty"`
	// MinReplicas and MaxReplicas bound the model's activations across the
	// cluster (the first included; 0: no bound): the placement leader keeps
	// a hot model's replicas within them, and gives at least MinReplicas-1
	// replicas to an active model however cold.
	MinReplicas int `json:"min_replicas,omitempty"`
	MaxReplicas int `json:"max_replicas,omitempty"`
	// Monitor keeps the model's predictions for feedback from its first
	// request (docs/ARCHITECTURE.md §2.4); without it an activation starts
	// keeping them when its first label arrives.
	Monitor bool `json:"monitor,omitempty"`
	// Reference names one of Files holding rows of features (a JSON array
	// of arrays, or one array or {"features": [...]} per line): the
	// version's reference profile for drift, in place of its first
	// requests.
	Reference string `json:"reference,omitempty"`
}

// Store is the model store: a directory or an S3/MinIO bucket with the layout
// <root>/<model_id>/<version>/{manifest.json,<files>} and an optional
// <root>/<model_id>/LATEST. Implementations validate model ids before
// building any path or key.
type Store interface {
	// List returns the model ids in the store, sorted.
	List(ctx context.Context) ([]string, error)
	// Versions returns a model's versions in ascending numeric order; a
	// version counts only once its manifest.json exists. Unknown model:
	// an error wrapping api.ErrNotFound.
	Versions(ctx context.Context, id string) ([]string, error)
	// Latest returns the version to serve: LATEST if present, else the highest.
	Latest(ctx context.Context, id string) (string, error)
	// Manifest reads, parses and validates the manifest of id/version.
	Manifest(ctx context.Context, id, version string) (*Manifest, error)
	// Open opens one artifact file (path as in the manifest).
	Open(ctx context.Context, id, version, path string) (io.ReadCloser, error)
	// Put writes one file of a version (artifacts first, manifest.json last).
	Put(ctx context.Context, id, version, path string, r io.Reader, size int64) error
	// SetLatest points LATEST at version.
	SetLatest(ctx context.Context, id, version string) error
	// Delete removes a version, or the whole model when version is "".
	Delete(ctx context.Context, id, version string) error
}

// VersionStamper is an optional interface of a Store: a cheap fingerprint
// of a model's versions that changes whenever Latest could answer
// differently (a version added or removed, LATEST moved). Version polling
// resolves a model's version only when its stamp changed; "" means "not
// sure, check".
type VersionStamper interface {
	VersionStamp(ctx context.Context, id string) (string, error)
}

// Fetcher is an optional interface of a Store: it makes a version's files
// available in a local directory, every file verified against its sha256,
// and returns that directory. Stores without it are fetched by copying
// through Open into a local directory.
type Fetcher interface {
	Fetch(ctx context.Context, m *Manifest) (dir string, err error)
}

// TooLargeError says a model cannot fit: Need bytes against the Largest
// budget available. It wraps api.ErrTooLarge.
type TooLargeError struct {
	Model   string
	Need    int64
	Largest int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("manta: too_large: model %s needs %d bytes, largest budget available is %d", e.Model, e.Need, e.Largest)
}

// Unwrap returns api.ErrTooLarge.
func (e *TooLargeError) Unwrap() error { return api.ErrTooLarge }
