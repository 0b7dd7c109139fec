package pyworker

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"time"
)

// Config configures a Supervisor. The zero value of every field means its
// default, so DefaultConfig() and Config{} behave the same.
type Config struct {
	// Python is the interpreter. Empty: $MANTA_PYTHON, else /usr/bin/python3
	// when it exists (Debian's, with numpy and sklearn from apt), else
	// python3 on PATH.
	Python string `json:"python,omitempty" yaml:"python,omitempty"`
	// Workers is the number of worker processes (default: the number of CPUs).
	Workers int `json:"workers,omitempty" yaml:"workers,omitempty"`
	// Require lists the Python packages every worker imports at start; a
	// worker missing one fails to start with an error naming them all
	// (default: numpy, sklearn, joblib).
	Require []string `json:"require,omitempty" yaml:"require,omitempty"`
	// Preload lists modules every worker imports at start, after Require,
	// ignoring failures (default: sklearn's linear_model, tree and
	// ensemble). A module's memory is otherwise charged to the first model
	// that imports it: ~13 MiB for these, enough to skew placement and the
	// memory figures of small models. An empty non-nil list preloads none.
	Preload []string `json:"preload,omitempty" yaml:"preload,omitempty"`
	// CallTimeout bounds one Predict, Unload or Stats request inside the
	// worker; a worker busy with one request longer than that is stuck, and
	// is killed and restarted (default 60s).
	CallTimeout time.Duration `json:"call_timeout,omitempty" yaml:"call_timeout,omitempty"`
	// LoadTimeout bounds one model load inside the worker (default 10m).
	LoadTimeout time.Duration `json:"load_timeout,omitempty" yaml:"load_timeout,omitempty"`
	// StartTimeout bounds a worker's start: interpreter, imports and the
	// first ping (default 2m).
	StartTimeout time.Duration `json:"start_timeout,omitempty" yaml:"start_timeout,omitempty"`
	// RestartBackoff is the delay before restarting a crashed worker; it
	// doubles with every crash in a row up to MaxRestartBackoff
	// (defaults 100ms and 10s), each wait jittered to 50–100% of it.
	RestartBackoff    time.Duration `json:"restart_backoff,omitempty" yaml:"restart_backoff,omitempty"`
	MaxRestartBackoff time.Duration `json:"max_restart_backoff,omitempty" yaml:"max_restart_backoff,omitempty"`
	// MaxFrameBytes caps one protocol frame in either direction (default 256 MiB).
	MaxFrameBytes int `json:"max_frame_bytes,omitempty" yaml:"max_frame_bytes,omitempty"`
	// Env is added to the workers' environment. By default the workers get
	// OMP_NUM_THREADS=1 and friends (one thread per worker: W workers share
	// the cores) unless the environment already sets them.
	Env []string `json:"env,omitempty" yaml:"env,omitempty"`
	// Stderr receives the workers' stderr, where model prints go, each line
	// prefixed with the worker's number (default: os.Stderr). It is written
	// from several goroutines, a line per Write.
	Stderr io.Writer `json:"-" yaml:"-"`
}

// DefaultRequire is the default Config.Require.
var DefaultRequire = []string{"numpy", "sklearn", "joblib"}

// DefaultPreload is the default Config.Preload.
var DefaultPreload = []string{"sklearn.linear_model", "sklearn.tree", "sklearn.ensemble"}

// DefaultConfig returns the configuration used by the registered "python"
// runtime unless Configure says otherwise.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.Python == "" {
		c.Python = DefaultPython()
	}
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.Require == nil {
		c.Require = append([]string(nil), DefaultRequire...)
	}
	if c.Preload == nil {
		c.Preload = append([]string(nil), DefaultPreload...)
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 60 * time.Second
	}
	if c.LoadTimeout == 0 {
		c.LoadTimeout = 10 * time.Minute
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 2 * time.Minute
	}
	if c.RestartBackoff == 0 {
		c.RestartBackoff = 100 * time.Millisecond
	}
	if c.MaxRestartBackoff == 0 {
		c.MaxRestartBackoff = 10 * time.Second
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = 256 << 20
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	return c
}

// DefaultPython is the interpreter used when Config.Python is empty:
// $MANTA_PYTHON, else /usr/bin/python3 when it exists, else "python3".
func DefaultPython() string {
	if p := os.Getenv("MANTA_PYTHON"); p != "" {
		return p
	}
	if st, err := os.Stat("/usr/bin/python3"); err == nil && !st.IsDir() {
		return "/usr/bin/python3"
	}
	return "python3"
}

// Validate reports a configuration that cannot work. Zero values are fine
// (they mean the defaults).
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("workers %d < 0", c.Workers))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"call_timeout", c.CallTimeout}, {"load_timeout", c.LoadTimeout}, {"start_timeout", c.StartTimeout},
		{"restart_backoff", c.RestartBackoff}, {"max_restart_backoff", c.MaxRestartBackoff}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v < 0", d.name, d.v))
		}
	}
	if c.MaxFrameBytes < 0 || (c.MaxFrameBytes > 0 && c.MaxFrameBytes < 1<<10) {
		errs = append(errs, fmt.Errorf("max_frame_bytes %d: must be at least 1024", c.MaxFrameBytes))
	}
	if c.MaxFrameBytes > 1<<31 {
		errs = append(errs, fmt.Errorf("max_frame_bytes %d: must be below 2 GiB", c.MaxFrameBytes))
	}
	if c.Python != "" {
		if _, err := exec.LookPath(c.Python); err != nil {
			errs = append(errs, fmt.Errorf("python interpreter %q: %w", c.Python, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pyworker: invalid config: %w", err)
	}
	return nil
}
