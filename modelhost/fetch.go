package modelhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// FetchTo makes the files of m available in dir for a store that is not a
// Fetcher: each file is copied through store.Open into a temporary name
// while being hashed, renamed into place only once its size and sha256
// match, and deleted on a mismatch (a *VerifyError naming the file, wrapping
// api.ErrLoadFailed). A file already in dir that verifies is not copied
// again, so dir works as a disk cache across loads.
func FetchTo(ctx context.Context, store Store, m *Manifest, dir string) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(f.Path))
		if st, err := os.Stat(target); err == nil && st.Size() == f.Size && VerifyFile(target, f) == nil {
			continue
		}
		if err := fetchFile(ctx, store, m, f, target); err != nil {
			return err
		}
	}
	return nil
}

func fetchFile(ctx context.Context, store Store, m *Manifest, f File, target string) (err error) {
	rc, err := store.Open(ctx, m.ID, m.Version, f.Path)
	if err != nil {
		return loadFailed(fmt.Errorf("fetch %s: %w", f.Path, err))
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), ".manta-fetch-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	// Read at most one byte more than expected: enough to see a file that
	// is too long without copying all of it.
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(ctxReader{ctx, rc}, f.Size+1))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &VerifyError{File: f.Path, Problem: "fetch", Err: err}
	}
	if err := checkDigest(f, n, hex.EncodeToString(h.Sum(nil))); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), target)
}
