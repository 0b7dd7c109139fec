package manta

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/quality"
)

// Config configures an embedded member (Start) or a client (Connect). The
// manta command's flags and environment variables fill this same struct.
type Config struct {
	// Store is the model store: a directory (default "./models") or a URL
	// such as s3://bucket/prefix?endpoint=127.0.0.1:9000, whose scheme a
	// driver package registers: the program imports it, as database/sql
	// drivers are (_ "github.com/manta-ml/manta/modelhost/s3store").
	Store string `json:"store" yaml:"store"`
	// StoreImpl, when set, is used instead of opening Store.
	StoreImpl modelhost.Store `json:"-" yaml:"-"`
	// BudgetBytes is the member's model-memory budget (default: half of
	// the machine's or cgroup's memory).
	BudgetBytes int64 `json:"budget_bytes" yaml:"budget_bytes"`
	// FetchDir holds local copies of artifacts of stores that are not
	// directories (default: a directory under the user cache dir).
	FetchDir string `json:"fetch_dir,omitempty" yaml:"fetch_dir,omitempty"`
	// HTTPAddr is where the member serves HTTP ("" for none). The manta
	// command defaults it to 127.0.0.1:8080.
	HTTPAddr string `json:"http" yaml:"http"`
	// Member names this member in responses (served_by); default: the
	// cluster address.
	Member string `json:"member,omitempty" yaml:"member,omitempty"`
	// IdleTimeout deactivates a model actor idle for this long.
	IdleTimeout time.Duration `json:"idle_timeout" yaml:"idle_timeout"`
	// DefaultTimeout is the deadline of a request that names none.
	DefaultTimeout time.Duration `json:"default_timeout" yaml:"default_timeout"`
	// LoadTimeout bounds one load of a model version (store reads, fetch,
	// verification, the runtime's Load, waiting for room; default 10m).
	// ReloadTimeout bounds a reload: re-reading the version to serve and
	// loading a new one beside the old (default 10m); when it runs out the
	// reload answers load_failed and the old version keeps serving. Both
	// also end when the model actor stops.
	LoadTimeout   time.Duration `json:"load_timeout,omitempty" yaml:"load_timeout,omitempty"`
	ReloadTimeout time.Duration `json:"reload_timeout,omitempty" yaml:"reload_timeout,omitempty"`
	// MaxBatch and MaxWaitMS apply to models whose manifest sets no batch.
	MaxBatch  int `json:"max_batch" yaml:"max_batch"`
	MaxWaitMS int `json:"max_wait_ms" yaml:"max_wait_ms"`
	// PollInterval is how often active models look for a new version in the
	// store (default 10s; negative: never). New versions are also noticed
	// through the store's webhook and Model.Reload.
	PollInterval time.Duration `json:"poll_interval" yaml:"poll_interval"`
	// HTTPToken, when set, is the bearer token the member's HTTP API (/v1,
	// /v2, the status page) requires; see requireToken for what stays open.
	HTTPToken string `json:"-" yaml:"-"`
	// ProtectMetrics puts /metrics behind HTTPToken too.
	ProtectMetrics bool `json:"protect_metrics,omitempty" yaml:"protect_metrics,omitempty"`
	// WebhookToken, when set, is the bearer token the store's webhook
	// (POST /v1/hooks/minio) must present.
	WebhookToken string `json:"-" yaml:"-"`
	// MaxPayloadBytes bounds one request's payload at every entry point:
	// Predict, Do, Speculate and the HTTP API answer a larger one with
	// too_large before it enters the cluster (default 16 MiB; members
	// accept remote messages up to cluster.MaxRemoteMessageBytes). Redis
	// entries have their own, smaller limit (router.Config.MaxPayloadBytes).
	MaxPayloadBytes int `json:"max_payload_bytes,omitempty" yaml:"max_payload_bytes,omitempty"`
	// MaxInflightBatches bounds concurrent Predict calls per model actor
	// (default: GOMAXPROCS).
	MaxInflightBatches int `json:"max_inflight_batches,omitempty" yaml:"max_inflight_batches,omitempty"`
	// Cluster configures the Proto.Actor cluster underneath.
	Cluster cluster.Config `json:"cluster" yaml:"cluster"`
	// ActivationLog, when set, gets one line when an activation on this
	// member starts serving (its model loaded) and one when it stops:
	// "<unix-nanos> +|- <identity>" (the soak checks from these that no
	// model is ever served by two activations at once).
	ActivationLog io.Writer `json:"-" yaml:"-"`
	// Pprof serves net/http/pprof under /debug/pprof/ on the member's HTTP
	// port (behind HTTPToken when set). Off by default.
	Pprof bool `json:"pprof,omitempty" yaml:"pprof,omitempty"`
	// MetricsMaxModels caps the model label of the Prometheus metrics;
	// further models are counted under "other" (0: the default, 500;
	// negative: no cap).
	MetricsMaxModels int `json:"metrics_max_models,omitempty" yaml:"metrics_max_models,omitempty"`
	// Quality bounds live model quality (docs/ARCHITECTURE.md §2.4): the
	// ring of predictions kept per monitored activation (default 10,000),
	// the window of joined labels (1,000), the join window (24h), the
	// reference rows and bins of drift. Zero fields take the defaults.
	Quality quality.Config `json:"quality,omitempty" yaml:"quality,omitempty"`
	// Logger receives Manta's logs (nil: quiet).
	Logger *slog.Logger `json:"-" yaml:"-"`
}

// DefaultConfig is the embedded default: one member, provider local, the
// ./models directory, half the memory, no HTTP.
func DefaultConfig() Config {
	return Config{
		Store:           "./models",
		BudgetBytes:     DefaultBudget(),
		IdleTimeout:     5 * time.Minute,
		DefaultTimeout:  30 * time.Second,
		MaxBatch:        64,
		MaxWaitMS:       2,
		PollInterval:    10 * time.Second,
		MaxPayloadBytes: DefaultMaxPayloadBytes,
		Cluster:         cluster.DefaultConfig(),
	}
}

// Validate checks the config and names the first problem.
func (c *Config) Validate() error {
	if c.Store == "" && c.StoreImpl == nil {
		return errors.New("manta: config: store is empty")
	}
	if c.BudgetBytes < 0 {
		return fmt.Errorf("manta: config: budget_bytes %d is negative", c.BudgetBytes)
	}
	if c.IdleTimeout < 0 || c.DefaultTimeout < 0 || c.LoadTimeout < 0 || c.ReloadTimeout < 0 {
		return errors.New("manta: config: timeouts must not be negative")
	}
	if c.MaxBatch < 0 || c.MaxWaitMS < 0 {
		return errors.New("manta: config: batch settings must not be negative")
	}
	if c.MaxPayloadBytes < 0 || c.MaxPayloadBytes > cluster.MaxRemoteMessageBytes/4 {
		return fmt.Errorf("manta: config: max_payload_bytes %d: want 0 (the default, %d) up to %d", c.MaxPayloadBytes, DefaultMaxPayloadBytes, cluster.MaxRemoteMessageBytes/4)
	}
	if err := c.Quality.Validate(); err != nil {
		return fmt.Errorf("manta: config: %w", err)
	}
	return c.Cluster.Validate()
}

// DefaultBudget is half of the memory available to this process: the
// cgroup limit when there is one, else the machine's.
func DefaultBudget() int64 {
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		var v int64
		if _, err := fmt.Sscan(string(b), &v); err == nil && v > 0 {
			return v / 2
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil && kb > 0 {
			return kb * 1024 / 2
		}
	}
	return 2 << 30
}
