package modelhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/manta-ml/manta/api"
)

// PushOptions are the optional settings of Push. The zero value works.
type PushOptions struct {
	// Progress, if set, is told how far the upload got: Path is the file
	// being sent, Bytes and Total count bytes over the whole version (every
	// artifact; the small manifest is not counted). It is called from
	// Push's goroutine, at most every ProgressInterval, and once with Done
	// when every artifact is up.
	Progress func(Progress)
	// SetLatest points LATEST at the new version once it is visible.
	SetLatest bool
	// Now stamps created_at; nil means time.Now.
	Now func() time.Time
}

// Push publishes a model directory as the next version of its model in
// store. dir holds a manifest.json with at least id, runtime and entrypoint
// (other fields are kept) and the artifact files, which are every other
// regular file under dir, recursively (symbolic links to regular files are
// followed). Push fills in version (the store's highest plus one, or 1),
// files (sizes and sha256) and created_at, validates the result, uploads
// the artifacts and then manifest.json last, so that a version is never
// visible before all its files are in place; with opts.SetLatest it then
// moves LATEST. A file that changes between hashing and upload fails the
// push (the version stays invisible). Two concurrent pushes of the same
// model may pick the same version; callers serialize pushes of one model.
func Push(ctx context.Context, store Store, dir string, opts PushOptions) (*Manifest, error) {
	m, err := readPushManifest(dir)
	if err != nil {
		return nil, err
	}
	files, err := scanPushDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	m.Files = files

	next, err := nextVersion(ctx, store, m.ID)
	if err != nil {
		return nil, err
	}
	m.Version = next
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	m.CreatedAt = now().UTC().Truncate(time.Second)
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("push %s: %w", dir, err)
	}
	if err := checkPush(ctx, m, dir); err != nil {
		return nil, fmt.Errorf("push %s: %w", dir, err)
	}
	body, err := EncodeManifest(m)
	if err != nil {
		return nil, err
	}

	meter := NewProgressMeter(opts.Progress, Progress{ID: m.ID, Version: m.Version, Total: m.FilesSize()})
	for _, f := range m.Files {
		meter.SetPath(f.Path)
		if err := pushFile(ctx, store, m, dir, f, meter); err != nil {
			return nil, fmt.Errorf("push %s v%s: %s: %w", m.ID, m.Version, f.Path, err)
		}
	}
	meter.Finish()
	if err := store.Put(ctx, m.ID, m.Version, ManifestName, bytes.NewReader(body), int64(len(body))); err != nil {
		return nil, fmt.Errorf("push %s v%s: %s: %w", m.ID, m.Version, ManifestName, err)
	}
	if opts.SetLatest {
		if err := store.SetLatest(ctx, m.ID, m.Version); err != nil {
			return m, fmt.Errorf("push %s v%s: set LATEST: %w", m.ID, m.Version, err)
		}
	}
	return m, nil
}

// readPushManifest reads dir/manifest.json and checks the fields a pusher
// must give. Unknown fields are ignored, as in ParseManifest.
func readPushManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, badInput("push %s: no %s (want at least id, runtime and entrypoint)", dir, ManifestName)
		}
		return nil, fmt.Errorf("push %s: %w", dir, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, badInput("push %s: %s: %v", dir, ManifestName, err)
	}
	for _, req := range []struct{ name, v string }{{"id", m.ID}, {"runtime", m.Runtime}, {"entrypoint", m.Entrypoint}} {
		if req.v == "" {
			return nil, badInput("push %s: %s: %s is required", dir, ManifestName, req.name)
		}
	}
	if err := ValidID(m.ID); err != nil {
		return nil, fmt.Errorf("push %s: %w", dir, err)
	}
	return &m, nil
}

// scanPushDir lists and hashes the artifacts of dir.
func scanPushDir(ctx context.Context, dir string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() || rel == ManifestName {
			return nil
		}
		st, err := os.Stat(p) // follows a symbolic link
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			if st.IsDir() {
				return badInput("%s: symbolic links to directories are not supported", rel)
			}
			return badInput("%s: not a regular file", rel)
		}
		if err := ValidPath(rel); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		n, sum, err := hashReader(ctxReader{ctx, f})
		if err != nil {
			return fmt.Errorf("hash %s: %w", rel, err)
		}
		files = append(files, File{Path: rel, Size: n, SHA256: sum})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", dir, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// nextVersion is the store's highest version of id plus one, or "1".
func nextVersion(ctx context.Context, store Store, id string) (string, error) {
	vs, err := store.Versions(ctx, id)
	if errors.Is(err, api.ErrNotFound) {
		return "1", nil
	}
	if err != nil {
		return "", fmt.Errorf("push %s: versions: %w", id, err)
	}
	highest := "0"
	for _, v := range vs {
		if ValidVersion(v) == nil && versionLess(highest, v) {
			highest = v
		}
	}
	n, err := strconv.ParseInt(highest, 10, 64)
	if err != nil || n+1 <= 0 {
		return "", fmt.Errorf("push %s: cannot increment version %s", id, highest)
	}
	next := strconv.FormatInt(n+1, 10)
	if err := ValidVersion(next); err != nil {
		return "", fmt.Errorf("push %s: %w", id, err)
	}
	return next, nil
}

// pushFile uploads one artifact, counting its bytes on meter and checking
// that what was sent is what was hashed.
func pushFile(ctx context.Context, store Store, m *Manifest, dir string, f File, meter *ProgressMeter) error {
	fh, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.Path)))
	if err != nil {
		return err
	}
	defer fh.Close()
	h := sha256.New()
	if err := store.Put(ctx, m.ID, m.Version, f.Path, io.TeeReader(fh, io.MultiWriter(h, meter)), f.Size); err != nil {
		return err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != f.SHA256 {
		return fmt.Errorf("changed while pushing (sha256 %s, then %s)", f.SHA256, sum)
	}
	return nil
}

// PushChecker is an optional interface of a Runtime: Push calls CheckPush
// with the validated manifest and the directory being pushed, before any
// file is uploaded. A runtime that reads model files itself (xgboost,
// lightgbm) loads the model once, so a file that does not parse is refused
// at push (an error wrapping api.ErrBadInput that names the file and the
// parser's message) rather than at the first request, and returns the
// loaded model's memory in bytes, which Push writes to memory_bytes when the
// manifest does not set it (0 leaves it unset). CheckPush may also fill in
// m's options it leaves unset (the tree runtimes record n_features there);
// the manifest is encoded after it returns.
type PushChecker interface {
	CheckPush(ctx context.Context, m *Manifest, dir string) (memoryBytes int64, err error)
}

// checkPush asks m's runtime, if it is a PushChecker, to check the files
// and fills in memory_bytes from its answer.
func checkPush(ctx context.Context, m *Manifest, dir string) error {
	rt, ok := LookupRuntime(m.Runtime)
	if !ok {
		return nil // Validate refused it already
	}
	pc, ok := rt.(PushChecker)
	if !ok {
		return nil
	}
	n, err := pc.CheckPush(ctx, m, dir)
	if err != nil {
		return fmt.Errorf("runtime %s: %w", m.Runtime, err)
	}
	if m.MemoryBytes == 0 && n > 0 {
		m.MemoryBytes = n
	}
	return nil
}
