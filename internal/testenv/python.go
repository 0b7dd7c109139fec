package testenv

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

var (
	pythonOnce sync.Once
	pythonPath string
	pythonWhy  []string
)

// pythonModules are what the Python worker's tests need.
var pythonModules = []string{"numpy", "sklearn", "joblib", "google.protobuf"}

// Python returns an interpreter that can import numpy, sklearn, joblib and
// protobuf (the worker protocol's generated messages):
// $MANTA_PYTHON when set, else Debian's /usr/bin/python3 (which has them
// from apt; a pyenv or venv python3 earlier on PATH often does not), else
// python3 on PATH. With none, the test is skipped, or fails under CI.
func Python(t testing.TB) string {
	t.Helper()
	pythonOnce.Do(findPython)
	if pythonPath == "" {
		Missing(t, "no Python interpreter with %s: %s", strings.Join(pythonModules, ", "), strings.Join(pythonWhy, "; "))
	}
	return pythonPath
}

func findPython() {
	var cands []string
	if p := os.Getenv("MANTA_PYTHON"); p != "" {
		cands = append(cands, p)
	}
	cands = append(cands, "/usr/bin/python3")
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	seen := make(map[string]bool)
	for _, c := range cands {
		if seen[c] {
			continue
		}
		seen[c] = true
		if _, err := exec.LookPath(c); err != nil {
			pythonWhy = append(pythonWhy, c+": not found")
			continue
		}
		out, err := exec.Command(c, "-c", "import "+strings.Join(pythonModules, ", ")).CombinedOutput()
		if err != nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			pythonWhy = append(pythonWhy, c+": "+lines[len(lines)-1])
			continue
		}
		pythonPath = c
		return
	}
}
