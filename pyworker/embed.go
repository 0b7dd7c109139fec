package pyworker

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// The worker's Python package travels inside the Go binary and is written
// out at first use, so a built `manta` finds it wherever it runs.
//
//go:embed manta_worker/*.py
var workerFS embed.FS

var (
	installOnce sync.Once
	installDir  string
	installErr  error
)

// packageDir returns a directory holding manta_worker/ (to put on
// PYTHONPATH), writing it on first use under the user's cache directory
// (else the temp directory), in a subdirectory named by the content's hash:
// different versions of Manta on one machine never share one.
func packageDir() (string, error) {
	installOnce.Do(func() { installDir, installErr = installPackage() })
	return installDir, installErr
}

func installPackage() (string, error) {
	files, err := fs.Glob(workerFS, "manta_worker/*.py")
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	contents := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := workerFS.ReadFile(f)
		if err != nil {
			return "", err
		}
		contents[f] = b
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]
	var lastErr error
	for _, base := range candidateDirs() {
		dir := filepath.Join(base, "manta", "pyworker-"+sum)
		if ok, _ := installed(dir, contents); ok {
			return dir, nil
		}
		if err := writePackage(dir, contents); err != nil {
			lastErr = err
			continue
		}
		return dir, nil
	}
	return "", fmt.Errorf("pyworker: cannot write the worker's Python package: %w", lastErr)
}

func candidateDirs() []string {
	var dirs []string
	if d, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, d)
	}
	return append(dirs, os.TempDir())
}

// installed reports whether dir already holds exactly these files.
func installed(dir string, contents map[string][]byte) (bool, error) {
	for name, want := range contents {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || string(got) != string(want) {
			return false, err
		}
	}
	return true, nil
}

// writePackage writes the files into a fresh temporary directory beside
// dir and renames it into place, so a concurrent starter (another process)
// never sees half a package.
func writePackage(dir string, contents map[string][]byte) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".pyworker-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for name, b := range contents {
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Someone else won the race: fine if what they wrote is complete.
		if ok, _ := installed(dir, contents); ok {
			return nil
		}
		// A stale, incomplete copy: replace it.
		if rerr := os.RemoveAll(dir); rerr != nil {
			return err
		}
		return os.Rename(tmp, dir)
	}
	return nil
}
