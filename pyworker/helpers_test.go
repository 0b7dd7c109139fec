package pyworker

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
)

// modelsDir holds the models built for this test binary (see TestMain).
var modelsDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pyworker-test-models-")
	if err != nil {
		panic(err)
	}
	modelsDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildMu    sync.Mutex
	built      = map[string]error{}
	buildPyOut = map[string]string{}
)

// sklearnModel builds (once per test binary) the named model of
// testdata/make_models.py and returns its manifest and directory.
func sklearnModel(t testing.TB, name string) (*modelhost.Manifest, string) {
	t.Helper()
	sklearnModels(t, name)
	dir := filepath.Join(modelsDir, name)
	return readManifest(t, dir), dir
}

// sklearnModels builds the named models not built yet, in one Python run.
func sklearnModels(t testing.TB, names ...string) {
	t.Helper()
	py := testenv.Python(t)
	buildMu.Lock()
	defer buildMu.Unlock()
	var todo []string
	for _, n := range names {
		if _, done := built[n]; !done {
			todo = append(todo, n)
		}
	}
	if len(todo) > 0 {
		cmd := exec.Command(py, append([]string{"testdata/make_models.py", modelsDir}, todo...)...)
		cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1")
		out, err := cmd.CombinedOutput()
		for _, n := range todo {
			built[n] = err
			buildPyOut[n] = string(out)
		}
	}
	for _, n := range names {
		if err := built[n]; err != nil {
			t.Fatalf("make_models.py %s: %v\n%s", n, err, buildPyOut[n])
		}
	}
}

func readManifest(t testing.TB, dir string) *modelhost.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m modelhost.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// classModel makes a python-class model from testdata/pyclass/<file>.py in
// a fresh directory.
func classModel(t testing.TB, file, class string) (*modelhost.Manifest, string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "pyclass", file+".py"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, file+".py"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	return &modelhost.Manifest{ID: file, Version: "1", Runtime: "python", Format: "python-class",
		Entrypoint: file + ".py:" + class}, dir
}

// syncBuffer collects the workers' stderr; it is logged if the test fails.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newSupervisor starts a supervisor on the test interpreter; opts adjust
// its config. It is closed (and checked to leave no process) at cleanup.
func newSupervisor(t testing.TB, opts ...func(*Config)) (*Supervisor, *syncBuffer) {
	t.Helper()
	stderr := &syncBuffer{}
	cfg := Config{Python: testenv.Python(t), Workers: 2, Stderr: stderr}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if t.Failed() {
			t.Logf("worker stderr:\n%s", stderr.String())
		}
	})
	return s, stderr
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func load(t testing.TB, s *Supervisor, m *modelhost.Manifest, dir string) modelhost.Model {
	t.Helper()
	mod, err := s.Load(ctxT(t, 2*time.Minute), m, dir)
	if err != nil {
		t.Fatalf("load %s: %v", m.ID, err)
	}
	t.Cleanup(func() { mod.Close() })
	return mod
}

func jsonInputs(docs ...string) []modelhost.Input {
	in := make([]modelhost.Input, len(docs))
	for i, d := range docs {
		in[i] = modelhost.Input{Payload: []byte(d)}
	}
	return in
}

func predictOne(t testing.TB, m modelhost.Model, doc string) (string, error) {
	t.Helper()
	out, err := m.Predict(ctxT(t, time.Minute), jsonInputs(doc))
	if err != nil {
		return "", err
	}
	if len(out) != 1 {
		t.Fatalf("%d outputs for 1 input", len(out))
	}
	return string(out[0].Payload), out[0].Err
}

// waitFor polls cond until it holds or the deadline passes: waiting on a
// condition, not for a time.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, d, what, cond)
}

func pids(s *Supervisor) []int {
	var p []int
	for _, w := range s.Workers(context.Background()) {
		p = append(p, w.PID)
	}
	return p
}
