package modelhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/manta-ml/manta/api"
)

// DirStore is a Store in a local directory, with the layout of docs/ARCHITECTURE.md:
//
//	<root>/<model_id>/<version>/manifest.json
//	<root>/<model_id>/<version>/<artifact files>
//	<root>/<model_id>/LATEST
//
// It is also a Fetcher: a version's files are used in place (no copy), each
// verified against its sha256 first. Verified results are remembered by
// file path, size and modification time, so fetching an unchanged version
// again does not rehash it; a file rewritten in place with the same size
// inside the file system's mtime granularity would escape that check, which
// is why writers go through Put (a new file renamed into place).
//
// Every id, version and path is validated before a file name is built from
// it, so no argument can reach outside root. Files are written to a
// temporary name and renamed, so readers never see a partial file, and a
// version becomes visible only when its manifest.json exists.
//
// A DirStore is safe for concurrent use.
type DirStore struct {
	root string

	mu       sync.Mutex
	verified map[string]fileStamp // absolute file path -> last verified stamp
}

// fileStamp identifies the content of a file that was verified.
type fileStamp struct {
	size   int64
	mtime  int64 // UnixNano
	sha256 string
}

// NewDirStore opens (creating it if needed) a directory store at root.
func NewDirStore(root string) (*DirStore, error) {
	if root == "" {
		return nil, badInput("dir store: empty root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("dir store %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("dir store: %w", err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("dir store: %w", err)
	}
	if !st.IsDir() {
		return nil, badInput("dir store %s: not a directory", abs)
	}
	return &DirStore{root: abs, verified: make(map[string]fileStamp)}, nil
}

// Root returns the store's absolute root directory.
func (s *DirStore) Root() string { return s.root }

func (s *DirStore) String() string { return "file://" + filepath.ToSlash(s.root) }

func (s *DirStore) modelDir(id string) (string, error) {
	if err := ValidID(id); err != nil {
		return "", err
	}
	return filepath.Join(s.root, id), nil
}

func (s *DirStore) versionDir(id, version string) (string, error) {
	if err := ValidID(id); err != nil {
		return "", err
	}
	if err := ValidVersion(version); err != nil {
		return "", err
	}
	return filepath.Join(s.root, id, version), nil
}

// filePath builds the path of a file of a version: an artifact (ValidPath)
// or the manifest.
func (s *DirStore) filePath(id, version, p string) (string, error) {
	dir, err := s.versionDir(id, version)
	if err != nil {
		return "", err
	}
	if p != ManifestName {
		if err := ValidPath(p); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, filepath.FromSlash(p)), nil
}

func notFound(format string, args ...any) error {
	return fmt.Errorf("%w: %s", api.ErrNotFound, fmt.Sprintf(format, args...))
}

// List returns the ids of the models that have at least one visible version
// (a manifest.json), sorted. Directories that are not valid ids are ignored.
func (s *DirStore) List(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.root, err)
	}
	var ids []string
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() || ValidID(e.Name()) != nil {
			continue
		}
		vs, err := s.versions(e.Name())
		if err != nil && !errors.Is(err, api.ErrNotFound) {
			return nil, err
		}
		if len(vs) > 0 {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil // os.ReadDir sorts by name
}

// Versions returns the visible versions of a model in ascending numeric
// order. A model without any is not found.
func (s *DirStore) Versions(ctx context.Context, id string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	vs, err := s.versions(id)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, notFound("model %s has no versions", id)
	}
	return vs, nil
}

func (s *DirStore) versions(id string) ([]string, error) {
	dir, err := s.modelDir(id)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, notFound("model %s", id)
		}
		return nil, fmt.Errorf("versions of %s: %w", id, err)
	}
	var vs []string
	for _, e := range ents {
		if !e.IsDir() || ValidVersion(e.Name()) != nil {
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, e.Name(), ManifestName)); err == nil && st.Mode().IsRegular() {
			vs = append(vs, e.Name())
		}
	}
	sort.Slice(vs, func(i, j int) bool { return versionLess(vs[i], vs[j]) })
	return vs, nil
}

// Latest returns the version named by LATEST if the file exists, else the
// highest visible version. A LATEST naming a version that is not visible is
// an error wrapping api.ErrNotFound (it is not silently ignored: someone
// pinned it on purpose).
func (s *DirStore) Latest(ctx context.Context, id string) (string, error) {
	dir, err := s.modelDir(id)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, LatestName))
	switch {
	case err == nil:
		v := string(bytes.TrimSpace(b))
		if err := ValidVersion(v); err != nil {
			return "", fmt.Errorf("model %s: LATEST: %w", id, err)
		}
		if _, err := os.Stat(filepath.Join(dir, v, ManifestName)); err != nil {
			return "", notFound("model %s: LATEST names version %s, which has no manifest", id, v)
		}
		return v, nil
	case errors.Is(err, fs.ErrNotExist):
		vs, err := s.Versions(ctx, id)
		if err != nil {
			return "", err
		}
		return vs[len(vs)-1], nil
	default:
		return "", fmt.Errorf("model %s: LATEST: %w", id, err)
	}
}

// Manifest reads, parses and validates the manifest of id/version, and
// checks that it names that id and version.
func (s *DirStore) Manifest(ctx context.Context, id, version string) (*Manifest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := s.filePath(id, version, ManifestName)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, notFound("model %s version %s", id, version)
		}
		return nil, fmt.Errorf("manifest of %s v%s: %w", id, version, err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s/%s/%s: %w", id, version, ManifestName, err)
	}
	if m.ID != id || m.Version != version {
		return nil, badInput("%s/%s/%s names %s v%s", id, version, ManifestName, m.ID, m.Version)
	}
	return m, nil
}

// Open opens one file of a version (an artifact path, or manifest.json).
func (s *DirStore) Open(ctx context.Context, id, version, path string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := s.filePath(id, version, path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, notFound("model %s version %s: file %s", id, version, path)
		}
		return nil, err
	}
	return f, nil
}

// Put writes one file of a version: to a temporary file in the target
// directory, then renamed into place. size < 0 means unknown; otherwise a
// different byte count is an error and nothing is written.
func (s *DirStore) Put(ctx context.Context, id, version, path string, r io.Reader, size int64) error {
	p, err := s.filePath(id, version, path)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(ctx, p, r, size); err != nil {
		return err
	}
	if path == ManifestName {
		// The manifest comes last and makes the version count: touch the
		// model's directory so its VersionStamp changes now.
		now := time.Now()
		_ = os.Chtimes(filepath.Dir(filepath.Dir(p)), now, now)
	}
	return nil
}

func writeFileAtomic(ctx context.Context, p string, r io.Reader, size int64) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".manta-tmp-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, ctxReader{ctx, r})
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(p), err)
	}
	if size >= 0 && n != size {
		return badInput("write %s: got %d bytes, want %d", filepath.Base(p), n, size)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return err
	}
	ok = true
	return nil
}

// ctxReader stops a copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// SetLatest points LATEST at version, which must be visible.
func (s *DirStore) SetLatest(ctx context.Context, id, version string) error {
	dir, err := s.versionDir(id, version)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); err != nil {
		return notFound("model %s version %s", id, version)
	}
	return writeFileAtomic(ctx, filepath.Join(s.root, id, LatestName), strings.NewReader(version+"\n"), -1)
}

// Delete removes a version, or the whole model when version is "". The
// manifest goes first, so the version disappears at once for readers. A
// LATEST naming the deleted version is removed too (serving falls back to
// the highest remaining version).
func (s *DirStore) Delete(ctx context.Context, id, version string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	mdir, err := s.modelDir(id)
	if err != nil {
		return err
	}
	if version == "" {
		if _, err := os.Stat(mdir); err != nil {
			return notFound("model %s", id)
		}
		s.forget(mdir)
		return os.RemoveAll(mdir)
	}
	vdir, err := s.versionDir(id, version)
	if err != nil {
		return err
	}
	if _, err := os.Stat(vdir); err != nil {
		return notFound("model %s version %s", id, version)
	}
	if err := os.Remove(filepath.Join(vdir, ManifestName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(mdir, LatestName)); err == nil && string(bytes.TrimSpace(b)) == version {
		if err := os.Remove(filepath.Join(mdir, LatestName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	s.forget(vdir)
	return os.RemoveAll(vdir)
}

// forget drops remembered verifications under dir.
func (s *DirStore) forget(dir string) {
	prefix := dir + string(filepath.Separator)
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.verified {
		if strings.HasPrefix(p, prefix) {
			delete(s.verified, p)
		}
	}
}

// Fetch verifies every file of m in place and returns the version's
// directory. Files verified before and unchanged since (same size and
// modification time) are not hashed again.
func (s *DirStore) Fetch(ctx context.Context, m *Manifest) (string, error) {
	if err := m.Validate(); err != nil {
		return "", err
	}
	dir, err := s.versionDir(m.ID, m.Version)
	if err != nil {
		return "", err
	}
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if err := s.verify(filepath.Join(dir, filepath.FromSlash(f.Path)), f); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func (s *DirStore) verify(p string, f File) error {
	before, err := os.Stat(p)
	if err != nil {
		return VerifyFile(p, f) // reports missing/unreadable with the file's name
	}
	stamp := fileStamp{size: before.Size(), mtime: before.ModTime().UnixNano(), sha256: f.SHA256}
	s.mu.Lock()
	cached, ok := s.verified[p]
	s.mu.Unlock()
	if ok && cached == stamp && stamp.size == f.Size {
		return nil
	}
	if err := VerifyFile(p, f); err != nil {
		s.mu.Lock()
		delete(s.verified, p)
		s.mu.Unlock()
		return err
	}
	// Remember only if the file did not change while it was hashed.
	if after, err := os.Stat(p); err == nil && after.Size() == before.Size() && after.ModTime().Equal(before.ModTime()) {
		s.mu.Lock()
		s.verified[p] = stamp
		s.mu.Unlock()
	}
	return nil
}

// Interface guards.
var (
	_ Store   = (*DirStore)(nil)
	_ Fetcher = (*DirStore)(nil)
)

// VersionStamp is a cheap fingerprint of model id's versions: the
// modification times of its directory (a version added or removed, LATEST
// replaced, and, through Put, a manifest written) and of its LATEST file.
// Two stats, no read. While the directory or LATEST changed in the last
// stampSettle the stamp is "" (check), so a version written by other means
// than Put, whose manifest lands in the version's own directory, is still
// seen once its manifest is there.
func (s *DirStore) VersionStamp(ctx context.Context, id string) (string, error) {
	dir, err := s.modelDir(id)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return "", err
	}
	if time.Since(st.ModTime()) < stampSettle {
		return "", nil // "" means: check
	}
	stamp := strconv.FormatInt(st.ModTime().UnixNano(), 10)
	if lt, err := os.Stat(filepath.Join(dir, LatestName)); err == nil {
		if time.Since(lt.ModTime()) < stampSettle {
			return "", nil
		}
		stamp += "/" + strconv.FormatInt(lt.ModTime().UnixNano(), 10) + "/" + strconv.FormatInt(lt.Size(), 10)
	}
	return stamp, nil
}

// stampSettle is how long after a change a directory's stamp is not
// trusted.
const stampSettle = 30 * time.Second

var _ VersionStamper = (*DirStore)(nil)
