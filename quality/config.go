package quality

import (
	"fmt"
	"time"
)

// Defaults of Config's zero fields.
const (
	DefaultRing          = 10000
	DefaultWindow        = 1000
	DefaultJoinWindow    = 24 * time.Hour
	DefaultReferenceRows = 1000
	DefaultBins          = 10
	DefaultMaxFeatures   = 64
	DefaultMinLabels     = 100
	// MaxClasses bounds the probabilities a ring keeps per prediction; a
	// classifier with more classes gets accuracy but no logloss.
	MaxClasses = 64
	// MaxVersions is how many versions' windows a Tracker keeps (the
	// newest ones), as the metrics keep a model's last three versions.
	MaxVersions = 3
)

// Config bounds a Tracker. The zero value of every field means its default.
type Config struct {
	// Ring is how many predictions are kept for the join (default 10,000).
	Ring int `json:"ring,omitempty" yaml:"ring,omitempty"`
	// Window is how many joined labels a version's measures cover
	// (default 1,000).
	Window int `json:"window,omitempty" yaml:"window,omitempty"`
	// JoinWindow is how long after its prediction a label still joins
	// (default 24h); a later one is counted late.
	JoinWindow time.Duration `json:"join_window,omitempty" yaml:"join_window,omitempty"`
	// ReferenceRows is how many requests of a version make its reference
	// profile when the manifest names no reference file (default 1,000);
	// it is also the live histograms' horizon: they are halved each time
	// they count that many more rows.
	ReferenceRows int `json:"reference_rows,omitempty" yaml:"reference_rows,omitempty"`
	// Bins per feature histogram (default 10, equal-frequency over the
	// reference).
	Bins int `json:"bins,omitempty" yaml:"bins,omitempty"`
	// MaxFeatures is how many leading features are profiled (default 64).
	MaxFeatures int `json:"max_features,omitempty" yaml:"max_features,omitempty"`
	// MinLabels is how many joined labels a model version needs before
	// speculative strategies (best-quality, weighted-average) use its live
	// quality rather than its manifest's (default 100).
	MinLabels int `json:"min_labels,omitempty" yaml:"min_labels,omitempty"`
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.Ring == 0 {
		c.Ring = DefaultRing
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.JoinWindow == 0 {
		c.JoinWindow = DefaultJoinWindow
	}
	if c.ReferenceRows == 0 {
		c.ReferenceRows = DefaultReferenceRows
	}
	if c.Bins == 0 {
		c.Bins = DefaultBins
	}
	if c.MaxFeatures == 0 {
		c.MaxFeatures = DefaultMaxFeatures
	}
	if c.MinLabels == 0 {
		c.MinLabels = DefaultMinLabels
	}
	return c
}

// Validate reports a field out of range (after defaults).
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.Ring < 1 || c.Ring > 10_000_000:
		return fmt.Errorf("quality: ring %d: want 1..10000000", c.Ring)
	case c.Window < 1 || c.Window > 1_000_000:
		return fmt.Errorf("quality: window %d: want 1..1000000", c.Window)
	case c.JoinWindow < 0:
		return fmt.Errorf("quality: join window %v is negative", c.JoinWindow)
	case c.ReferenceRows < 10 || c.ReferenceRows > 1_000_000:
		return fmt.Errorf("quality: reference rows %d: want 10..1000000", c.ReferenceRows)
	case c.Bins < 2 || c.Bins > 100:
		return fmt.Errorf("quality: bins %d: want 2..100", c.Bins)
	case c.MaxFeatures < 1 || c.MaxFeatures > 4096:
		return fmt.Errorf("quality: max features %d: want 1..4096", c.MaxFeatures)
	case c.MinLabels < 1:
		return fmt.Errorf("quality: min labels %d: want at least 1", c.MinLabels)
	}
	return nil
}
