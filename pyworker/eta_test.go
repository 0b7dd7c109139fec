package pyworker

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
)

// TestETAExample trains a few lanes with examples/eta/train.py's sklearn
// path (--model sklearn: its default is native XGBoost when xgboost is
// installed, served by modelhost/trees) and serves them through the
// worker.
func TestETAExample(t *testing.T) {
	py := testenv.Python(t)
	out := t.TempDir()
	cmd := exec.Command(py, filepath.Join("..", "examples", "eta", "train.py"), "--out", out, "--lanes", "4", "--samples", "200", "--trees", "20", "--model", "sklearn")
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("train.py: %v\n%s", err, b)
	}
	var index struct {
		Features []string `json:"features"`
		Lanes    []struct {
			ID           string          `json:"id"`
			Example      json.RawMessage `json:"example"`
			ExampleHours float64         `json:"example_hours"`
		} `json:"lanes"`
	}
	b, err := os.ReadFile(filepath.Join(out, "lanes.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Lanes) != 4 || len(index.Features) != 8 {
		t.Fatalf("lanes.json: %s", b)
	}
	s, _ := newSupervisor(t)
	for _, lane := range index.Lanes {
		dir := filepath.Join(out, lane.ID)
		m := readManifest(t, dir)
		if m.ID != lane.ID || m.Runtime != RuntimeName || m.Quality == nil || m.Batch.MaxSize != 64 {
			t.Errorf("manifest of %s: %+v", lane.ID, m)
		}
		if err := CheckManifest(m); err != nil {
			t.Error(err)
		}
		mod := load(t, s, m, dir)
		res, err := mod.Predict(ctxT(t, time.Minute), []modelhost.Input{{Payload: lane.Example}, {Payload: []byte(`{"features":[100,1]}`)}})
		if err != nil {
			t.Fatal(err)
		}
		got := asFloat(t, decodePrediction(t, res[0]).Prediction)
		if math.Abs(got-lane.ExampleHours) > 0.5*lane.ExampleHours {
			t.Errorf("%s: predicted %.1f h, simulated %.1f h", lane.ID, got, lane.ExampleHours)
		}
		if res[1].Err == nil {
			t.Errorf("%s: 2 features accepted", lane.ID)
		}
	}
}
