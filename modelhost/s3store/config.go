package s3store

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/manta-ml/manta/internal/bytesize"
	"github.com/manta-ml/manta/internal/secretfile"
)

// Config configures a Store. Required: Endpoint and Bucket. Everything else
// has a default that works (DefaultConfig). The secret fields are never
// printed: Config's String and GoString redact them, they have no JSON
// form, and no error of this package contains them.
type Config struct {
	// Endpoint is the S3 server as host:port, without a scheme.
	Endpoint string `json:"endpoint" yaml:"endpoint"`
	// Secure selects https. Default true; false for a local MinIO.
	Secure bool `json:"secure" yaml:"secure"`
	// Region of the bucket. Default "us-east-1" (MinIO's default); setting
	// it saves a bucket-location request.
	Region string `json:"region" yaml:"region"`
	// Bucket holds the models; Prefix (optional, no leading or trailing
	// slash) is the store root inside it.
	Bucket string `json:"bucket" yaml:"bucket"`
	Prefix string `json:"prefix,omitempty" yaml:"prefix,omitempty"`

	// AccessKey, SecretKey and SessionToken are the credentials. When both
	// keys are empty they come from the environment, first found of:
	// MANTA_S3_ACCESS_KEY/MANTA_S3_SECRET_KEY,
	// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (+AWS_SESSION_TOKEN),
	// MINIO_ROOT_USER/MINIO_ROOT_PASSWORD; each variable X may instead be
	// X_FILE, the path of a file holding the value (a mounted secret).
	// None at all means anonymous.
	AccessKey    string `json:"-" yaml:"-"`
	SecretKey    string `json:"-" yaml:"-"`
	SessionToken string `json:"-" yaml:"-"`

	// CacheDir is the local disk cache of fetched versions (one member per
	// directory). Default: <user cache dir>/manta/s3/<bucket>[/<prefix>].
	CacheDir string `json:"cache_dir,omitempty" yaml:"cache_dir,omitempty"`
	// CacheBudget is the disk cache's size in bytes; least recently used
	// versions are removed beyond it. 0 means unlimited.
	CacheBudget int64 `json:"cache_budget,omitempty" yaml:"cache_budget,omitempty"`
	// CAFile is the CA that signed the server's certificate (https only;
	// empty: the system's roots). URL parameter ca_file.
	CAFile string `json:"ca_file,omitempty" yaml:"ca_file,omitempty"`

	// ParallelThreshold: files at least this large are fetched with
	// Workers parallel ranged GETs of PartSize bytes each.
	ParallelThreshold int64 `json:"parallel_threshold,omitempty" yaml:"parallel_threshold,omitempty"`
	PartSize          int64 `json:"part_size,omitempty" yaml:"part_size,omitempty"`
	Workers           int   `json:"workers,omitempty" yaml:"workers,omitempty"`

	// MaxRetries is how many times one request is tried (minio-go's
	// exponential backoff, 200 ms doubling). Kept small so that a store
	// that is down fails a cold load in about a second instead of ~10.
	MaxRetries int `json:"max_retries,omitempty" yaml:"max_retries,omitempty"`
}

// Defaults of Config.
const (
	DefaultRegion            = "us-east-1"
	DefaultParallelThreshold = 64 << 20
	DefaultPartSize          = 16 << 20
	DefaultWorkers           = 4
	DefaultMaxRetries        = 3
)

// DefaultConfig returns a Config with every default set; Endpoint and
// Bucket are still to be filled.
func DefaultConfig() Config {
	return Config{
		Secure:            true,
		Region:            DefaultRegion,
		ParallelThreshold: DefaultParallelThreshold,
		PartSize:          DefaultPartSize,
		Workers:           DefaultWorkers,
		MaxRetries:        DefaultMaxRetries,
	}
}

// Validate checks the configuration without contacting the server.
func (c Config) Validate() error {
	if c.Endpoint == "" {
		return errors.New("s3store: no endpoint (e.g. ?endpoint=127.0.0.1:9000)")
	}
	if strings.Contains(c.Endpoint, "://") || strings.ContainsAny(c.Endpoint, "/?#@ ") {
		// Not quoted: a mistaken endpoint such as user:secret@host would
		// otherwise put the secret in the error.
		return errors.New("s3store: endpoint must be host:port, without scheme, path or user")
	}
	if host, port, err := net.SplitHostPort(c.Endpoint); err == nil {
		if host == "" {
			return fmt.Errorf("s3store: endpoint %q has no host", c.Endpoint)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("s3store: endpoint %q: bad port", c.Endpoint)
		}
	}
	if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		return fmt.Errorf("s3store: bucket %q: %v", c.Bucket, err)
	}
	if err := validPrefix(c.Prefix); err != nil {
		return err
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return errors.New("s3store: access key and secret key must be set together")
	}
	switch {
	case c.CacheBudget < 0:
		return errors.New("s3store: negative cache budget")
	case c.ParallelThreshold < 0:
		return errors.New("s3store: negative parallel threshold")
	case c.PartSize < 1<<20:
		return fmt.Errorf("s3store: part size %d below 1 MiB", c.PartSize)
	case c.PartSize > 1<<30:
		return fmt.Errorf("s3store: part size %d above 1 GiB", c.PartSize)
	case c.Workers < 1 || c.Workers > 64:
		return fmt.Errorf("s3store: workers %d not in 1..64", c.Workers)
	case c.MaxRetries < 1:
		return fmt.Errorf("s3store: max retries %d below 1", c.MaxRetries)
	}
	return nil
}

// String describes the store without credentials.
func (c Config) String() string {
	scheme := "https"
	if !c.Secure {
		scheme = "http"
	}
	s := fmt.Sprintf("s3://%s/%s (%s://%s", c.Bucket, c.Prefix, scheme, c.Endpoint)
	if c.AccessKey != "" {
		s += ", credentials set"
	}
	return s + ")"
}

// GoString is String, so %#v cannot print the secret either.
func (c Config) GoString() string { return "s3store.Config{" + c.String() + "}" }

// validPrefix accepts "" or slash-separated segments of [A-Za-z0-9._-],
// none empty, "." or "..".
func validPrefix(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > 512 {
		return fmt.Errorf("s3store: prefix longer than 512 bytes")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("s3store: prefix %q: empty, . or .. segment", p)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return fmt.Errorf("s3store: prefix %q: character %q not allowed", p, r)
			}
		}
	}
	return nil
}

// ParseURL parses a store URL into a Config (defaults filled in):
//
//	s3://bucket[/prefix]?endpoint=host:port[&secure=false][&region=r]
//	    [&cache_dir=/path][&cache_budget=10GiB][&workers=4][&part_size=16MiB][&ca_file=/path/ca.pem]
//	    [&parallel_threshold=64MiB][&max_retries=3]
//
// Without endpoint, MANTA_S3_ENDPOINT is used. Credentials are refused in
// the URL (they would end up in shell history and process lists); they
// come from Config fields or the environment. Unknown parameters are errors.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url's error quotes the input, which might hold a secret.
		return Config{}, errors.New("s3store: malformed store URL")
	}
	return FromURL(u)
}

// FromURL is ParseURL for an already parsed URL.
func FromURL(u *url.URL) (Config, error) {
	c := DefaultConfig()
	if u.Scheme != "s3" {
		return c, fmt.Errorf("s3store: URL scheme %q, want s3", u.Scheme)
	}
	if u.User != nil {
		return c, errors.New("s3store: credentials in the store URL are refused; use MANTA_S3_ACCESS_KEY/MANTA_S3_SECRET_KEY or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
	}
	if u.Opaque != "" || u.Fragment != "" {
		return c, errors.New("s3store: store URL must be s3://bucket/prefix?endpoint=host:port")
	}
	c.Bucket = u.Host
	c.Prefix = strings.TrimSuffix(strings.TrimPrefix(u.Path, "/"), "/")
	q := u.Query()
	for k, vs := range q {
		if len(vs) != 1 {
			return c, fmt.Errorf("s3store: parameter %q given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "endpoint":
			c.Endpoint = v
		case "secure":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return c, fmt.Errorf("s3store: secure=%q: want true or false", v)
			}
			c.Secure = b
		case "region":
			c.Region = v
		case "ca_file":
			c.CAFile = v
		case "cache_dir":
			c.CacheDir = v
		case "cache_budget", "part_size", "parallel_threshold":
			n, err := bytesize.Parse(v)
			if err != nil {
				return c, fmt.Errorf("s3store: %s: %w", k, err)
			}
			switch k {
			case "cache_budget":
				c.CacheBudget = n
			case "part_size":
				c.PartSize = n
			default:
				c.ParallelThreshold = n
			}
		case "workers", "max_retries":
			n, err := strconv.Atoi(v)
			if err != nil {
				return c, fmt.Errorf("s3store: %s=%q: not an integer", k, v)
			}
			if k == "workers" {
				c.Workers = n
			} else {
				c.MaxRetries = n
			}
		case "access_key", "secret_key", "access_key_id", "secret_access_key", "session_token", "password", "token":
			return c, fmt.Errorf("s3store: parameter %q refused: credentials come from the environment or flags, never the URL", k)
		default:
			return c, fmt.Errorf("s3store: unknown parameter %q", k)
		}
	}
	if c.Endpoint == "" {
		c.Endpoint = os.Getenv("MANTA_S3_ENDPOINT")
	}
	if c.CacheDir != "" {
		c.CacheDir = filepath.Clean(c.CacheDir)
	}
	return c, c.Validate()
}

// credentials resolves the keys: Config fields, else the environment. Each
// variable may instead name a file holding the value, as a mounted secret
// does: MANTA_S3_SECRET_KEY_FILE=/run/secrets/s3 (a trailing newline is
// dropped). A variable set both ways, or a file that cannot be read, is an
// error that names the variable, never the value.
func (c Config) credentials() (access, secret, token string, err error) {
	if c.AccessKey != "" {
		return c.AccessKey, c.SecretKey, c.SessionToken, nil
	}
	for _, p := range [][3]string{
		{"MANTA_S3_ACCESS_KEY", "MANTA_S3_SECRET_KEY", "MANTA_S3_SESSION_TOKEN"},
		{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"},
		{"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", ""},
	} {
		var v [3]string
		for i, name := range p {
			if name == "" {
				continue
			}
			if v[i], err = envOrFile(name); err != nil {
				return "", "", "", err
			}
		}
		if v[0] != "" && v[1] != "" {
			return v[0], v[1], v[2], nil
		}
	}
	return "", "", "", nil
}

// envOrFile reads the variable name, or the file that name_FILE names.
func envOrFile(name string) (string, error) {
	v, file := os.Getenv(name), os.Getenv(name+"_FILE")
	if file == "" {
		return v, nil
	}
	if v != "" {
		return "", fmt.Errorf("s3store: both %s and %s_FILE are set; use one", name, name)
	}
	s, err := secretfile.Read(file)
	if err != nil {
		return "", fmt.Errorf("s3store: %s_FILE: %w", name, err)
	}
	return s, nil
}
