package pyworker

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
)

type prediction struct {
	Prediction    json.RawMessage `json:"prediction"`
	Probabilities []float64       `json:"probabilities"`
}

func decodePrediction(t *testing.T, o modelhost.Output) prediction {
	t.Helper()
	if o.Err != nil {
		t.Fatalf("row error: %v", o.Err)
	}
	if o.ContentType != modelhost.ContentTypeJSON {
		t.Errorf("content type %q", o.ContentType)
	}
	var p prediction
	if err := json.Unmarshal(o.Payload, &p); err != nil {
		t.Fatalf("output %q: %v", o.Payload, err)
	}
	return p
}

func asFloat(t *testing.T, raw json.RawMessage) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		t.Fatalf("prediction %s is not a number", raw)
	}
	return f
}

func TestLoadPredictUnload(t *testing.T) {
	s, _ := newSupervisor(t)
	m, dir := sklearnModel(t, "reg")
	mod, err := s.Load(ctxT(t, time.Minute), m, dir)
	if err != nil {
		t.Fatal(err)
	}
	tensor, _ := proto.Marshal(&api.Tensor{Dtype: api.DType_DTYPE_FLOAT32, Shape: []int64{5},
		Data: binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(
			binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, math.Float32bits(1)), math.Float32bits(0)),
			math.Float32bits(0)), math.Float32bits(0)), math.Float32bits(0))})
	batch := []modelhost.Input{
		{Payload: []byte(`{"features":[1,2,3,4,5]}`)},
		{Payload: []byte(`{"features":[0,0,0,0,0]}`), ContentType: "application/json"},
		{Payload: []byte(`{"features":[1,2,3]}`)},
		{Payload: []byte(`not json`)},
		{Payload: tensor, ContentType: ContentTypeTensor},
		{Payload: []byte(`x`), ContentType: "text/csv"},
	}
	out, err := mod.Predict(ctxT(t, time.Minute), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(batch) {
		t.Fatalf("%d outputs for %d inputs", len(out), len(batch))
	}
	// y = 4 + x1 - 2 x2 + 0.5 x3 + 3 x4 (testdata/make_models.py)
	for i, want := range map[int]float64{0: 14.5, 1: 4, 4: 5} {
		if got := asFloat(t, decodePrediction(t, out[i]).Prediction); math.Abs(got-want) > 1e-6 {
			t.Errorf("row %d: prediction %v, want %v", i, got, want)
		}
	}
	for _, i := range []int{2, 3, 5} {
		if !errors.Is(out[i].Err, api.ErrBadInput) {
			t.Errorf("row %d: err = %v, want bad_input", i, out[i].Err)
		}
	}
	if !strings.Contains(out[2].Err.Error(), "expected 5 features, got 3") {
		t.Errorf("row 2: %v", out[2].Err)
	}

	ws := s.Workers(ctxT(t, time.Minute))
	var where *WorkerInfo
	for i := range ws {
		if len(ws[i].Models) > 0 {
			where = &ws[i]
		}
	}
	if where == nil || len(where.Models) != 1 || where.Models[0].ID != "reg" || where.Models[0].Rows != 3 || where.RSS == 0 {
		t.Fatalf("workers after load: %+v", ws)
	}
	if err := mod.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := mod.Predict(ctxT(t, time.Minute), batch); !errors.Is(err, api.ErrInternal) {
		t.Errorf("predict after close: %v", err)
	}
	for _, w := range s.Workers(ctxT(t, time.Minute)) {
		if len(w.Models) != 0 {
			t.Errorf("worker %d still holds %+v after unload", w.Index, w.Models)
		}
	}
}

func TestClassifierOutputs(t *testing.T) {
	s, _ := newSupervisor(t, func(c *Config) { c.Workers = 1 })
	m, dir := sklearnModel(t, "clf") // predict_proba asked for in its manifest
	clf := load(t, s, m, dir)
	out, err := clf.Predict(ctxT(t, time.Minute), jsonInputs(`{"features":[2,2,0,0]}`, `{"features":[-2,-2,0,0]}`))
	if err != nil {
		t.Fatal(err)
	}
	for i, wantClass := range []string{"2", "0"} {
		p := decodePrediction(t, out[i])
		if string(p.Prediction) != wantClass {
			t.Errorf("row %d: class %s, want %s", i, p.Prediction, wantClass)
		}
		sum := 0.0
		for _, v := range p.Probabilities {
			sum += v
		}
		if len(p.Probabilities) != 3 || math.Abs(sum-1) > 1e-9 {
			t.Errorf("row %d: probabilities %v", i, p.Probabilities)
		}
	}

	m, dir = sklearnModel(t, "labels") // string class labels: JSON rows from Python
	labels := load(t, s, m, dir)
	out, err = labels.Predict(ctxT(t, time.Minute), jsonInputs(`{"features":[3,0,0]}`, `{"features":[-3,0,0]}`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{`"late"`, `"on-time"`} {
		if p := decodePrediction(t, out[i]); string(p.Prediction) != want {
			t.Errorf("row %d: %s, want %s", i, p.Prediction, want)
		}
	}
}

func TestConcurrentLoadsShareOneModel(t *testing.T) {
	s, _ := newSupervisor(t)
	m, dir := classModel(t, "counter", "Counter")
	const n = 8
	models := make([]modelhost.Model, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			mm := *m // each caller has its own manifest copy, as actors do
			models[i], errs[i] = s.Load(ctxT(t, time.Minute), &mm, dir)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("load %d: %v", i, err)
		}
	}
	loads := func() int {
		b, _ := os.ReadFile(filepath.Join(dir, "loads.txt"))
		return strings.Count(string(b), "\n")
	}
	if got := loads(); got != 1 {
		t.Fatalf("model loaded %d times by %d concurrent Loads, want once", got, n)
	}
	var pid string
	for i, mod := range models {
		out, err := predictOne(t, mod, `{}`)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			pid = out
		} else if out != pid {
			t.Errorf("handle %d answered from %s, handle 0 from %s", i, out, pid)
		}
	}
	// Closing all but one keeps it loaded; closing the last unloads it.
	for _, mod := range models[1:] {
		mod.Close()
		mod.Close() // twice is harmless
	}
	if _, err := predictOne(t, models[0], `{}`); err != nil {
		t.Fatalf("last handle: %v", err)
	}
	models[0].Close()
	for _, w := range s.Workers(ctxT(t, time.Minute)) {
		if len(w.Models) != 0 {
			t.Fatalf("worker %d still holds %v", w.Index, w.Models)
		}
	}
	again := load(t, s, m, dir)
	if _, err := predictOne(t, again, `{}`); err != nil {
		t.Fatal(err)
	}
	if got := loads(); got != 2 {
		t.Fatalf("loads after unload and reload = %d, want 2", got)
	}
}

func TestTenModelsShareWorkers(t *testing.T) {
	const workers = 2
	s, _ := newSupervisor(t, func(c *Config) { c.Workers = workers })
	names := make([]string, 10)
	for k := range names {
		names[k] = fmt.Sprintf("reg%d", k)
	}
	sklearnModels(t, names...) // one Python run for all ten
	mods := make([]modelhost.Model, len(names))
	for k, name := range names {
		m, dir := sklearnModel(t, name)
		mods[k] = load(t, s, m, dir)
	}
	var wg sync.WaitGroup
	for k, mod := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// y = k x1 + x2 - x3 + k
			out, err := mod.Predict(ctxT(t, time.Minute), jsonInputs(`{"features":[1,2,3]}`, `{"features":[2,0,0]}`))
			if err != nil {
				t.Errorf("reg%d: %v", k, err)
				return
			}
			for i, want := range []float64{float64(k) + 2 - 3 + float64(k), float64(3 * k)} {
				var p prediction
				if err := json.Unmarshal(out[i].Payload, &p); err != nil || out[i].Err != nil {
					t.Errorf("reg%d row %d: %s %v", k, i, out[i].Payload, out[i].Err)
					continue
				}
				if got, _ := strconv.ParseFloat(string(p.Prediction), 64); math.Abs(got-want) > 1e-4 {
					t.Errorf("reg%d row %d: %v, want %v", k, i, got, want)
				}
			}
		}()
	}
	wg.Wait()
	ws := s.Workers(ctxT(t, time.Minute))
	total, procs := 0, map[int]bool{}
	for _, w := range ws {
		total += len(w.Models)
		if w.PID != 0 {
			procs[w.PID] = true
		}
		var mem int64
		for _, m := range w.Models {
			mem += m.MemoryBytes
		}
		t.Logf("worker %d pid %d: %d models holding %d KiB, rss %d MiB", w.Index, w.PID, len(w.Models), mem>>10, w.RSS>>20)
	}
	if total != 10 || len(ws) != workers || len(procs) != workers {
		t.Fatalf("10 models over %d workers: %d models in %d processes", workers, total, len(procs))
	}
	for _, w := range ws {
		if len(w.Models) == 0 {
			t.Errorf("worker %d holds no model: placement by memory should spread them", w.Index)
		}
	}
}

func TestKillWorkerDuringBatch(t *testing.T) {
	s, _ := newSupervisor(t, func(c *Config) { c.Workers = 1; c.CallTimeout = 30 * time.Second })
	sm, sdir := classModel(t, "sleeper", "Sleeper")
	sleeper := load(t, s, sm, sdir)
	rm, rdir := sklearnModel(t, "reg")
	reg := load(t, s, rm, rdir)
	pid := pids(s)[0]

	// One slow batch runs, three more wait behind it in the pipe.
	const inflight = 4
	errs := make(chan error, inflight)
	for i := 0; i < inflight; i++ {
		doc := `{"sleep":0}`
		if i == 0 {
			doc = `{"sleep":20}`
		}
		go func() {
			_, err := sleeper.Predict(ctxT(t, time.Minute), jsonInputs(doc, doc))
			errs <- err
		}()
		waitFor(t, 30*time.Second, "the batch to be written to the worker", func() bool { return inFlight(s) == i+1 })
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < inflight; i++ {
		err := <-errs
		if !errors.Is(err, api.ErrInternal) {
			t.Fatalf("in-flight request %d: err = %v, want internal", i, err)
		}
		// Failed by the death itself, not later by the stuck-worker timeout.
		if !strings.Contains(err.Error(), "died") || !strings.Contains(err.Error(), "killed") || strings.Contains(err.Error(), "stuck") {
			t.Errorf("error does not say the worker was killed: %v", err)
		}
	}
	// Later requests wait for the restart and the reload of both models.
	if out, err := reg.Predict(ctxT(t, time.Minute), jsonInputs(`{"features":[0,0,0,0,0]}`)); err != nil || out[0].Err != nil {
		t.Fatalf("reg after restart: %v", err)
	}
	if _, err := predictOne(t, sleeper, `{"sleep":0}`); err != nil {
		t.Fatalf("sleeper after restart: %v", err)
	}
	ws := s.Workers(ctxT(t, time.Minute))
	if ws[0].PID == pid || ws[0].PID == 0 || ws[0].Restarts != 1 || len(ws[0].Models) != 2 {
		t.Fatalf("after restart: %+v (old pid %d)", ws[0], pid)
	}
}

// inFlight is the number of requests written to the workers and not yet
// answered.
func inFlight(s *Supervisor) int {
	n := 0
	for _, w := range s.workers {
		w.mu.Lock()
		p := w.proc
		w.mu.Unlock()
		if p == nil {
			continue
		}
		p.mu.Lock()
		n += len(p.pending)
		p.mu.Unlock()
	}
	return n
}

func TestStuckWorkerIsKilled(t *testing.T) {
	s, _ := newSupervisor(t, func(c *Config) { c.Workers = 1; c.CallTimeout = 2 * time.Second })
	m, dir := classModel(t, "sleeper", "Sleeper")
	mod := load(t, s, m, dir)
	pid := pids(s)[0]
	_, err := predictOne(t, mod, `{"sleep":60}`)
	if !errors.Is(err, api.ErrInternal) || !strings.Contains(err.Error(), "stuck") {
		t.Fatalf("stuck predict: err = %v, want internal naming the stuck worker", err)
	}
	out, err := predictOne(t, mod, `{"sleep":0}`)
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if out != `{"slept":0}` {
		t.Errorf("output %s", out)
	}
	if p := pids(s)[0]; p == pid {
		t.Errorf("stuck worker %d was not replaced", pid)
	}
}

func TestPrintingModelDoesNotCorruptProtocol(t *testing.T) {
	s, stderr := newSupervisor(t, func(c *Config) { c.Workers = 1 })
	m, dir := classModel(t, "printer", "Printer")
	mod := load(t, s, m, dir)
	pid := pids(s)[0]
	for i := 0; i < 20; i++ {
		out, err := mod.Predict(ctxT(t, time.Minute), jsonInputs(`{"a":1}`, `[2]`))
		if err != nil {
			t.Fatal(err)
		}
		if string(out[0].Payload) != `{"echo":{"a":1}}` || string(out[1].Payload) != `{"echo":[2]}` {
			t.Fatalf("outputs %s %s", out[0].Payload, out[1].Payload)
		}
	}
	if p := pids(s)[0]; p != pid {
		t.Fatalf("worker restarted (%d -> %d)", pid, p)
	}
	for _, want := range []string{"printer: imported", "junk-at-import", "printer: loading from", "printer: predicting 2", "raw bytes on fd 1"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
}

func TestRaisingModel(t *testing.T) {
	s, _ := newSupervisor(t, func(c *Config) { c.Workers = 1 })
	m, dir := classModel(t, "raiser", "Raiser")
	mod := load(t, s, m, dir)
	pid := pids(s)[0]
	tests := []struct {
		in       string
		sentinel error
		typ, msg string
	}{
		{`{"raise":"value"}`, api.ErrBadInput, "ValueError", "feature 'weight' must be positive"},
		{`{"raise":"key"}`, api.ErrBadInput, "KeyError", "'missing'"},
		{`{"raise":"zero"}`, api.ErrInternal, "ZeroDivisionError", "division by zero"},
		{`{"raise":"exit"}`, api.ErrInternal, "SystemExit", "3"},
		{`{bad json`, api.ErrBadInput, "JSONDecodeError", "Expecting property name"},
	}
	for _, tt := range tests {
		_, err := predictOne(t, mod, tt.in)
		var pe *PythonError
		if !errors.Is(err, tt.sentinel) || !errors.As(err, &pe) || !strings.HasSuffix(pe.Type, tt.typ) || !strings.Contains(pe.Message, tt.msg) {
			t.Errorf("%s: err = %v, want %v with python %s: %s", tt.in, err, tt.sentinel, tt.typ, tt.msg)
			continue
		}
		if !strings.Contains(err.Error(), tt.typ) || !strings.Contains(err.Error(), "raiser@1") {
			t.Errorf("error text %q should name the exception and the model", err)
		}
	}
	// In a batch, a bad row fails alone.
	out, err := mod.Predict(ctxT(t, time.Minute), jsonInputs(`{"n":1}`, `{"raise":"value"}`, `{"n":3}`, `{"raise":"zero"}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(out[0].Payload) != `{"ok":1}` || string(out[2].Payload) != `{"ok":3}` || out[0].Err != nil || out[2].Err != nil {
		t.Errorf("good rows: %+v %+v", out[0], out[2])
	}
	if !errors.Is(out[1].Err, api.ErrBadInput) || !errors.Is(out[3].Err, api.ErrInternal) {
		t.Errorf("bad rows: %v / %v", out[1].Err, out[3].Err)
	}
	// A batch where every row fails fails as a whole.
	if _, err := mod.Predict(ctxT(t, time.Minute), jsonInputs(`{"raise":"value"}`, `{"raise":"value"}`)); !errors.Is(err, api.ErrBadInput) {
		t.Errorf("all rows bad: %v", err)
	}
	if p := pids(s)[0]; p != pid {
		t.Fatalf("worker restarted (%d -> %d): a raising model must not kill it", pid, p)
	}

	// sklearn's own input checks come back as bad_input too.
	rm, rdir := sklearnModel(t, "reg")
	reg := load(t, s, rm, rdir)
	nan, _ := proto.Marshal(&api.Tensor{Dtype: api.DType_DTYPE_FLOAT64, Shape: []int64{5},
		Data: binary.LittleEndian.AppendUint64(make([]byte, 32), math.Float64bits(math.NaN()))})
	_, err = reg.Predict(ctxT(t, time.Minute), []modelhost.Input{{Payload: nan, ContentType: ContentTypeTensor}})
	if !errors.Is(err, api.ErrBadInput) || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("NaN input: %v", err)
	}
}

func TestLoadFailures(t *testing.T) {
	s, _ := newSupervisor(t, func(c *Config) { c.Workers = 1 })
	m, dir := classModel(t, "badload", "BadLoad")
	_, err := s.Load(ctxT(t, time.Minute), m, dir)
	var pe *PythonError
	if !errors.Is(err, api.ErrLoadFailed) || !errors.As(err, &pe) || pe.Type != "FileNotFoundError" || !strings.Contains(err.Error(), "weights.bin") {
		t.Errorf("constructor raising: %v", err)
	}
	rm, _ := sklearnModel(t, "reg")
	_, err = s.Load(ctxT(t, time.Minute), rm, t.TempDir())
	if !errors.Is(err, api.ErrLoadFailed) || !strings.Contains(err.Error(), "model.joblib") {
		t.Errorf("missing file: %v", err)
	}
	for _, bad := range []modelhost.Manifest{
		{ID: "x", Version: "1", Format: "onnx", Entrypoint: "m.onnx"},
		{ID: "x", Version: "1", Entrypoint: "model.bin"},
		{ID: "x", Version: "1", Format: "python-class", Entrypoint: "model.py"},
		{ID: "x", Version: "1", Format: "sklearn-joblib", Entrypoint: "../model.joblib"},
		{ID: "x", Version: "1", Format: "sklearn-joblib", Entrypoint: "/etc/model.joblib"},
	} {
		if err := CheckManifest(&bad); !errors.Is(err, api.ErrBadInput) {
			t.Errorf("CheckManifest(%+v) = %v, want bad_input", bad, err)
		}
		if _, err := s.Load(ctxT(t, time.Minute), &bad, t.TempDir()); !errors.Is(err, api.ErrLoadFailed) {
			t.Errorf("Load(%+v) = %v, want load_failed", bad, err)
		}
	}
	// The worker survived all of it.
	mod := load(t, s, rm, filepath.Join(modelsDir, "reg"))
	if _, err := predictOne(t, mod, `{"features":[1,1,1,1,1]}`); err != nil {
		t.Fatal(err)
	}
	if w := s.Workers(ctxT(t, time.Minute))[0]; w.Restarts != 0 {
		t.Errorf("worker restarted %d times", w.Restarts)
	}
}

func TestMissingPackageReportedClearly(t *testing.T) {
	// A sklearn that cannot be imported, shadowing Debian's.
	shadow := t.TempDir()
	if err := os.MkdirAll(filepath.Join(shadow, "sklearn"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shadow, "sklearn", "__init__.py"),
		[]byte("raise ImportError('No module named sklearn (shadowed by the test)')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, _ := newSupervisor(t, func(c *Config) { c.Workers = 1; c.Env = []string{"PYTHONPATH=" + shadow} })
	m, dir := sklearnModel(t, "reg")
	_, err := s.Load(ctxT(t, time.Minute), m, dir)
	if !errors.Is(err, api.ErrLoadFailed) {
		t.Fatalf("load with sklearn missing: %v", err)
	}
	t.Logf("sklearn shadowed: %v", err)
	for _, want := range []string{"cannot import required packages", "sklearn", "shadowed by the test", "python3-sklearn"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "numpy (") {
		t.Errorf("error blames numpy, which imports: %v", err)
	}
	if err := s.Warm(ctxT(t, time.Minute)); err == nil || !strings.Contains(err.Error(), "sklearn") {
		t.Errorf("Warm: %v", err)
	}

	// An interpreter without numpy at all (the pyenv python3 on PATH here).
	if other := pythonWithout(t, "numpy"); other != "" {
		s2, _ := newSupervisor(t, func(c *Config) { c.Python = other; c.Workers = 1 })
		_, err := s2.Load(ctxT(t, time.Minute), m, dir)
		t.Logf("%s: %v", other, err)
		if !errors.Is(err, api.ErrLoadFailed) || !strings.Contains(err.Error(), "numpy") || !strings.Contains(err.Error(), "MANTA_PYTHON") {
			t.Errorf("interpreter %s without numpy: %v", other, err)
		}
	}
}

// pythonWithout returns a python3 on PATH that cannot import pkg, or "".
func pythonWithout(t *testing.T, pkg string) string {
	for _, c := range []string{"python3", "python"} {
		p, ok := testenv.LookPath(c)
		if !ok || p == testenv.Python(t) {
			continue
		}
		if err := execQuiet(p, "-c", "import "+pkg); err != nil {
			return p
		}
	}
	return ""
}

func TestMemoryFigureMatchesRSSGrowth(t *testing.T) {
	s, _ := newSupervisor(t, func(c *Config) { c.Workers = 1 })
	if err := s.Warm(ctxT(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	pid := pids(s)[0]
	m, dir := sklearnModel(t, "big")
	before := vmRSS(t, pid)
	mod := load(t, s, m, dir)
	growth := vmRSS(t, pid) - before
	got := mod.MemoryBytes()
	t.Logf("RSS growth %d MiB (from /proc), reported %d MiB", growth>>20, got>>20)
	if growth < 10<<20 {
		t.Fatalf("RSS grew only %d bytes: the test model is too small to tell", growth)
	}
	if got < growth/2 || got > growth*2 {
		t.Fatalf("reported %d bytes, RSS grew %d: not within 2x", got, growth)
	}
}

func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		testenv.Missing(t, "no /proc to read the worker's RSS: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

func TestXGBoost(t *testing.T) {
	py := testenv.Python(t)
	if err := execQuiet(py, "-c", "import xgboost"); err != nil {
		testenv.Missing(t, "python3-xgboost is not installed")
	}
	dir := t.TempDir()
	script := `
import sys, numpy as np, xgboost as xgb
rng = np.random.default_rng(0)
X = rng.normal(size=(500, 4)); y = 3 * X[:, 0] - X[:, 1]
b = xgb.train({"max_depth": 3, "nthread": 1}, xgb.DMatrix(X, label=y), num_boost_round=30)
b.save_model(sys.argv[1] + "/model.json")
print(float(b.predict(xgb.DMatrix(np.array([[1.0, 0, 0, 0]])))[0]))
`
	out, err := execOut(py, "-c", script, dir)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	want, _ := strconv.ParseFloat(strings.TrimSpace(out), 64)
	s, _ := newSupervisor(t, func(c *Config) { c.Workers = 1 })
	mod := load(t, s, &modelhost.Manifest{ID: "xgb", Version: "1", Format: "xgboost", Entrypoint: "model.json"}, dir)
	res, err := mod.Predict(ctxT(t, time.Minute), jsonInputs(`{"features":[1,0,0,0]}`, `{"features":[1,0]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := asFloat(t, decodePrediction(t, res[0]).Prediction); math.Abs(got-want) > 1e-5 {
		t.Errorf("prediction %v, want %v", got, want)
	}
	if !errors.Is(res[1].Err, api.ErrBadInput) {
		t.Errorf("2 features for a 4-feature booster: %v", res[1].Err)
	}
}

func TestCloseFailsPendingRequests(t *testing.T) {
	s, _ := newSupervisor(t, func(c *Config) { c.Workers = 1 })
	m, dir := classModel(t, "sleeper", "Sleeper")
	mod := load(t, s, m, dir)
	done := make(chan error, 1)
	go func() {
		_, err := predictOne(t, mod, `{"sleep":60}`)
		done <- err
	}()
	waitFor(t, 30*time.Second, "the request to be in flight", func() bool { return inFlight(s) == 1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, api.ErrInternal) {
		t.Fatalf("in-flight request at close: %v", err)
	}
	if _, err := s.Load(ctxT(t, time.Minute), m, dir); !errors.Is(err, api.ErrInternal) {
		t.Errorf("load after close: %v", err)
	}
}

func TestRegisteredRuntime(t *testing.T) {
	r, ok := modelhost.LookupRuntime(RuntimeName)
	if !ok {
		t.Fatal(`runtime "python" is not registered`)
	}
	if c, ok := r.(modelhost.ManifestChecker); !ok || c.CheckManifest(&modelhost.Manifest{ID: "x", Format: "onnx", Entrypoint: "x"}) == nil {
		t.Error("the registered runtime does not check manifests")
	}
	stderr := &syncBuffer{}
	if err := Configure(Config{Python: testenv.Python(t), Workers: 1, Stderr: stderr}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { CloseDefault() })
	m, dir := sklearnModel(t, "reg")
	mod, err := r.Load(ctxT(t, time.Minute), m, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close()
	out, err := mod.Predict(ctxT(t, time.Minute), jsonInputs(`{"features":[0,0,0,0,0]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := asFloat(t, decodePrediction(t, out[0]).Prediction); math.Abs(got-4) > 1e-6 {
		t.Fatalf("prediction %v, want 4", got)
	}
	if err := Configure(Config{}); err == nil {
		t.Error("Configure after start: no error")
	}
}

func execQuiet(name string, args ...string) error {
	_, err := execOut(name, args...)
	return err
}

func execOut(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPythonClassVariants(t *testing.T) {
	s, _ := newSupervisor(t, func(c *Config) { c.Workers = 1 })
	m, dir := classModel(t, "featuresum", "FeatureSum")
	fs := load(t, s, m, dir)
	out, err := fs.Predict(ctxT(t, time.Minute), jsonInputs(`{"features":[1,2,3.5]}`, `{"features":[1,2]}`, `{"features":[0,0,-1]}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(out[0].Payload) != `{"prediction":6.5}` || !errors.Is(out[1].Err, api.ErrBadInput) || string(out[2].Payload) != `{"prediction":-1}` {
		t.Errorf("features class: %s / %v / %s", out[0].Payload, out[1].Err, out[2].Payload)
	}

	m, dir = classModel(t, "rowerrors", "RowErrors")
	re := load(t, s, m, dir)
	out, err = re.Predict(ctxT(t, time.Minute), jsonInputs(`{"n":2}`, `{"n":-1}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(out[0].Payload) != `{"v":2.0,"a":[0,1]}` || out[0].Err != nil {
		t.Errorf("row 0: %s %v", out[0].Payload, out[0].Err)
	}
	var pe *PythonError
	if !errors.Is(out[1].Err, api.ErrBadInput) || !errors.As(out[1].Err, &pe) || pe.Type != "ValueError" {
		t.Errorf("row 1: %v", out[1].Err)
	}
}

func TestLoadRetriedWhenAnotherRequestKillsTheWorker(t *testing.T) {
	s, _ := newSupervisor(t, func(c *Config) { c.Workers = 1; c.CallTimeout = 2 * time.Second })
	sm, sdir := classModel(t, "sleeper", "Sleeper")
	sleeper := load(t, s, sm, sdir)
	stuck := make(chan error, 1)
	go func() {
		_, err := predictOne(t, sleeper, `{"sleep":60}`)
		stuck <- err
	}()
	waitFor(t, 30*time.Second, "the slow request", func() bool { return inFlight(s) == 1 })
	// This load queues behind the stuck request, whose worker is killed.
	rm, rdir := sklearnModel(t, "reg")
	reg := load(t, s, rm, rdir)
	if err := <-stuck; !errors.Is(err, api.ErrInternal) {
		t.Fatalf("stuck request: %v", err)
	}
	if _, err := reg.Predict(ctxT(t, time.Minute), jsonInputs(`{"features":[0,0,0,0,0]}`)); err != nil {
		t.Fatal(err)
	}
}

// TestPredictsDuringCrashesNeverHang keeps several models busy from many
// goroutines while their workers are killed: every call returns, with a
// result or an internal error, and the models serve again afterwards.
func TestPredictsDuringCrashesNeverHang(t *testing.T) {
	s, _ := newSupervisor(t, func(c *Config) { c.Workers = 2; c.RestartBackoff = 10 * time.Millisecond })
	names := []string{"reg0", "reg1", "reg2", "reg3"}
	sklearnModels(t, names...)
	var mods []modelhost.Model
	for _, n := range names {
		m, dir := sklearnModel(t, n)
		mods = append(mods, load(t, s, m, dir))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				_, err := mods[(g+i)%len(mods)].Predict(ctx, jsonInputs(`{"features":[1,2,3]}`, `{"features":[3,2,1]}`))
				cancel()
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, api.ErrInternal):
					failed.Add(1)
				default:
					t.Errorf("predict during crashes: %v", err)
					return
				}
			}
		}()
	}
	for round := 0; round < 3; round++ {
		before := ok.Load()
		waitFor(t, time.Minute, "predictions to flow", func() bool { return ok.Load() > before+20 })
		for _, pid := range pids(s) {
			if pid != 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	before := ok.Load()
	waitFor(t, time.Minute, "predictions after the last restart", func() bool { return ok.Load() > before+20 })
	close(stop)
	wg.Wait()
	t.Logf("%d predictions served, %d failed with internal during 3 rounds of kills", ok.Load(), failed.Load())
}
