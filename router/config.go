package router

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/manta-ml/manta/internal/redact"
	"github.com/manta-ml/manta/internal/secretfile"
)

// Config configures a Router. The manta command's flags (--redis …) and
// environment variables fill this same struct.
type Config struct {
	// URL is the Redis server: redis://[user:password@]host:port/db, or
	// rediss://… for TLS. The password is never logged. Ignored when the
	// router is given a client with WithClient.
	URL string `json:"url" yaml:"url"`
	// TLSCAFile is the CA that signed the Redis server's certificate
	// (rediss:// only; empty: the system's roots).
	TLSCAFile string `json:"tls_ca_file,omitempty" yaml:"tls_ca_file,omitempty"`
	// PasswordFile names a file holding the Redis password (a mounted
	// secret; a trailing newline is dropped). It replaces a password in
	// URL, so the URL itself can be shown and kept in plain config.
	PasswordFile string `json:"password_file,omitempty" yaml:"password_file,omitempty"`
	// Streams are the request streams read by the group (default
	// ["manta:requests"]).
	Streams []string `json:"streams" yaml:"streams"`
	// Group is the consumer group (default "manta"), created on every
	// stream if missing, starting at the beginning of the stream so that
	// entries written before the first router started are served.
	Group string `json:"group" yaml:"group"`
	// Consumer is this router's name in the group: the member's name
	// (default: hostname-pid). Two live routers must not share a name.
	Consumer string `json:"consumer" yaml:"consumer"`
	// BatchSize is the most entries one XREADGROUP asks for (default 256).
	BatchSize int `json:"batch_size" yaml:"batch_size"`
	// Block is how long one XREADGROUP waits for entries (default 1s). A
	// graceful shutdown waits for the read under way, so at most this.
	Block time.Duration `json:"block" yaml:"block"`
	// InFlight bounds the entries read but not yet acknowledged (default
	// 1024): when it is reached the router stops reading (backpressure).
	InFlight int `json:"in_flight" yaml:"in_flight"`
	// MinIdle is how long an entry stays pending, unacknowledged, before
	// another router reclaims it with XAUTOCLAIM (default 1m). It must be
	// longer than any request takes: longer than MaxDeadline.
	MinIdle time.Duration `json:"min_idle" yaml:"min_idle"`
	// ReclaimInterval is how often pending entries are looked for
	// (default MinIdle/4).
	ReclaimInterval time.Duration `json:"reclaim_interval" yaml:"reclaim_interval"`
	// MaxDeliveries: an entry delivered more often than this (it keeps
	// killing or stalling its consumers) goes to the dead stream with reason
	// max_deliveries instead of being served again (default 5).
	MaxDeliveries int `json:"max_deliveries" yaml:"max_deliveries"`
	// DeadStream receives malformed entries (default "manta:dead").
	DeadStream string `json:"dead_stream" yaml:"dead_stream"`
	// ResultStream is where results go when an entry names no reply_to
	// (default "manta:results").
	ResultStream string `json:"result_stream" yaml:"result_stream"`
	// ResultMaxLen trims every result stream to about this many entries
	// (XADD MAXLEN ~); 0 never trims (default 1,000,000).
	ResultMaxLen int64 `json:"result_max_len" yaml:"result_max_len"`
	// ReplyToPrefix, when set, is a prefix every reply_to must have: a
	// producer cannot make the router write to arbitrary keys.
	ReplyToPrefix string `json:"reply_to_prefix,omitempty" yaml:"reply_to_prefix,omitempty"`
	// MaxPayloadBytes bounds an entry's payload (default 1 MiB).
	MaxPayloadBytes int `json:"max_payload_bytes" yaml:"max_payload_bytes"`
	// DefaultDeadline is the deadline of an entry without deadline_ms
	// (default 30s), counted from when the router takes the entry.
	DefaultDeadline time.Duration `json:"default_deadline" yaml:"default_deadline"`
	// MaxDeadline caps deadline_ms (default 30s); it must be below MinIdle
	// so that a live router's entries are not reclaimed under it.
	MaxDeadline time.Duration `json:"max_deadline" yaml:"max_deadline"`
	// RetryMin and RetryMax bound the exponential backoff between attempts
	// while Redis is unreachable (defaults 100ms and 5s).
	RetryMin time.Duration `json:"retry_min" yaml:"retry_min"`
	RetryMax time.Duration `json:"retry_max" yaml:"retry_max"`
	// FeedbackStream carries ground-truth labels (fields model, id,
	// label, optional at) read by the same group when the dispatcher can
	// take them (Feedbacker); "" reads none (default "manta:feedback").
	FeedbackStream string `json:"feedback_stream" yaml:"feedback_stream"`
	// Logger receives the router's logs (nil: quiet).
	Logger *slog.Logger `json:"-" yaml:"-"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "router"
	}
	return Config{
		URL:             "redis://127.0.0.1:6379/0",
		Streams:         []string{"manta:requests"},
		Group:           "manta",
		Consumer:        host + "-" + strconv.Itoa(os.Getpid()),
		BatchSize:       256,
		Block:           time.Second,
		InFlight:        1024,
		MinIdle:         time.Minute,
		MaxDeliveries:   5,
		DeadStream:      "manta:dead",
		ResultStream:    "manta:results",
		FeedbackStream:  "manta:feedback",
		ResultMaxLen:    1_000_000,
		MaxPayloadBytes: 1 << 20,
		DefaultDeadline: 30 * time.Second,
		MaxDeadline:     30 * time.Second,
		RetryMin:        100 * time.Millisecond,
		RetryMax:        5 * time.Second,
	}
}

// Validate checks the config and names the first problem.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("router: config: "+format, args...)
	}
	if len(c.Streams) == 0 {
		return bad("no request streams")
	}
	seen := map[string]bool{}
	for _, s := range c.Streams {
		if s == "" {
			return bad("empty stream name")
		}
		if seen[s] {
			return bad("stream %q listed twice", s)
		}
		seen[s] = true
	}
	switch {
	case c.Group == "":
		return bad("group is empty")
	case c.Consumer == "":
		return bad("consumer is empty")
	case c.DeadStream == "":
		return bad("dead_stream is empty")
	case c.ResultStream == "":
		return bad("result_stream is empty")
	case seen[c.DeadStream]:
		return bad("dead_stream %q is also a request stream", c.DeadStream)
	case seen[c.ResultStream]:
		return bad("result_stream %q is also a request stream", c.ResultStream)
	case c.FeedbackStream != "" && (seen[c.FeedbackStream] || c.FeedbackStream == c.DeadStream || c.FeedbackStream == c.ResultStream):
		return bad("feedback_stream %q is also a request, result or dead stream", c.FeedbackStream)
	case c.BatchSize <= 0:
		return bad("batch_size %d must be positive", c.BatchSize)
	case c.InFlight <= 0:
		return bad("in_flight %d must be positive", c.InFlight)
	case c.Block <= 0 || c.Block < time.Millisecond:
		return bad("block %v must be at least 1ms (0 would block forever)", c.Block)
	case c.MinIdle < time.Millisecond:
		return bad("min_idle %v must be at least 1ms", c.MinIdle)
	case c.ReclaimInterval < 0:
		return bad("reclaim_interval %v is negative", c.ReclaimInterval)
	case c.MaxDeliveries <= 0:
		return bad("max_deliveries %d must be positive", c.MaxDeliveries)
	case c.ResultMaxLen < 0:
		return bad("result_max_len %d is negative", c.ResultMaxLen)
	case c.MaxPayloadBytes <= 0:
		return bad("max_payload_bytes %d must be positive", c.MaxPayloadBytes)
	case c.DefaultDeadline <= 0 || c.MaxDeadline <= 0:
		return bad("default_deadline and max_deadline must be positive")
	case c.DefaultDeadline > c.MaxDeadline:
		return bad("default_deadline %v is above max_deadline %v", c.DefaultDeadline, c.MaxDeadline)
	case c.MaxDeadline >= c.MinIdle:
		return bad("max_deadline %v must be below min_idle %v, or live entries get reclaimed", c.MaxDeadline, c.MinIdle)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return bad("retry_min %v and retry_max %v: want 0 < retry_min <= retry_max", c.RetryMin, c.RetryMax)
	}
	return nil
}

// RedisOptions parses the URL into go-redis options (redis://, rediss://
// with TLS, unix://). Errors never contain the password.
func (c *Config) RedisOptions() (*redis.Options, error) {
	if c.URL == "" {
		return nil, errors.New("router: config: url is empty")
	}
	opt, err := redis.ParseURL(c.URL)
	if err != nil {
		// url.Parse errors quote the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("router: config: redis url %s: %w", redact.URL(c.URL), err)
	}
	if c.PasswordFile != "" {
		pw, err := secretfile.Read(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("router: config: password_file: %w", err)
		}
		opt.Password = pw
	}
	if c.TLSCAFile != "" {
		if opt.TLSConfig == nil {
			return nil, fmt.Errorf("router: config: tls_ca_file needs a rediss:// url, got %s", redact.URL(c.URL))
		}
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("router: config: tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("router: config: tls_ca_file %s holds no PEM certificate", c.TLSCAFile)
		}
		opt.TLSConfig.RootCAs = pool
	}
	return opt, nil
}
