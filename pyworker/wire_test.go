package pyworker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/testenv"
)

// TestWireCodec runs the Python side of the protocol (manta_worker/wire.py
// over the protoc-generated worker_pb2.py) against the generated Go code,
// both ways.
func TestWireCodec(t *testing.T) {
	py := testenv.Python(t)
	dir, err := packageDir()
	if err != nil {
		t.Fatal(err)
	}
	reqs := []*api.WorkerRequest{
		{Id: 1, Kind: &api.WorkerRequest_Load{Load: &api.WorkerLoad{
			Handle: 1 << 40, ModelId: "eta-eu", Version: "12", Format: "sklearn-joblib",
			Dir: "/tmp/models/é", Entrypoint: "model.joblib",
			Options: map[string]string{"predict_proba": "true", "": "empty key"},
		}}},
		{Id: 1<<64 - 1, Kind: &api.WorkerRequest_Predict{Predict: &api.WorkerPredict{
			Handle: 3,
			Features: &api.Tensor{Dtype: api.DType_DTYPE_FLOAT32, Shape: []int64{2, 3, -1, 1 << 33},
				Data: []byte{0, 1, 2, 255}},
			Inputs:       [][]byte{[]byte(`{"a":1}`), {}, {0xff}},
			ContentTypes: []string{"", "text/plain"},
		}}},
		{Id: 5, Kind: &api.WorkerRequest_Unload{Unload: &api.WorkerUnload{Handle: 9}}},
		{Id: 6, Kind: &api.WorkerRequest_Stats{Stats: &api.WorkerStatsRequest{}}},
		{Id: 7, Kind: &api.WorkerRequest_Ping{Ping: &api.WorkerPing{}}},
		{Id: 8, Kind: &api.WorkerRequest_Shutdown{Shutdown: &api.WorkerShutdown{}}},
		{Id: 9},
	}
	want := []string{
		`{"body":{"dir":"/tmp/models/é","entrypoint":"model.joblib","format":"sklearn-joblib","handle":1099511627776,"model_id":"eta-eu","options":{"":"empty key","predict_proba":"true"},"version":"12"},"id":1,"kind":"load"}`,
		`{"body":{"content_types":["","text/plain"],"features":{"data":"AAEC/w==","dtype":2,"shape":[2,3,-1,8589934592]},"handle":3,"inputs":["eyJhIjoxfQ==","","/w=="]},"id":18446744073709551615,"kind":"predict"}`,
		`{"body":{"handle":9},"id":5,"kind":"unload"}`,
		`{"body":{},"id":6,"kind":"stats"}`,
		`{"body":{},"id":7,"kind":"ping"}`,
		`{"body":{},"id":8,"kind":"shutdown"}`,
		`{"body":null,"id":9,"kind":null}`,
	}
	var in bytes.Buffer
	for _, r := range reqs {
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(appendFrameHeader(nil, len(b)))
		in.Write(b)
	}
	// A frame with an unknown field (number 99) and a garbage frame.
	unknown := []byte{0x9a, 0x06, 0x01, 'x'} // field 99, length 1
	b, _ := proto.Marshal(reqs[2])
	b = append(b, unknown...)
	in.Write(appendFrameHeader(nil, len(b)))
	in.Write(b)
	want = append(want, want[2])
	in.Write(appendFrameHeader(nil, 3))
	in.Write([]byte{0x0a, 0x05, 0x01})
	want = append(want, `{"error":"DecodeError"}`)

	cmd := exec.Command(py, filepath.Join("testdata", "wire_echo.py"))
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("wire_echo.py: %v\n%s", err, stderr.String())
	}
	r := bufio.NewReader(bytes.NewReader(out))
	next := func() *api.WorkerResponse {
		t.Helper()
		b, err := readFrame(r, nil, 1<<20)
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		var resp api.WorkerResponse
		if err := proto.Unmarshal(b, &resp); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		return &resp
	}
	fixed := []*api.WorkerResponse{
		{Id: 1<<63 + 5, Error: &api.WorkerError{Code: api.ErrorCode_ERROR_CODE_BAD_INPUT, Type: "ValueError", Message: "bad é"},
			Kind: &api.WorkerResponse_Predict{Predict: &api.WorkerPredictResult{
				Prediction:    &api.Tensor{Dtype: api.DType_DTYPE_FLOAT64, Shape: []int64{2, 1}, Data: make([]byte, 16)},
				Probabilities: &api.Tensor{Dtype: api.DType_DTYPE_INT64, Shape: []int64{2, 3}, Data: make([]byte, 48)},
				Outputs:       [][]byte{[]byte("{}"), {}},
				RowErrors:     []*api.WorkerError{{}, {Code: api.ErrorCode_ERROR_CODE_INTERNAL, Type: "ZeroDivisionError", Message: "division by zero"}},
			}}},
		{Id: 9, Kind: &api.WorkerResponse_Load{Load: &api.WorkerLoadResult{RssBefore: 100, RssAfter: 1 << 40, LoadNanos: 12345,
			NFeatures: 8, InputKind: api.InputKind_INPUT_KIND_RAW, ModelClass: "sklearn.linear_model.LinearRegression", Probabilities: true}}},
		{Id: 9, Kind: &api.WorkerResponse_Stats{Stats: &api.WorkerStats{Pid: 42, Rss: 1 << 30,
			Models: []*api.WorkerModelStats{{Handle: 7, ModelId: "m", Version: "3", LoadNanos: 9, MemoryBytes: 10, Batches: 11, Rows: 12, Errors: 13}}}}},
		{Id: 9, Kind: &api.WorkerResponse_Pong{Pong: &api.WorkerPong{Pid: 42, Python: "3.11.2",
			Packages: map[string]string{"numpy": "1.24.2", "sklearn": "1.2.1"}, Rss: 123456, Protocol: 1}}},
	}
	for i, w := range want {
		echo := next()
		outs := echo.GetPredict().GetOutputs()
		if len(outs) != 1 {
			t.Fatalf("request %d: echo without output: %v", i, echo)
		}
		var got, exp any
		if err := json.Unmarshal(outs[0], &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(w), &exp); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("request %d decoded by Python as\n %s\nwant\n %s", i, outs[0], w)
		}
		for j, f := range fixed {
			if got := next(); !proto.Equal(got, f) {
				t.Errorf("request %d: fixed response %d decoded by Go as\n %v\nwant\n %v", i, j, got, f)
			}
		}
	}
	if _, err := readFrame(r, nil, 1<<20); err == nil {
		t.Errorf("extra frames after the expected ones")
	}
}
