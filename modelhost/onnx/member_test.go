package onnx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/modelhost"
	pb "github.com/manta-ml/manta/modelhost/onnx/internal/onnxpb"
)

// pushDir writes a model directory (manifest and files) and pushes it into
// store as the model's next version.
func pushDir(t *testing.T, store modelhost.Store, files map[string][]byte) (*modelhost.Manifest, error) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return modelhost.Push(context.Background(), store, dir, modelhost.PushOptions{})
}

// TestPush: `manta models push` loads an ONNX model once. A file that does
// not parse, or has an unsupported operator, is bad_input naming the file
// and the reason, and leaves no version; memory_bytes is the loaded
// model's unless the manifest sets it.
func TestPush(t *testing.T) {
	ctx := context.Background()
	store, err := modelhost.OpenStore(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	manifest := []byte(`{"id":"push-onnx","runtime":"onnx","entrypoint":"model.onnx"}`)
	good := linear2(pb.TensorProto_FLOAT).bytes(t)
	for _, bad := range []struct {
		file []byte
		says string
	}{
		{[]byte("not a model"), "not an ONNX model: proto:"},
		{newTestModel(pb.TensorProto_FLOAT, "N", 2).node("Conv", []string{"x"}, "y").output("y").bytes(t), "unsupported operator Conv"},
	} {
		_, err := pushDir(t, store, map[string][]byte{"manifest.json": manifest, "model.onnx": bad.file})
		if !errors.Is(err, api.ErrBadInput) || !strings.Contains(err.Error(), "model.onnx: ") || !strings.Contains(err.Error(), bad.says) {
			t.Fatalf("push of a bad file: %v; want bad_input naming model.onnx and %q", err, bad.says)
		}
	}
	if _, err := store.Versions(ctx, "push-onnx"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("a refused push left a version: %v", err)
	}
	m, err := pushDir(t, store, map[string][]byte{"manifest.json": manifest, "model.onnx": good})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Parse(good, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.MemoryBytes != loaded.MemoryBytes() || m.MemoryBytes <= 0 {
		t.Fatalf("memory_bytes %d, the loaded model holds %d", m.MemoryBytes, loaded.MemoryBytes())
	}
	if stored, err := store.Manifest(ctx, "push-onnx", m.Version); err != nil || stored.MemoryBytes != m.MemoryBytes {
		t.Fatalf("stored manifest %+v %v", stored, err)
	}
	set := []byte(`{"id":"push-onnx","runtime":"onnx","entrypoint":"model.onnx","memory_bytes":777}`)
	if m, err := pushDir(t, store, map[string][]byte{"manifest.json": set, "model.onnx": good}); err != nil || m.MemoryBytes != 777 {
		t.Fatalf("push with memory_bytes set: %+v %v", m, err)
	}
	wrong := []byte(`{"id":"push-onnx","runtime":"onnx","format":"xgboost-json","entrypoint":"model.onnx"}`)
	if _, err := pushDir(t, store, map[string][]byte{"manifest.json": wrong, "model.onnx": good}); !errors.Is(err, api.ErrBadInput) || !strings.Contains(err.Error(), `format "xgboost-json"`) {
		t.Fatalf("push with another format: %v", err)
	}
}

// TestMember serves ONNX models on a real embedded member (manta.Start
// over a directory store): concurrent SDK predictions batched by the
// actor, each answered with its own row; a wrong feature count as
// bad_input naming expected and given; the answers over HTTP /v1 and the
// Open Inference Protocol's /v2; the cache accounting the loaded size; and
// an unsupported operator as load_failed naming it.
func TestMember(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	store, err := modelhost.OpenStore(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	// y = sigmoid(0.5·x0 + 2·x1 + 1), float64.
	logistic := linear2(pb.TensorProto_DOUBLE)
	logistic.m.Graph.Node = append(logistic.m.Graph.Node, &pb.NodeProto{OpType: proto.String("Sigmoid"), Input: []string{"y"}, Output: []string{"p"}})
	logistic.m.Graph.Output[0].Name = proto.String("p")
	if _, err := pushDir(t, store, map[string][]byte{
		"manifest.json": []byte(`{"id":"onnx-logistic","runtime":"onnx","entrypoint":"model.onnx","batch":{"max_size":64,"max_wait_ms":1}}`),
		"model.onnx":    logistic.bytes(t),
	}); err != nil {
		t.Fatal(err)
	}
	// Softmax over two logits: an array per row, float32.
	softmax := newTestModel(pb.TensorProto_FLOAT, "N", 2).floats("W", []int64{2, 2}, 1, 0, 0, 1).
		node("MatMul", []string{"x", "W"}, "z").node("Softmax", []string{"z"}, "probs", attrInt("axis", 1)).output("probs")
	if _, err := pushDir(t, store, map[string][]byte{
		"manifest.json": []byte(`{"id":"onnx-softmax","runtime":"onnx","entrypoint":"model.onnx"}`),
		"model.onnx":    softmax.bytes(t),
	}); err != nil {
		t.Fatal(err)
	}
	// A model whose file became unsupported after push (written directly
	// into the store, as an older Manta or another tool might have).
	unsupported := newTestModel(pb.TensorProto_FLOAT, "N", 2).node("Conv", []string{"x"}, "y").output("y").bytes(t)
	dir := filepath.Join(root, "onnx-conv", "1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), unsupported, 0o644); err != nil {
		t.Fatal(err)
	}
	mf, err := modelhost.EncodeManifest(&modelhost.Manifest{ID: "onnx-conv", Version: "1", Runtime: "onnx", Entrypoint: "model.onnx",
		Files: []modelhost.File{{Path: "model.onnx", Size: int64(len(unsupported)), SHA256: sha256hex(unsupported)}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, modelhost.ManifestName), mf, 0o644); err != nil {
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

	rows := [][]float64{{3, 4}, {-2, 0}, {0.5, -1}}
	var refs []*manta.Ref
	for i := range 90 {
		refs = append(refs, c.Model("onnx-logistic").Predict(ctx, []byte(row(rows[i%3]))))
	}
	res, err := manta.GetAll(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	batched := false
	for i, r := range res {
		var a struct{ Prediction float64 }
		if err := json.Unmarshal(r.Output, &a); err != nil {
			t.Fatalf("answer %d: %s %v", i, r.Output, err)
		}
		x := rows[i%3]
		if want := 1 / (1 + math.Exp(-(0.5*x[0] + 2*x[1] + 1))); math.Abs(a.Prediction-want) > 1e-15 || r.Version != "1" {
			t.Fatalf("row %v: %s version %s, want %v", x, r.Output, r.Version, want)
		}
		batched = batched || r.BatchSize > 1
	}
	if !batched {
		t.Log("no batch of more than one request formed (the actor was never busy)")
	}
	sm, err := c.Model("onnx-softmax").Predict(ctx, []byte(`{"features":[0,0]}`)).Get(ctx)
	if err != nil || string(sm.Output) != `{"prediction":[0.5,0.5]}` {
		t.Fatalf("softmax: %+v %v", sm, err)
	}
	_, err = c.Model("onnx-logistic").Predict(ctx, []byte(`{"features":[1,2,3]}`)).Get(ctx)
	if !errors.Is(err, manta.ErrBadInput) || !strings.Contains(err.Error(), "got 3 values, want 2") {
		t.Fatalf("3 features for 2: %v", err)
	}
	_, err = c.Model("onnx-conv").Predict(ctx, []byte(`{"features":[1,2]}`)).Get(ctx)
	if !errors.Is(err, manta.ErrLoadFailed) || !strings.Contains(err.Error(), "unsupported operator Conv") {
		t.Fatalf("a Conv model: %v; want load_failed naming Conv", err)
	}

	// The cache accounts each model at its loaded size.
	want, err := Parse(logistic.bytes(t), "", 64)
	if err != nil {
		t.Fatal(err)
	}
	if st := c.Cache().Stats(); st.Used < want.MemoryBytes() || st.Used > 64<<10 {
		t.Fatalf("cache holds %d bytes for two tiny ONNX models (the logistic one alone %d)", st.Used, want.MemoryBytes())
	}

	base := "http://" + c.HTTPAddr()
	status, body := post(t, base+"/v1/models/onnx-logistic/predict", `{"features":[0,0]}`)
	if status != 200 || !strings.Contains(body, `"output":{"prediction":0.7310585786300049}`) {
		t.Fatalf("/v1: %d %s", status, body)
	}
	status, body = post(t, base+"/v1/models/onnx-softmax/predict", `{"features":[1]}`)
	if status != 400 || !strings.Contains(body, "bad_input") || !strings.Contains(body, "got 1 values, want 2") {
		t.Fatalf("/v1 with 1 feature for 2: %d %s", status, body)
	}
	// OIP: two rows in one tensor; predictions come back as two rows.
	status, body = post(t, base+"/v2/models/onnx-softmax/infer",
		`{"inputs":[{"name":"features","shape":[2,2],"datatype":"FP32","data":[0,0,0,100]}]}`)
	var inf struct {
		Outputs []struct {
			Name  string    `json:"name"`
			Shape []int     `json:"shape"`
			Data  []float64 `json:"data"`
		} `json:"outputs"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &inf) != nil || len(inf.Outputs) != 1 {
		t.Fatalf("/v2 infer: %d %s", status, body)
	}
	if o := inf.Outputs[0]; o.Name != "prediction" || len(o.Shape) != 2 || o.Shape[0] != 2 || o.Shape[1] != 2 ||
		o.Data[0] != 0.5 || o.Data[1] != 0.5 || o.Data[3] != 1 {
		t.Fatalf("/v2 infer outputs: %s", body)
	}
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

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
