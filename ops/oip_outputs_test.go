package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/ops"
)

// A model answering several named outputs, one of them a nested array
// (as an ONNX graph with two outputs does): {"prediction": {"sum": s,
// "grid": [[a, b], [b, a]]}} per row.
func init() {
	modelhost.RegisterFunc("ops-test-named", func(ctx context.Context, m *modelhost.Manifest, dir string) (modelhost.Model, error) {
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
				a, b := req.Features[0], req.Features[1]
				out[i].Payload = fmt.Appendf(nil, `{"prediction":{"sum":%g,"grid":[[%g,%g],[%g,%g]]}}`, a+b, a, b, b, a)
			}
			return out, nil
		}, 1<<10), nil
	})
}

// The Open Inference Protocol maps a model's named outputs to one tensor
// each, by name, and a nested array to a tensor of its full shape
// ([rows, 2, 2]); outputs can be asked for by those names. Before, such a
// model answered 500 (an object was no tensor) and asking for "sum" was
// refused as an unknown output.
func TestOIPNamedAndNestedOutputs(t *testing.T) {
	e := newEnv(t, func(root string) {
		if err := modelgen.Write(root, modelhost.Manifest{ID: "multi", Version: "1", Runtime: "go", Entrypoint: "ops-test-named",
			MemoryBytes: 1 << 10}, nil); err != nil {
			t.Fatal(err)
		}
	})
	req := `{"inputs":[{"name":"features","shape":[2,2],"datatype":"FP64","data":[[1,2],[3,4]]}]}`
	status, body := e.do(t, http.MethodPost, "/v2/models/multi/infer", req)
	if status != http.StatusOK {
		t.Fatalf("infer: %d %s", status, body)
	}
	var res ops.InferResponse
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 2 {
		t.Fatalf("outputs %s", body)
	}
	grid, sum := res.Outputs[0], res.Outputs[1] // sorted by name
	if grid.Name != "grid" || fmt.Sprint(grid.Shape) != "[2 2 2]" || fmt.Sprint(grid.Data) != "[1 2 2 1 3 4 4 3]" {
		t.Fatalf("grid tensor %+v", grid)
	}
	if sum.Name != "sum" || fmt.Sprint(sum.Shape) != "[2]" || fmt.Sprint(sum.Data) != "[3 7]" {
		t.Fatalf("sum tensor %+v", sum)
	}

	// Asking for one output by name gives only that one.
	status, body = e.do(t, http.MethodPost, "/v2/models/multi/infer",
		`{"inputs":[{"name":"features","shape":[1,2],"datatype":"FP64","data":[5,6]}],"outputs":[{"name":"sum"}]}`)
	if status != http.StatusOK {
		t.Fatalf("infer sum: %d %s", status, body)
	}
	res = ops.InferResponse{}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Name != "sum" || fmt.Sprint(res.Outputs[0].Data) != "[11]" {
		t.Fatalf("asked for sum: %s", body)
	}
	// A name the model does not give is a bad request naming what it gives.
	status, body = e.do(t, http.MethodPost, "/v2/models/multi/infer",
		`{"inputs":[{"name":"features","shape":[1,2],"datatype":"FP64","data":[5,6]}],"outputs":[{"name":"prediction"}]}`)
	if status != http.StatusBadRequest {
		t.Fatalf("asked for prediction of a named-output model: %d %s", status, body)
	}
	if msg := errorBody(t, body); !strings.Contains(msg, "grid") || !strings.Contains(msg, "sum") {
		t.Fatalf("error %q does not name the outputs", msg)
	}
}
