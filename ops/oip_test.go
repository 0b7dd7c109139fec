package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/ops"
)

// The Open Inference Protocol's documented bodies. inferExample and
// inferExampleResponse are the REST example of the protocol's
// specification (KServe "V2 inference protocol", "Inference Request
// Examples"); irisExample is KServe's sklearn v2 example (an iris
// classifier taking [2, 4] FP32 with nested data).
const (
	inferExample = `{
  "id" : "42",
  "inputs" : [
    {
      "name" : "input0",
      "shape" : [ 2, 2 ],
      "datatype" : "UINT32",
      "data" : [ 1, 2, 3, 4 ]
    },
    {
      "name" : "input1",
      "shape" : [ 3 ],
      "datatype" : "BOOL",
      "data" : [ true ]
    }
  ],
  "outputs" : [
    {
      "name" : "output0"
    }
  ]
}`
	inferExampleResponse = `{
  "id" : "42",
  "outputs" : [
    {
      "name" : "output0",
      "shape" : [ 3, 2 ],
      "datatype"  : "FP32",
      "data" : [ 1.0, 1.1, 2.0, 2.1, 3.0, 3.1 ]
    }
  ]
}`
	irisExample = `{
  "inputs": [
    {
      "name": "input-0",
      "shape": [2, 4],
      "datatype": "FP32",
      "data": [
        [6.8, 2.8, 4.8, 1.4],
        [6.0, 3.4, 4.5, 1.6]
      ]
    }
  ]
}`
)

var irisWeights = []float64{0.25, -0.5, 0.75, 1.5}

func irisEnv(t *testing.T) *env {
	return newEnv(t, func(root string) {
		linear(t, root, "iris", "1", []float64{1, 1, 1, 1}, 0)
		linear(t, root, "iris", "2", irisWeights, 0.125)
		linear(t, root, "lin3", "1", []float64{1, 2, 3}, -1)
	})
}

// errorBody checks the protocol's error shape: a JSON object with exactly
// one key, "error", holding a non-empty string.
func errorBody(t *testing.T, body []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	msg, ok := m["error"].(string)
	if len(m) != 1 || !ok || msg == "" {
		t.Fatalf("error body %s: want {\"error\": \"...\"}", body)
	}
	return msg
}

func TestOIPHealthAndServerMetadata(t *testing.T) {
	e := irisEnv(t)
	var live, ready map[string]bool
	e.getJSON(t, "/v2/health/live", &live)
	e.getJSON(t, "/v2/health/ready", &ready)
	if !live["live"] || !ready["ready"] {
		t.Fatalf("live %v ready %v", live, ready)
	}
	var meta struct {
		Name       string   `json:"name"`
		Version    string   `json:"version"`
		Extensions []string `json:"extensions"`
	}
	e.getJSON(t, "/v2", &meta)
	if meta.Name != "manta" || meta.Version == "" || meta.Extensions == nil {
		t.Fatalf("server metadata %+v", meta)
	}
}

func TestOIPReadyFailsWhenStoreGone(t *testing.T) {
	e := irisEnv(t)
	if err := os.RemoveAll(e.root); err != nil {
		t.Fatal(err)
	}
	status, body := e.do(t, http.MethodGet, "/v2/health/ready", "")
	var r map[string]any
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if status != http.StatusServiceUnavailable || r["ready"] != false || r["error"] == "" {
		t.Fatalf("ready with the store gone: %d %s", status, body)
	}
	// Liveness does not depend on the store.
	if status, _ := e.do(t, http.MethodGet, "/v2/health/live", ""); status != http.StatusOK {
		t.Fatalf("live: %d", status)
	}
}

func TestOIPModelMetadata(t *testing.T) {
	e := irisEnv(t)
	var md ops.ModelMetadata
	e.getJSON(t, "/v2/models/iris", &md)
	if md.Name != "iris" || strings.Join(md.Versions, ",") != "1,2" || md.Platform != "linear-json" {
		t.Fatalf("metadata %+v", md)
	}
	if len(md.Inputs) != 1 || md.Inputs[0].Name != "features" || md.Inputs[0].Datatype != "FP64" ||
		len(md.Inputs[0].Shape) != 2 || md.Inputs[0].Shape[0] != -1 {
		t.Fatalf("inputs %+v", md.Inputs)
	}
	if len(md.Outputs) != 1 || md.Outputs[0].Name != "prediction" {
		t.Fatalf("outputs %+v", md.Outputs)
	}
	if md.Parameters["version"] != "2" {
		t.Fatalf("served version %v, want 2 (the highest)", md.Parameters["version"])
	}
	e.getJSON(t, "/v2/models/iris/versions/1", &md)
	if md.Parameters["version"] != "1" {
		t.Fatalf("version 1 metadata names version %v", md.Parameters["version"])
	}
	var ready map[string]any
	e.getJSON(t, "/v2/models/iris/ready", &ready)
	if ready["ready"] != true || ready["name"] != "iris" {
		t.Fatalf("model ready %v", ready)
	}
	for _, path := range []string{"/v2/models/nope", "/v2/models/iris/versions/7", "/v2/models/Bad..Id",
		"/v2/models/nope/ready", "/v2/models/iris/versions/x/ready", "/v2/nothing/here"} {
		status, body := e.do(t, http.MethodGet, path, "")
		if status != http.StatusNotFound {
			t.Errorf("GET %s: %d %s, want 404", path, status, body)
			continue
		}
		errorBody(t, body)
	}
}

// TestOIPInferMatchesSDK: the protocol's documented iris body, as-is,
// gives the same predictions as the SDK for the same rows.
func TestOIPInferMatchesSDK(t *testing.T) {
	e := irisEnv(t)
	status, body := e.do(t, http.MethodPost, "/v2/models/iris/infer", irisExample)
	if status != http.StatusOK {
		t.Fatalf("infer: %d %s", status, body)
	}
	var res ops.InferResponse
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if res.ModelName != "iris" || res.ModelVersion != "2" || len(res.Outputs) != 1 {
		t.Fatalf("response %s", body)
	}
	out := res.Outputs[0]
	if out.Name != "prediction" || out.Datatype != "FP64" || len(out.Shape) != 1 || out.Shape[0] != 2 || len(out.Data) != 2 {
		t.Fatalf("output %+v", out)
	}
	for i, row := range []string{"[6.8,2.8,4.8,1.4]", "[6.0,3.4,4.5,1.6]"} {
		want, version := e.predict(t, "iris", row)
		if got := out.Data[i].(float64); got != want || version != "2" {
			t.Errorf("row %d: OIP %v, SDK %v (version %s)", i, got, want, version)
		}
	}

	// One row, shape [n], FP64, flat: output shape [1]; the request id
	// comes back.
	status, body = e.do(t, http.MethodPost, "/v2/models/lin3/infer",
		`{"id":"r-1","inputs":[{"name":"features","shape":[3],"datatype":"FP64","data":[0.5,1.5,2.5]}]}`)
	if status != http.StatusOK {
		t.Fatalf("infer: %d %s", status, body)
	}
	res = ops.InferResponse{}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	want, _ := e.predict(t, "lin3", "[0.5,1.5,2.5]")
	if res.ID != "r-1" || len(res.Outputs) != 1 || res.Outputs[0].Shape[0] != 1 || res.Outputs[0].Data[0].(float64) != want {
		t.Fatalf("single row: %s (want prediction %v)", body, want)
	}

	// A pinned version that the actor serves.
	status, body = e.do(t, http.MethodPost, "/v2/models/iris/versions/2/infer", irisExample)
	if status != http.StatusOK {
		t.Fatalf("infer version 2: %d %s", status, body)
	}
	// Asking for the prediction output only gives just that.
	status, body = e.do(t, http.MethodPost, "/v2/models/lin3/infer",
		`{"inputs":[{"name":"features","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}],"outputs":[{"name":"prediction"}]}`)
	if status != http.StatusOK || !strings.Contains(string(body), `"data":[13,31]`) {
		t.Fatalf("requested output: %d %s", status, body)
	}
}

// TestOIPErrors: every failure answers the protocol's error shape with the
// status of the error's code.
func TestOIPErrors(t *testing.T) {
	e := irisEnv(t)
	cases := []struct {
		name, path, body string
		status           int
		contains         string
	}{
		// The specification's example asks for inputs this model does not
		// have: a bad request, in the protocol's error shape.
		{"spec example", "/v2/models/iris/infer", inferExample, 400, "features"},
		{"response body as request", "/v2/models/iris/infer", inferExampleResponse, 400, "no inputs"},
		{"not json", "/v2/models/iris/infer", `{"inputs": [`, 400, "invalid inference request"},
		{"wrong feature count", "/v2/models/iris/infer",
			`{"inputs":[{"name":"features","shape":[1,3],"datatype":"FP64","data":[1,2,3]}]}`, 400, "bad_input"},
		{"shape and data disagree", "/v2/models/iris/infer",
			`{"inputs":[{"name":"features","shape":[2,4],"datatype":"FP64","data":[1,2,3]}]}`, 400, "elements"},
		{"too much data", "/v2/models/iris/infer",
			`{"inputs":[{"name":"features","shape":[1,2],"datatype":"FP64","data":[1,2,3]}]}`, 400, "more elements"},
		{"bytes", "/v2/models/iris/infer",
			`{"inputs":[{"name":"features","shape":[1],"datatype":"BYTES","data":["a"]}]}`, 400, "BYTES"},
		{"strings as numbers", "/v2/models/iris/infer",
			`{"inputs":[{"name":"features","shape":[1],"datatype":"FP64","data":["1"]}]}`, 400, "not a finite number"},
		{"rank 3", "/v2/models/iris/infer",
			`{"inputs":[{"name":"features","shape":[1,1,4],"datatype":"FP64","data":[1,2,3,4]}]}`, 400, "shape"},
		{"binary extension", "/v2/models/iris/infer",
			`{"inputs":[{"name":"features","shape":[4],"datatype":"FP32","parameters":{"binary_data_size":16}}]}`, 400, "binary"},
		{"unknown output", "/v2/models/iris/infer",
			`{"inputs":[{"name":"features","shape":[4],"datatype":"FP64","data":[1,2,3,4]}],"outputs":[{"name":"output0"}]}`, 400, "output0"},
		{"no probabilities", "/v2/models/iris/infer",
			`{"inputs":[{"name":"features","shape":[4],"datatype":"FP64","data":[1,2,3,4]}],"outputs":[{"name":"probabilities"}]}`, 400, "probabilities"},
		{"unknown model", "/v2/models/nope/infer",
			`{"inputs":[{"name":"features","shape":[4],"datatype":"FP64","data":[1,2,3,4]}]}`, 404, "not_found"},
		{"version not served", "/v2/models/iris/versions/1/infer", irisExample, 404, "not_found"},
		{"bad timeout", "/v2/models/iris/infer?timeout=soon", irisExample, 400, "timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.do(t, http.MethodPost, tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if msg := errorBody(t, body); !strings.Contains(msg, tc.contains) {
				t.Fatalf("error %q does not mention %q", msg, tc.contains)
			}
		})
	}
}

// TestOIPProbabilities: a model answering probabilities gets them back as
// a [b, k] tensor (a linear model file cannot, so the manifest points at
// a Go function model registered by this test).
func TestOIPProbabilities(t *testing.T) {
	e := newEnv(t, func(root string) {
		writeProbaModel(t, root)
	})
	status, body := e.do(t, http.MethodPost, "/v2/models/clf/infer",
		`{"inputs":[{"name":"features","shape":[3,2],"datatype":"FP64","data":[[0,1],[1,0],[2,2]]}]}`)
	if status != http.StatusOK {
		t.Fatalf("infer: %d %s", status, body)
	}
	var res ops.InferResponse
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 2 || res.Outputs[1].Name != "probabilities" ||
		res.Outputs[1].Shape[0] != 3 || res.Outputs[1].Shape[1] != 2 || len(res.Outputs[1].Data) != 6 {
		t.Fatalf("outputs %s", body)
	}
	if res.Outputs[0].Datatype != "FP64" || res.Outputs[0].Data[2].(float64) != 1 {
		t.Fatalf("prediction %+v", res.Outputs[0])
	}
	var md ops.ModelMetadata
	e.getJSON(t, "/v2/models/clf", &md)
	if len(md.Outputs) != 2 || md.Outputs[1].Name != "probabilities" || md.Inputs[0].Shape[1] != 2 {
		t.Fatalf("metadata %+v", md)
	}
}

func TestOIPLimits(t *testing.T) {
	e := irisEnv(t)
	for _, tc := range []struct {
		opt      ops.Option
		contains string
	}{
		{ops.WithMaxBodyBytes(64), "body larger"},
		{ops.WithMaxInferRows(1), "rows"},
	} {
		s, err := ops.NewServer(e.c, tc.opt)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s.OIPHandler())
		resp, err := http.Post(srv.URL+"/v2/models/iris/infer", "application/json", strings.NewReader(irisExample))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s: %d %s", tc.contains, resp.StatusCode, body)
		}
		if msg := errorBody(t, body); !strings.Contains(msg, tc.contains) {
			t.Fatalf("error %q does not mention %q", msg, tc.contains)
		}
	}
}

func init() {
	modelhost.RegisterFunc("ops-test-proba", func(ctx context.Context, m *modelhost.Manifest, dir string) (modelhost.Model, error) {
		return modelhost.NewFuncModel(func(ctx context.Context, in []modelhost.Input) ([]modelhost.Output, error) {
			out := make([]modelhost.Output, len(in))
			for i, x := range in {
				var req struct {
					Features []float64 `json:"features"`
				}
				if err := json.Unmarshal(x.Payload, &req); err != nil || len(req.Features) != 2 {
					out[i].Err = fmt.Errorf("%w: want 2 features", api.ErrBadInput)
					continue
				}
				p := math.Min(1, (req.Features[0]+req.Features[1])/4)
				class := 0
				if p >= 0.5 {
					class = 1
				}
				out[i].Payload = fmt.Appendf(nil, `{"prediction":%d,"probabilities":[%g,%g]}`, class, 1-p, p)
			}
			return out, nil
		}, 1<<10), nil
	})
}

// writeProbaModel writes "clf": two features, a class and its probabilities.
func writeProbaModel(t testing.TB, root string) {
	t.Helper()
	err := modelgen.Write(root, modelhost.Manifest{ID: "clf", Version: "1", Runtime: "go", Entrypoint: "ops-test-proba",
		MemoryBytes: 1 << 10, Options: map[string]string{"n_features": "2", "predict_proba": "true"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
}
