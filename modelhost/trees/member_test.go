package trees_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/modelhost/trees"
)

// pushDir writes a model directory (manifest and files) and pushes it into
// store as the model's next version.
func pushDir(t *testing.T, store modelhost.Store, files map[string]string) (*modelhost.Manifest, error) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return modelhost.Push(context.Background(), store, dir, modelhost.PushOptions{})
}

// TestPush checks `manta models push` for both runtimes: the model is
// loaded once at push; a file that does not parse is bad_input naming the
// file and the parser's message and leaves no version; memory_bytes is the
// loaded model's unless the manifest sets it.
func TestPush(t *testing.T) {
	ctx := context.Background()
	store, err := modelhost.OpenStore(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		runtime, file, good, bad, parserSays string
		parse                                func([]byte) (*trees.Model, error)
	}{
		{"xgboost", "model.json", xgSmall, strings.Replace(xgSmall, `"split_indices":[0,0,0]`, `"split_indices":[5,0,0]`, 1), "split index 5", trees.ParseXGBoost},
		{"lightgbm", "model.txt", lgRegression, strings.Replace(lgRegression, "num_leaves=3", "num_leaves=x", 1), "num_leaves=x", trees.ParseLightGBM},
	} {
		t.Run(tc.runtime, func(t *testing.T) {
			id := "push-" + tc.runtime
			manifest := `{"id":"` + id + `","runtime":"` + tc.runtime + `","entrypoint":"` + tc.file + `"}`
			_, err := pushDir(t, store, map[string]string{"manifest.json": manifest, tc.file: tc.bad})
			if !errors.Is(err, api.ErrBadInput) || !strings.Contains(err.Error(), tc.file+": ") || !strings.Contains(err.Error(), tc.parserSays) {
				t.Fatalf("push of a bad file: %v; want bad_input naming %s and %q", err, tc.file, tc.parserSays)
			}
			if _, err := store.Versions(ctx, id); !errors.Is(err, api.ErrNotFound) {
				t.Fatalf("a refused push left a version: %v", err)
			}
			m, err := pushDir(t, store, map[string]string{"manifest.json": manifest, tc.file: tc.good})
			if err != nil {
				t.Fatal(err)
			}
			loaded, err := tc.parse([]byte(tc.good))
			if err != nil {
				t.Fatal(err)
			}
			if m.MemoryBytes != loaded.MemoryBytes() || m.MemoryBytes <= 0 {
				t.Fatalf("memory_bytes %d, the loaded model holds %d", m.MemoryBytes, loaded.MemoryBytes())
			}
			if stored, err := store.Manifest(ctx, id, m.Version); err != nil || stored.MemoryBytes != m.MemoryBytes {
				t.Fatalf("stored manifest %+v %v", stored, err)
			}
			// The OIP metadata's options: the row width, and probabilities
			// for classifiers.
			if m.Options["n_features"] != strconv.Itoa(loaded.NumFeatures()) || (m.Options["predict_proba"] == "true") != (loaded.Kind() != trees.Regressor) {
				t.Fatalf("options %v for a %v of %d features", m.Options, loaded.Kind(), loaded.NumFeatures())
			}
			set := strings.Replace(manifest, `"entrypoint"`, `"memory_bytes":777,"entrypoint"`, 1)
			if m, err := pushDir(t, store, map[string]string{"manifest.json": set, tc.file: tc.good}); err != nil || m.MemoryBytes != 777 {
				t.Fatalf("push with memory_bytes set: %+v %v", m, err)
			}
			wrong := strings.Replace(manifest, `"entrypoint"`, `"format":"onnx","entrypoint"`, 1)
			if _, err := pushDir(t, store, map[string]string{"manifest.json": wrong, tc.file: tc.good}); !errors.Is(err, api.ErrBadInput) || !strings.Contains(err.Error(), `format "onnx"`) {
				t.Fatalf("push with another format: %v", err)
			}
		})
	}
}

// TestMember serves both runtimes on a real embedded member (manta.Start
// over a directory store): SDK predictions, a wrong feature count as
// bad_input naming expected and given, the answers over HTTP /v1 and the
// Open Inference Protocol's /v2, and the cache accounting the model's
// loaded size.
func TestMember(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	store, err := modelhost.OpenStore(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pushDir(t, store, map[string]string{"manifest.json": `{"id":"xgb-small","runtime":"xgboost","entrypoint":"model.json","batch":{"max_size":64,"max_wait_ms":1}}`, "model.json": xgSmall}); err != nil {
		t.Fatal(err)
	}
	if _, err := pushDir(t, store, map[string]string{"manifest.json": `{"id":"lgb-reg","runtime":"lightgbm","entrypoint":"model.txt"}`, "model.txt": lgRegression}); err != nil {
		t.Fatal(err)
	}
	cfg := manta.DefaultConfig()
	cfg.Store = root
	cfg.BudgetBytes = 64 << 20
	cfg.FetchDir = t.TempDir()
	cfg.Cluster = cluster.DefaultConfig()
	cfg.HTTPAddr = "127.0.0.1:0"
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := manta.Start(sctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})

	// Many requests at once: the actor batches them; each answer is its row's.
	rows := [][]float64{{0.1, 1}, {0.9, 1}, {math.NaN(), 0}}
	var refs []*manta.Ref
	for i := 0; i < 60; i++ {
		refs = append(refs, c.Model("xgb-small").Predict(ctx, row(rows[i%3])))
	}
	res, err := manta.GetAll(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		var a answer
		if err := json.Unmarshal(r.Output, &a); err != nil || a.Prediction == nil || len(a.Probabilities) != 2 {
			t.Fatalf("answer %d: %s %v", i, r.Output, err)
		}
		margin := -0.4
		if rows[i%3][0] >= 0.5 {
			margin = 0.3
		}
		if p := sigmoid(margin); math.Abs(a.Probabilities[1]-p) > 1e-6 || r.Version != "1" {
			t.Fatalf("row %v: %s version %s, want P(1) %v", rows[i%3], r.Output, r.Version, p)
		}
	}
	lg, err := c.Model("lgb-reg").Predict(ctx, []byte(`{"features":[7,null,-2]}`)).Get(ctx)
	if err != nil || string(lg.Output) != `{"prediction":-0.25}` {
		t.Fatalf("lightgbm: %+v %v", lg, err)
	}

	_, err = c.Model("xgb-small").Predict(ctx, []byte(`{"features":[1,2,3]}`)).Get(ctx)
	if !errors.Is(err, manta.ErrBadInput) || !strings.Contains(err.Error(), "got 3 values, want 2") {
		t.Fatalf("3 features for 2: %v", err)
	}

	// The cache accounts each model at its loaded size, the number push
	// wrote to memory_bytes.
	var want int64
	for _, mb := range []func() (*trees.Model, error){
		func() (*trees.Model, error) { return trees.ParseXGBoost([]byte(xgSmall)) },
		func() (*trees.Model, error) { return trees.ParseLightGBM([]byte(lgRegression)) },
	} {
		m, err := mb()
		if err != nil {
			t.Fatal(err)
		}
		want += m.MemoryBytes()
	}
	if st := c.Cache().Stats(); st.Used != want || st.Models != 2 {
		t.Fatalf("cache holds %d bytes in %d models, want the two tree models' %d", st.Used, st.Models, want)
	}

	base := "http://" + c.HTTPAddr()
	status, body := post(t, base+"/v1/models/xgb-small/predict", `{"features":[0.9,1]}`)
	if status != 200 || !strings.Contains(body, `"output":{"prediction":1,"probabilities":[`) {
		t.Fatalf("/v1: %d %s", status, body)
	}
	status, body = post(t, base+"/v1/models/lgb-reg/predict", `{"features":[1,1]}`)
	if status != 400 || !strings.Contains(body, "bad_input") || !strings.Contains(body, "got 2 values, want 3") {
		t.Fatalf("/v1 with 2 features for 3: %d %s", status, body)
	}
	// OIP: two rows in one tensor; prediction and probabilities come back
	// as tensors of two rows.
	status, body = post(t, base+"/v2/models/xgb-small/infer",
		`{"inputs":[{"name":"features","shape":[2,2],"datatype":"FP64","data":[0.1,1,0.9,1]}]}`)
	var inf struct {
		Outputs []struct {
			Name  string    `json:"name"`
			Shape []int     `json:"shape"`
			Data  []float64 `json:"data"`
		} `json:"outputs"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &inf) != nil || len(inf.Outputs) != 2 {
		t.Fatalf("/v2 infer: %d %s", status, body)
	}
	pred, probs := inf.Outputs[0], inf.Outputs[1]
	if pred.Name != "prediction" || len(pred.Data) != 2 || pred.Data[0] != 0 || pred.Data[1] != 1 ||
		probs.Name != "probabilities" || len(probs.Shape) != 2 || probs.Shape[0] != 2 || probs.Shape[1] != 2 ||
		math.Abs(probs.Data[3]-sigmoid(0.3)) > 1e-6 {
		t.Fatalf("/v2 infer outputs: %s", body)
	}
	var md struct {
		Inputs []struct {
			Shape []int `json:"shape"`
		} `json:"inputs"`
		Outputs []struct {
			Name string `json:"name"`
		} `json:"outputs"`
	}
	if status, body := get(t, base+"/v2/models/xgb-small"); status != 200 || json.Unmarshal([]byte(body), &md) != nil ||
		len(md.Inputs) != 1 || len(md.Inputs[0].Shape) != 2 || md.Inputs[0].Shape[1] != 2 || len(md.Outputs) != 2 || md.Outputs[1].Name != "probabilities" {
		t.Fatalf("/v2 metadata: %d %s", status, body)
	}
	status, body = post(t, base+"/v2/models/lgb-reg/infer", `{"inputs":[{"name":"features","shape":[1,2],"datatype":"FP64","data":[1,2]}]}`)
	if status != 400 || !strings.Contains(body, "got 2 values, want 3") {
		t.Fatalf("/v2 infer with 2 features for 3: %d %s", status, body)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
