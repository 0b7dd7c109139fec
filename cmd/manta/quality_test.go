package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/modelhost"
)

// TestQualityCommand: `manta quality MODEL` prints the model's joined
// labels, measures and drift per version; a model with no labels says
// how to start; a missing model fails with not_found.
func TestQualityCommand(t *testing.T) {
	root := t.TempDir()
	if err := modelgen.Write(root, modelhost.Manifest{ID: "lin", Version: "1", Runtime: "linear", Format: "linear-json",
		Entrypoint: "model.json", MemoryBytes: 4096, Monitor: true},
		map[string][]byte{"model.json": modelgen.LinearJSON([]float64{1}, 0, "identity")}); err != nil {
		t.Fatal(err)
	}
	if err := modelgen.Linear(root, "quiet", "1", []float64{1}, 0, "identity"); err != nil {
		t.Fatal(err)
	}
	cfg := manta.DefaultConfig()
	cfg.Store, cfg.BudgetBytes, cfg.FetchDir, cfg.HTTPAddr = root, 64<<20, t.TempDir(), "127.0.0.1:0"
	cfg.Cluster = cluster.DefaultConfig()
	cfg.Quality.ReferenceRows = 10
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := manta.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	labels := []manta.Label{}
	for i := range 20 {
		id := fmt.Sprint("r", i)
		if _, err := c.Model("lin").Predict(ctx, []byte(fmt.Sprintf(`{"features":[%d]}`, i)), manta.WithRequestID(id)).Get(ctx); err != nil {
			t.Fatal(err)
		}
		labels = append(labels, manta.Label{RequestID: id, Value: float64(i) + 0.5})
	}
	if _, err := c.Feedback(ctx, "lin", append(labels, manta.Label{RequestID: "nope", Value: 1})); err != nil {
		t.Fatal(err)
	}
	addr := c.HTTPAddr()
	code, out, errOut := runCLI("quality", "--addr", addr, "lin")
	if code != exitOK {
		t.Fatalf("quality: %d %s %s", code, out, errOut)
	}
	for _, want := range []string{"lin: unknown ids 1", "VERSION", "mae=0.5 rmse=0.5", "requests (10 rows; 10 live)", "feature PSI"} {
		if !strings.Contains(out, want) {
			t.Errorf("quality output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI("quality", "--addr", addr, "--json", "lin")
	if code != exitOK || !strings.Contains(out, `"measures":{"mae":0.5,"rmse":0.5}`) {
		t.Errorf("quality --json: %d %s", code, out)
	}
	code, out, _ = runCLI("quality", "--addr", addr, "quiet")
	if code != exitOK || !strings.Contains(out, "keeps no predictions yet") {
		t.Errorf("quality of an unmonitored model: %d %s", code, out)
	}
	code, _, errOut = runCLI("quality", "--addr", addr, "no-such")
	if code != exitFail || !strings.Contains(errOut, "not_found") {
		t.Errorf("quality of a missing model: %d %s", code, errOut)
	}
	if code, _, _ := runCLI("quality", "--addr", addr); code != exitUsage {
		t.Errorf("quality without MODEL: exit %d", code)
	}
}
