// Package localbin finds the repository's root and the binaries `make
// setup` installs into its project-local .bin directory (MinIO,
// protoc-gen-go), beside those on PATH. It imports no testing code, so the
// test servers (internal/testenv) and the commands that start real servers
// (internal/clusterbench, `manta bench cluster`) share one rule.
package localbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// RepoRoot returns the root of the repository (the directory with go.mod)
// this package was built from.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// LookPath finds a binary in the project-local bin dir (.bin) or on PATH.
func LookPath(name string) (string, bool) {
	local := filepath.Join(RepoRoot(), ".bin", name)
	if st, err := os.Stat(local); err == nil && !st.IsDir() {
		return local, true
	}
	p, err := exec.LookPath(name)
	return p, err == nil
}
