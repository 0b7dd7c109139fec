package manta_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/pyworker" // the python runtime, imported as a program would
)

// TestCloseStopsPythonWorkers: closing the process's last member closes
// the Python runtime's worker processes (they used to outlive the
// program's Client).
func TestCloseStopsPythonWorkers(t *testing.T) {
	py := testenv.Python(t)
	if err := pyworker.Configure(pyworker.Config{Python: py, Workers: 1, Require: []string{}, Preload: []string{}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pyworker.CloseDefault() })
	dir := t.TempDir()
	train := "import joblib\nfrom sklearn.linear_model import LinearRegression\n" +
		"joblib.dump(LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0]), 'model.joblib')\n"
	cmd := exec.Command(py, "-c", train)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	model, err := os.ReadFile(filepath.Join(dir, "model.joblib"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := modelgen.Write(root, modelhost.Manifest{ID: "py", Version: "1", Runtime: "python", Format: "sklearn-joblib",
		Entrypoint: "model.joblib", MemoryBytes: 1 << 20}, map[string][]byte{"model.joblib": model}); err != nil {
		t.Fatal(err)
	}
	c := startMember(t, root, func(cfg *manta.Config) { cfg.BudgetBytes = 1 << 30 })
	ctx := context.Background()
	if _, err := c.Model("py").Predict(ctx, []byte(`{"features":[1]}`), manta.WithTimeout(time.Minute)).Get(ctx); err != nil {
		t.Fatal(err)
	}
	s := pyworker.Started()
	if s == nil {
		t.Fatal("no python supervisor after a Python prediction")
	}
	var pids []int
	for _, w := range s.Workers(ctx) {
		if w.Running && w.PID > 0 {
			pids = append(pids, w.PID)
		}
	}
	if len(pids) == 0 {
		t.Fatal("no running worker before Close")
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if pyworker.Started() != nil {
		t.Error("the python runtime's supervisor is still open after Close")
	}
	waitFor(t, 10*time.Second, func() bool {
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil {
				return false
			}
		}
		return true
	}, "the worker processes gone after Close")
}

// TestMetricsExportQueueDepth: the member's /metrics has
// manta_member_queue_depth_requests (the SDK never gave ops the
// queue-depth source, so the Grafana panel reading it was empty).
func TestMetricsExportQueueDepth(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "lin", "1", []float64{1}, 0)
	c := startMember(t, root, func(cfg *manta.Config) { cfg.HTTPAddr = "127.0.0.1:0" })
	ctx := context.Background()
	if _, err := c.Model("lin").Predict(ctx, []byte(`{"features":[1]}`)).Get(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + c.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var line string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "manta_member_queue_depth_requests{") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("/metrics has no manta_member_queue_depth_requests series:\n%s", body)
	}
	if !strings.HasSuffix(line, " 0") {
		t.Errorf("queue depth with nothing waiting: %s", line)
	}
}
