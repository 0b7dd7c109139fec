package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/httpjson"
	"github.com/manta-ml/manta/internal/redact"
	"github.com/manta-ml/manta/modelhost"
)

// Names of the tensors of the tabular mapping (docs/ARCHITECTURE.md §2.3).
const (
	TensorFeatures      = "features"
	TensorPrediction    = "prediction"
	TensorProbabilities = "probabilities"
)

// RegisterOIP mounts the Open Inference Protocol v2 REST endpoints on mux
// (Register does too).
func (s *Server) RegisterOIP(mux *http.ServeMux) {
	mux.HandleFunc("GET /v2", s.oipServerMetadata)
	mux.HandleFunc("GET /v2/health/live", s.oipLive)
	mux.HandleFunc("GET /v2/health/ready", s.oipReady)
	mux.HandleFunc("GET /v2/models/{name}", s.oipMetadata)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}", s.oipMetadata)
	mux.HandleFunc("GET /v2/models/{name}/ready", s.oipModelReady)
	mux.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", s.oipModelReady)
	mux.HandleFunc("POST /v2/models/{name}/infer", s.oipInfer)
	mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", s.oipInfer)
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
}

// OIPHandler is the Open Inference Protocol endpoints alone.
func (s *Server) OIPHandler() http.Handler {
	mux := http.NewServeMux()
	s.RegisterOIP(mux)
	return mux
}

func (s *Server) oipServerMetadata(w http.ResponseWriter, r *http.Request) {
	httpjson.Write(w, http.StatusOK, map[string]any{"name": "manta", "version": s.version, "extensions": []string{}})
}

func (s *Server) oipLive(w http.ResponseWriter, r *http.Request) {
	httpjson.Write(w, http.StatusOK, map[string]bool{"live": true})
}

func (s *Server) oipReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		httpjson.Write(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "error": redact.Text(err.Error())})
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]bool{"ready": true})
}

// manifest resolves the manifest of a model (and version, "" for the one
// to serve) and all its versions.
// noSuch is an invalid name or version as the OIP sees it: a model that
// does not exist (not_found, 404). The validation error is kept as text
// only, so the error wraps one sentinel and states one code.
func noSuch(what string, invalid error) error {
	return fmt.Errorf("%w: %s: %s", api.ErrNotFound, what, strings.TrimPrefix(invalid.Error(), api.ErrBadInput.Error()+": "))
}

func (s *Server) manifest(ctx context.Context, name, version string) (*modelhost.Manifest, []string, error) {
	if err := modelhost.ValidID(name); err != nil {
		return nil, nil, noSuch(fmt.Sprintf("model %q", name), err)
	}
	if version != "" {
		if err := modelhost.ValidVersion(version); err != nil {
			return nil, nil, noSuch("model "+name, err)
		}
	}
	st := s.b.Store()
	if st == nil {
		return nil, nil, fmt.Errorf("%w: this process has no model store", api.ErrNotFound)
	}
	versions, err := st.Versions(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if version == "" {
		if version, err = st.Latest(ctx, name); err != nil {
			return nil, nil, err
		}
	}
	m, err := st.Manifest(ctx, name, version)
	if err != nil {
		return nil, nil, err
	}
	return m, versions, nil
}

func (s *Server) oipMetadata(w http.ResponseWriter, r *http.Request) {
	m, versions, err := s.manifest(r.Context(), r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, Metadata(m, versions))
}

// Metadata is a model's OIP metadata from its manifest: input tensor
// "features" FP64 [-1, n] (n from the manifest option "n_features", else
// -1), output "prediction" FP64 [-1], and "probabilities" FP64 [-1, -1]
// when the option "predict_proba" is "true". The platform is the
// manifest's format (else its runtime).
func Metadata(m *modelhost.Manifest, versions []string) *ModelMetadata {
	n := int64(-1)
	if v, err := strconv.ParseInt(m.Options["n_features"], 10, 64); err == nil && v > 0 {
		n = v
	}
	platform := m.Format
	if platform == "" {
		platform = m.Runtime
	}
	md := &ModelMetadata{
		Name:     m.ID,
		Versions: versions,
		Platform: platform,
		Inputs:   []MetadataTensor{{Name: TensorFeatures, Datatype: "FP64", Shape: []int64{-1, n}}},
		Outputs:  []MetadataTensor{{Name: TensorPrediction, Datatype: "FP64", Shape: []int64{-1}}},
		Parameters: map[string]any{
			"version": m.Version, "runtime": m.Runtime,
			"created_at": m.CreatedAt.UTC().Format(time.RFC3339),
		},
	}
	if m.Options["predict_proba"] == "true" {
		md.Outputs = append(md.Outputs, MetadataTensor{Name: TensorProbabilities, Datatype: "FP64", Shape: []int64{-1, -1}})
	}
	if m.Description != "" {
		md.Parameters["description"] = m.Description
	}
	if m.Quality != nil {
		md.Parameters["quality_metric"] = m.Quality.Metric
		md.Parameters["quality_value"] = m.Quality.Value
	}
	return md
}

// oipModelReady: a model is ready when its version exists in the store;
// Manta activates and loads it on the first request (virtual actors).
func (s *Server) oipModelReady(w http.ResponseWriter, r *http.Request) {
	m, _, err := s.manifest(r.Context(), r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"name": m.ID, "version": m.Version, "ready": true})
}

func (s *Server) oipInfer(w http.ResponseWriter, r *http.Request) {
	name, version := r.PathValue("name"), r.PathValue("version")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeError(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", s.maxBody))
			return
		}
		s.writeError(w, r, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	var req InferRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.writeError(w, r, http.StatusBadRequest, "invalid inference request: "+err.Error())
		return
	}
	ctx := r.Context()
	if t := r.URL.Query().Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			s.writeError(w, r, http.StatusBadRequest, fmt.Sprintf("bad timeout %q", t))
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	resp, status, err := s.Infer(ctx, name, version, &req)
	if err != nil {
		s.writeError(w, r, status, redact.Text(err.Error()))
		return
	}
	httpjson.Write(w, http.StatusOK, resp)
}

// Infer runs an OIP inference request against model name (version ""
// for the one served): the features tensor's b rows become b requests
// {"features": [...]} to the model's actor, sent at once so the actor
// batches them, and each row's "prediction" (and "probabilities") come
// back as output tensors. On failure it returns the HTTP status to answer
// and an error; the first failing row decides.
func (s *Server) Infer(ctx context.Context, name, version string, req *InferRequest) (*InferResponse, int, error) {
	if err := modelhost.ValidID(name); err != nil {
		return nil, http.StatusNotFound, fmt.Errorf("model %q not found: %v", name, err)
	}
	if version != "" {
		if err := modelhost.ValidVersion(version); err != nil {
			return nil, http.StatusNotFound, fmt.Errorf("model %s version %q not found: %v", name, version, err)
		}
	}
	in, err := pickFeatures(req.Inputs)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	// The outputs asked for are checked against what the model gives
	// once it has answered: "prediction" and "probabilities", or a name
	// of each output of a model that answers {"prediction": {name: v}}.
	want := map[string]bool{}
	for _, o := range req.Outputs {
		want[o.Name] = true
	}
	rows, single, err := featureRows(in)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	if len(rows) > s.maxRows {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("input %q has %d rows, at most %d are served per request", in.Name, len(rows), s.maxRows)
	}
	bits := numericTypes[in.Datatype]
	base := req.ID
	if base == "" {
		base = RequestIDFrom(ctx)
	}
	resps := make([]*api.PredictResponse, len(rows))
	workers := min(len(rows), 256)
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(rows) {
					return
				}
				pr := &api.PredictRequest{ModelId: name, Version: version, Payload: featuresPayload(rows[i], bits),
					ContentType: modelhost.ContentTypeJSON}
				if base != "" {
					pr.RequestId = base
					if len(rows) > 1 {
						pr.RequestId = base + "/" + strconv.Itoa(i)
					}
				}
				resps[i] = s.b.Do(ctx, pr)
			}
		}()
	}
	wg.Wait()
	preds := make([]json.RawMessage, len(rows))
	var probs []json.RawMessage
	modelVersion := ""
	for i, pr := range resps {
		if pr.GetError().GetCode() != api.ErrorCode_ERROR_CODE_UNSPECIFIED {
			msg := pr.GetError().GetMessage()
			if len(rows) > 1 {
				msg = fmt.Sprintf("row %d: %s", i, msg)
			}
			return nil, httpStatus(pr.Error.Code), fmt.Errorf("%s: %s", pr.Error.Code.Name(), msg)
		}
		if modelVersion == "" {
			modelVersion = pr.ModelVersion
		}
		var out tabularOutput
		if ct := pr.ContentType; ct != "" && ct != modelhost.ContentTypeJSON {
			return nil, http.StatusInternalServerError, fmt.Errorf("model %s answered %s; the inference protocol mapping needs JSON {\"prediction\": ...}", name, ct)
		}
		if err := json.Unmarshal(pr.Output, &out); err != nil || len(out.Prediction) == 0 || string(out.Prediction) == "null" {
			return nil, http.StatusInternalServerError, fmt.Errorf("model %s: output %s has no \"prediction\"; the inference protocol mapping serves tabular models", name, truncate(string(pr.Output), 64))
		}
		preds[i] = out.Prediction
		if out.Probabilities != nil {
			b, _ := json.Marshal(out.Probabilities)
			probs = append(probs, b)
		}
	}
	res := &InferResponse{ModelName: name, ModelVersion: modelVersion, ID: req.ID, Outputs: []ResponseOutput{}}
	names, named, isNamed, err := namedOutputs(preds)
	if err != nil {
		return nil, http.StatusInternalServerError, fmt.Errorf("model %s: %v", name, err)
	}
	gives := []string{TensorPrediction, TensorProbabilities}
	if isNamed {
		// Several named outputs: one tensor each, by its name.
		gives = names
		for _, n := range names {
			if len(want) > 0 && !want[n] {
				continue
			}
			t, err := outputTensor(n, named[n])
			if err != nil {
				return nil, http.StatusInternalServerError, fmt.Errorf("model %s: %v", name, err)
			}
			if single && len(t.Shape) == 1 {
				t.Shape = []int64{1}
			}
			res.Outputs = append(res.Outputs, t)
		}
	} else if len(want) == 0 || want[TensorPrediction] {
		t, err := outputTensor(TensorPrediction, preds)
		if err != nil {
			return nil, http.StatusInternalServerError, fmt.Errorf("model %s: %v", name, err)
		}
		if single && len(t.Shape) == 1 {
			t.Shape = []int64{1}
		}
		res.Outputs = append(res.Outputs, t)
	}
	for _, o := range req.Outputs {
		if !slices.Contains(gives, o.Name) {
			return nil, http.StatusBadRequest, fmt.Errorf("unknown output %q: model %s gives %q", o.Name, name, gives)
		}
	}
	if !isNamed && want[TensorProbabilities] && len(probs) != len(rows) {
		return nil, http.StatusBadRequest, fmt.Errorf("model %s gives no %q", name, TensorProbabilities)
	}
	if !isNamed && len(probs) == len(rows) && (len(want) == 0 || want[TensorProbabilities]) {
		t, err := outputTensor(TensorProbabilities, probs)
		if err != nil {
			return nil, http.StatusInternalServerError, fmt.Errorf("model %s: %v", name, err)
		}
		res.Outputs = append(res.Outputs, t)
	}
	return res, http.StatusOK, nil
}

// pickFeatures finds the features tensor: the input named "features", or
// the only input whatever its name.
func pickFeatures(inputs []RequestInput) (*RequestInput, error) {
	for i := range inputs {
		if inputs[i].Name == TensorFeatures {
			return &inputs[i], nil
		}
	}
	switch len(inputs) {
	case 0:
		return nil, fmt.Errorf("no inputs: send the tensor %q (FP64 or FP32, shape [n] or [b, n])", TensorFeatures)
	case 1:
		return &inputs[0], nil
	}
	names := make([]string, len(inputs))
	for i, in := range inputs {
		names[i] = in.Name
	}
	return nil, fmt.Errorf("inputs %q: none is named %q (one input of any name is taken as the features)", names, TensorFeatures)
}
