package s3store

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
)

// ErrUnreachable is wrapped by errors caused by the server not answering
// at all (connection refused, DNS, timeout), as opposed to an answer such
// as "no such key". Fetch wraps it together with api.ErrLoadFailed.
var ErrUnreachable = errors.New("s3store: store unreachable")

// minUploadPart is the smallest multipart upload part Put uses (S3's
// minimum is 5 MiB; Config.PartSize may be smaller for ranged GETs).
const minUploadPart = 16 << 20

// maxManifestBytes bounds a manifest read (it is outside input).
const maxManifestBytes = 4 << 20

// Store is a model store in an S3 bucket (MinIO or any S3 server), with
// the layout of docs/ARCHITECTURE.md under Config.Prefix. It implements
// modelhost.Store and modelhost.Fetcher; Fetch keeps a verified local
// disk cache. Safe for concurrent use.
type Store struct {
	cfg    Config
	client *minio.Client
	core   minio.Core
	keys   keys
	tr     *countingTransport
	secret string // for redact; never printed

	downloads, bytes, hits, rehashes, offline atomic.Int64

	flights flightGroup
	cache   *diskCache
	bufs    bufPool
}

// Open makes a Store from cfg. It does not contact the server (a member
// can start while the store is down); EnsureBucket or the first call will.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		cfg.CacheDir = filepath.Join(base, "manta", "s3", cfg.Bucket, filepath.FromSlash(cfg.Prefix))
	}
	base, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, fmt.Errorf("s3store: transport: %w", err)
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("s3store: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("s3store: ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		if base.TLSClientConfig == nil {
			base.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		base.TLSClientConfig.RootCAs = pool
	}
	// A dead server must fail a cold load quickly, not after 30 s.
	base.DialContext = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	base.ResponseHeaderTimeout = 60 * time.Second
	tr := &countingTransport{next: base}
	access, secret, token, err := cfg.credentials()
	if err != nil {
		return nil, err
	}
	var creds *credentials.Credentials
	if access != "" {
		creds = credentials.NewStaticV4(access, secret, token)
	} else {
		creds = credentials.New(&credentials.Static{Value: credentials.Value{SignerType: credentials.SignatureAnonymous}})
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      creds,
		Secure:     cfg.Secure,
		Region:     cfg.Region,
		Transport:  tr,
		MaxRetries: cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3store: client for %s: %v", cfg.Endpoint, redact(err, secret))
	}
	s := &Store{
		cfg:    cfg,
		client: client,
		core:   minio.Core{Client: client},
		keys:   newKeys(cfg.Prefix),
		tr:     tr,
		secret: secret,
	}
	s.cache = newDiskCache(cfg.CacheDir, cfg.CacheBudget)
	return s, nil
}

// OpenURL is Open(ctx, ParseURL(raw)).
func OpenURL(ctx context.Context, raw string) (*Store, error) {
	cfg, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return Open(ctx, cfg)
}

// Config returns the store's configuration (defaults filled in).
func (s *Store) Config() Config { return s.cfg }

// Client returns the underlying minio-go client (for tooling and tests:
// configuring notifications, corrupting objects).
func (s *Store) Client() *minio.Client { return s.client }

// EnsureBucket creates the bucket if it does not exist.
func (s *Store) EnsureBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return s.wrap(err, "bucket %s", s.cfg.Bucket)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.cfg.Bucket, minio.MakeBucketOptions{Region: s.cfg.Region})
	if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
		return s.wrap(err, "create bucket %s", s.cfg.Bucket)
	}
	return nil
}

// List returns the model ids in the store, sorted. Names under the root
// that are not valid model ids are ignored.
func (s *Store) List(ctx context.Context) ([]string, error) {
	var ids []string
	for obj := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.keys.root}) {
		if obj.Err != nil {
			return nil, s.wrap(obj.Err, "list models")
		}
		name, ok := strings.CutSuffix(strings.TrimPrefix(obj.Key, s.keys.root), "/")
		if ok && checkID(name) == nil {
			ids = append(ids, name)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Versions returns a model's versions with a manifest.json, in ascending
// numeric order. A model with none is api.ErrNotFound.
func (s *Store) Versions(ctx context.Context, id string) ([]string, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	var vs []string
	opts := minio.ListObjectsOptions{Prefix: s.keys.model(id), Recursive: true}
	for obj := range s.client.ListObjects(ctx, s.cfg.Bucket, opts) {
		if obj.Err != nil {
			return nil, s.wrap(obj.Err, "list versions of %s", id)
		}
		if p, ok := s.keys.parse(obj.Key); ok && p.ID == id && p.Path == manifestName {
			vs = append(vs, p.Version)
		}
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: model %s has no versions in %s", api.ErrNotFound, id, s.cfg)
	}
	slices.SortFunc(vs, func(a, b string) int {
		if versionLess(a, b) {
			return -1
		}
		if versionLess(b, a) {
			return 1
		}
		return 0
	})
	return vs, nil
}

// Latest returns LATEST's version if that object exists, else the highest
// version. When the server is unreachable it answers the last version this
// member resolved (kept in the disk cache), so disk-cached models keep
// serving through an outage; with none known, the error wraps
// ErrUnreachable.
func (s *Store) Latest(ctx context.Context, id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	v, err := s.latest(ctx, id)
	if err == nil {
		s.cache.rememberLatest(id, v)
		return v, nil
	}
	if errors.Is(err, ErrUnreachable) {
		if v, ok := s.cache.knownLatest(id); ok {
			s.offline.Add(1)
			return v, nil
		}
	}
	return "", err
}

func (s *Store) latest(ctx context.Context, id string) (string, error) {
	data, err := s.readSmall(ctx, s.keys.latest(id), 64)
	switch {
	case err == nil:
		v := strings.TrimSpace(string(data))
		if err := checkVersion(v); err != nil {
			return "", fmt.Errorf("model %s: LATEST: %w", id, err)
		}
		// As in the directory store: a LATEST naming an invisible version
		// is an error, not ignored (someone pinned it on purpose).
		if _, err := s.client.StatObject(ctx, s.cfg.Bucket, s.keys.manifest(id, v), minio.StatObjectOptions{}); err != nil {
			err = s.wrap(err, "model %s: LATEST names version %s", id, v)
			if errors.Is(err, api.ErrNotFound) {
				return "", fmt.Errorf("%w: model %s: LATEST names version %s, which has no manifest", api.ErrNotFound, id, v)
			}
			return "", err
		}
		return v, nil
	case errors.Is(err, api.ErrNotFound):
		vs, err := s.Versions(ctx, id)
		if err != nil {
			return "", err
		}
		return vs[len(vs)-1], nil
	default:
		return "", fmt.Errorf("latest version of %s: %w", id, err)
	}
}

// Manifest reads, parses and validates id/version's manifest. Manifests
// read once are kept in the disk cache and answered from there when the
// server is unreachable.
func (s *Store) Manifest(ctx context.Context, id, version string) (*modelhost.Manifest, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if err := checkVersion(version); err != nil {
		return nil, err
	}
	data, err := s.readSmall(ctx, s.keys.manifest(id, version), maxManifestBytes)
	if err != nil {
		if errors.Is(err, ErrUnreachable) {
			if m, ok := s.cache.knownManifest(id, version); ok {
				s.offline.Add(1)
				return m, nil
			}
		}
		return nil, fmt.Errorf("manifest of %s v%s: %w", id, version, err)
	}
	m, err := parseManifest(data, id, version)
	if err != nil {
		return nil, err
	}
	s.cache.rememberManifest(id, version, data)
	return m, nil
}

// parseManifest decodes and validates a manifest and checks it against
// the id/version it was read for.
func parseManifest(data []byte, id, version string) (*modelhost.Manifest, error) {
	m, err := modelhost.ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s/%s/%s: %w", id, version, manifestName, err)
	}
	if m.ID != id || m.Version != version {
		return nil, fmt.Errorf("%w: %s/%s/%s names %s v%s", api.ErrBadInput, id, version, manifestName, m.ID, m.Version)
	}
	return m, nil
}

// readSmall reads a whole object of at most limit bytes.
func (s *Store) readSmall(ctx context.Context, key string, limit int64) ([]byte, error) {
	rc, info, _, err := s.core.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap(err, "read %s", key)
	}
	defer rc.Close()
	if info.Size > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than %d", api.ErrBadInput, key, info.Size, limit)
	}
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, s.wrap(err, "read %s", key)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is more than %d bytes", api.ErrBadInput, key, limit)
	}
	return data, nil
}

// Open opens one artifact file for reading (not verified: Fetch verifies).
func (s *Store) Open(ctx context.Context, id, version, path string) (io.ReadCloser, error) {
	key, err := s.fileKey(id, version, path)
	if err != nil {
		return nil, err
	}
	rc, _, _, err := s.core.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap(err, "open %s v%s %s", id, version, path)
	}
	return rc, nil
}

func (s *Store) fileKey(id, version, path string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	if err := checkVersion(version); err != nil {
		return "", err
	}
	if err := checkPath(path); err != nil {
		return "", err
	}
	return s.keys.file(id, version, path), nil
}

// Put uploads one file of a version; size -1 means unknown. Large files
// go up as a multipart upload (parts of Config.PartSize, uploaded in
// parallel), so an interrupted upload leaves no object at all. A progress
// function attached with WithProgress is told how far it got.
// modelhost.Push puts manifest.json last, which is what makes a version
// visible.
func (s *Store) Put(ctx context.Context, id, version, path string, r io.Reader, size int64) error {
	key, err := s.fileKey(id, version, path)
	if err != nil {
		return err
	}
	opts := minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    uint64(max(s.cfg.PartSize, minUploadPart)),
		NumThreads:  uint(s.cfg.Workers),
	}
	if path == manifestName {
		opts.ContentType = "application/json"
	}
	if _, ok := r.(io.ReaderAt); !ok && (size < 0 || size > int64(opts.PartSize)) {
		// A plain reader (modelhost.Push's hashing, counting reader) would
		// otherwise go up one part at a time: read parts in order, upload
		// Workers of them at once (Workers*PartSize bytes of buffers).
		opts.ConcurrentStreamParts = true
	}
	var meter *modelhost.ProgressMeter
	if fn := progressFrom(ctx); fn != nil {
		meter = modelhost.NewProgressMeter(fn, modelhost.Progress{ID: id, Version: version, Path: path, Total: size})
		opts.Progress = sentBytes{meter}
	}
	if size < 0 {
		size = -1
	}
	if _, err := s.client.PutObject(ctx, s.cfg.Bucket, key, r, size, opts); err != nil {
		return s.wrap(err, "put %s v%s %s", id, version, path)
	}
	if meter != nil {
		meter.Finish()
	}
	return nil
}

// SetLatest points LATEST at version, which must have a manifest.
func (s *Store) SetLatest(ctx context.Context, id, version string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkVersion(version); err != nil {
		return err
	}
	if _, err := s.client.StatObject(ctx, s.cfg.Bucket, s.keys.manifest(id, version), minio.StatObjectOptions{}); err != nil {
		return s.wrap(err, "set latest of %s to v%s", id, version)
	}
	body := []byte(version + "\n")
	_, err := s.client.PutObject(ctx, s.cfg.Bucket, s.keys.latest(id), bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "text/plain"})
	if err != nil {
		return s.wrap(err, "set latest of %s to v%s", id, version)
	}
	s.cache.rememberLatest(id, version)
	return nil
}

// Delete removes a version, or the whole model when version is "". The
// manifests go first, so a version stops being visible before any of its
// files disappear. A LATEST naming a deleted version is removed too (the
// highest remaining version is then served). Nothing to delete is
// api.ErrNotFound.
func (s *Store) Delete(ctx context.Context, id, version string) error {
	if err := checkID(id); err != nil {
		return err
	}
	prefix := s.keys.model(id)
	if version != "" {
		if err := checkVersion(version); err != nil {
			return err
		}
		prefix = s.keys.version(id, version)
	}
	var manifests, rest []string
	for obj := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return s.wrap(obj.Err, "delete %s", strings.TrimSuffix(prefix, "/"))
		}
		if strings.HasSuffix(obj.Key, "/"+manifestName) {
			manifests = append(manifests, obj.Key)
		} else {
			rest = append(rest, obj.Key)
		}
	}
	if len(manifests)+len(rest) == 0 {
		if version == "" {
			return fmt.Errorf("%w: model %s", api.ErrNotFound, id)
		}
		return fmt.Errorf("%w: model %s v%s", api.ErrNotFound, id, version)
	}
	if version != "" {
		if data, err := s.readSmall(ctx, s.keys.latest(id), 64); err == nil && strings.TrimSpace(string(data)) == version {
			rest = append(rest, s.keys.latest(id))
		}
	}
	for _, batch := range [][]string{manifests, rest} {
		if err := s.remove(ctx, batch); err != nil {
			return s.wrap(err, "delete %s", strings.TrimSuffix(prefix, "/"))
		}
	}
	s.cache.forgetLatest(id)
	return nil
}

func (s *Store) remove(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	ch := make(chan minio.ObjectInfo, len(names))
	for _, n := range names {
		ch <- minio.ObjectInfo{Key: n}
	}
	close(ch)
	for e := range s.client.RemoveObjects(ctx, s.cfg.Bucket, ch, minio.RemoveObjectsOptions{}) {
		if e.Err != nil {
			return e.Err
		}
	}
	return nil
}

// wrap turns a minio-go error into one callers can classify: no such
// key/bucket wraps api.ErrNotFound, a server that does not answer wraps
// ErrUnreachable. Credentials never appear: minio-go's errors hold none,
// and redact removes the secret should one ever do.
func (s *Store) wrap(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	secret := s.secret
	resp := minio.ToErrorResponse(err)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("s3store: %s: %w", what, err)
	case resp.Code == "NoSuchKey", resp.Code == "NoSuchBucket", resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: s3store: %s: %s", api.ErrNotFound, what, resp.Code)
	case resp.Code == "AccessDenied", resp.Code == "InvalidAccessKeyId", resp.Code == "SignatureDoesNotMatch":
		hint := ""
		if secret == "" {
			hint = " (no credentials: set MANTA_S3_ACCESS_KEY/MANTA_S3_SECRET_KEY or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
		}
		return fmt.Errorf("s3store: %s: %s at %s: %s%s", what, resp.Code, s.cfg.Endpoint, redact(errors.New(resp.Message), secret), hint)
	case resp.Code != "":
		return fmt.Errorf("s3store: %s: %s", what, redact(err, secret))
	case isUnreachable(err):
		return fmt.Errorf("%w: %s at %s: %s: %v", ErrUnreachable, s.cfg.Bucket, s.cfg.Endpoint, what, redact(rootCause(err), secret))
	default:
		return fmt.Errorf("s3store: %s: %v", what, redact(err, secret))
	}
}

// isUnreachable reports a transport-level failure: no answer at all.
func isUnreachable(err error) bool {
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF)
}

// rootCause strips url.Error's method and URL (noise in a message).
func rootCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

type redactedError struct{ msg string }

func (e redactedError) Error() string { return e.msg }

// redact removes secret from err's message (belt and braces).
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return redactedError{strings.ReplaceAll(err.Error(), secret, "[REDACTED]")}
}

// Stats are the store's counters since Open.
type Stats struct {
	Requests  int64 // HTTP requests sent to the server (any method)
	GETs      int64 // of which GET requests
	Downloads int64 // files downloaded by Fetch (one per file, however many callers waited)
	Bytes     int64 // bytes Fetch downloaded
	Hits      int64 // files Fetch served from the disk cache
	Rehashes  int64 // cached files re-hashed before reuse (no trusted marker)
	Offline   int64 // Latest/Manifest answered from the disk cache while unreachable
	Evictions int64 // versions removed from the disk cache by its budget
	CacheUsed int64 // bytes in the disk cache
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	used, evictions := s.cache.usage()
	return Stats{
		Requests:  s.tr.requests.Load(),
		GETs:      s.tr.gets.Load(),
		Downloads: s.downloads.Load(),
		Bytes:     s.bytes.Load(),
		Hits:      s.hits.Load(),
		Rehashes:  s.rehashes.Load(),
		Offline:   s.offline.Load(),
		Evictions: evictions,
		CacheUsed: used,
	}
}

// countingTransport counts requests, so tests can assert that a cached
// model loads without touching the server.
type countingTransport struct {
	next           http.RoundTripper
	requests, gets atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.requests.Add(1)
	if r.Method == http.MethodGet {
		t.gets.Add(1)
	}
	return t.next.RoundTrip(r)
}

// flightGroup runs one function per key at a time; concurrent callers of
// the same key wait for that run and share its error. The run has its own
// context, cancelled only when every caller waiting for it has given up:
// one impatient caller does not abort a download others still wait for.
type flightGroup struct {
	mu    sync.Mutex
	calls map[string]*flight
}

type flight struct {
	done    chan struct{}
	err     error
	waiters int
	cancel  context.CancelFunc
}

// do runs fn for key, or joins the run in flight. shared reports that the
// run was started by another caller.
func (g *flightGroup) do(ctx context.Context, key string, fn func(ctx context.Context) error) (err error, shared bool) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = make(map[string]*flight)
	}
	f, shared := g.calls[key]
	if !shared {
		runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = f
		go func() {
			f.err = fn(runCtx)
			g.mu.Lock()
			if g.calls[key] == f {
				delete(g.calls, key)
			}
			g.mu.Unlock()
			cancel()
			close(f.done)
		}()
	}
	f.waiters++
	g.mu.Unlock()
	select {
	case <-f.done:
		return f.err, shared
	case <-ctx.Done():
		g.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			// Abandoned: cancel it, and let the next caller start afresh
			// rather than join a run that is being cancelled.
			f.cancel()
			if g.calls[key] == f {
				delete(g.calls, key)
			}
		}
		g.mu.Unlock()
		return ctx.Err(), shared
	}
}

var (
	_ modelhost.Store   = (*Store)(nil)
	_ modelhost.Fetcher = (*Store)(nil)
)
