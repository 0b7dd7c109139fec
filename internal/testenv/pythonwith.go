package testenv

import (
	"os/exec"
	"strings"
	"sync"
	"testing"
)

var (
	pythonWithMu   sync.Mutex
	pythonWithSeen = make(map[string]string) // module list → "" (imports) or why not
)

// PythonWith returns the interpreter Python finds, after checking that it
// can also import modules (e.g. "xgboost" for Debian's python3-xgboost).
// When it cannot, the test is skipped, or fails under CI, naming the
// module and the interpreter's message.
func PythonWith(t testing.TB, modules ...string) string {
	t.Helper()
	py := Python(t)
	key := strings.Join(modules, ", ")
	pythonWithMu.Lock()
	why, checked := pythonWithSeen[key]
	if !checked {
		out, err := exec.Command(py, "-c", "import "+key).CombinedOutput()
		if err != nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			why = lines[len(lines)-1]
		}
		pythonWithSeen[key] = why
	}
	pythonWithMu.Unlock()
	if why != "" {
		Missing(t, "%s cannot import %s: %s", py, key, why)
	}
	return py
}
