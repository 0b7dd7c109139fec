package ops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
)

// Open Inference Protocol v2 JSON bodies (REST), as KServe and Triton
// document them.

// InferRequest is the body of POST /v2/models/{name}[/versions/{v}]/infer.
type InferRequest struct {
	ID         string          `json:"id,omitempty"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Inputs     []RequestInput  `json:"inputs"`
	Outputs    []RequestOutput `json:"outputs,omitempty"`
}

// RequestInput is one input tensor. Data is row-major, flat or nested.
type RequestInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// RequestOutput names an output the client wants.
type RequestOutput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// InferResponse is the answer of an infer request.
type InferResponse struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version,omitempty"`
	ID           string           `json:"id,omitempty"`
	Parameters   map[string]any   `json:"parameters,omitempty"`
	Outputs      []ResponseOutput `json:"outputs"`
}

// ResponseOutput is one output tensor, data flat in row-major order.
type ResponseOutput struct {
	Name       string         `json:"name"`
	Shape      []int64        `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       []any          `json:"data"`
}

// MetadataTensor describes an input or output in model metadata.
type MetadataTensor struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// ModelMetadata is the answer of GET /v2/models/{name}[/versions/{v}].
type ModelMetadata struct {
	Name       string           `json:"name"`
	Versions   []string         `json:"versions,omitempty"`
	Platform   string           `json:"platform"`
	Inputs     []MetadataTensor `json:"inputs"`
	Outputs    []MetadataTensor `json:"outputs"`
	Parameters map[string]any   `json:"parameters,omitempty"`
}

// ErrorBody is the protocol's error shape.
type ErrorBody struct {
	Error string `json:"error"`
}

// maxTensorElements bounds one input tensor (the body limit bounds it
// already; this keeps a shape like [1e9, 1e9] from being multiplied into
// an overflow).
const maxTensorElements = 1 << 26

// numericTypes are the datatypes accepted for the features tensor, with
// the float bit size used to print their values.
var numericTypes = map[string]int{
	"FP64": 64, "FP32": 32, "FP16": 32,
	"INT8": 64, "INT16": 64, "INT32": 64, "INT64": 64,
	"UINT8": 64, "UINT16": 64, "UINT32": 64, "UINT64": 64,
}

// featureRows turns a features tensor into rows of JSON numbers. Shape
// [n] is one row of n features; [b, n] is b rows. Data may be flat or
// nested; its element count must match the shape.
func featureRows(in *RequestInput) ([][]float64, bool, error) {
	bits, ok := numericTypes[in.Datatype]
	if !ok {
		return nil, false, fmt.Errorf("input %q: datatype %q is not supported (want FP64 or FP32; integer types are taken as numbers)", in.Name, in.Datatype)
	}
	if _, has := in.Parameters["binary_data_size"]; has {
		return nil, false, fmt.Errorf("input %q: the binary data extension is not supported; send data as JSON", in.Name)
	}
	var b, n int64
	single := false
	switch len(in.Shape) {
	case 1:
		b, n, single = 1, in.Shape[0], true
	case 2:
		b, n = in.Shape[0], in.Shape[1]
	default:
		return nil, false, fmt.Errorf("input %q: shape %v: want [n] (one row) or [b, n] (b rows)", in.Name, in.Shape)
	}
	if b < 0 || n < 0 || (n > 0 && b > maxTensorElements/n) {
		return nil, false, fmt.Errorf("input %q: shape %v is invalid", in.Name, in.Shape)
	}
	if b == 0 {
		return nil, false, fmt.Errorf("input %q: shape %v has no rows", in.Name, in.Shape)
	}
	flat := make([]float64, 0, b*n)
	if err := flatten(in.Data, &flat, int(b*n), 0); err != nil {
		return nil, false, fmt.Errorf("input %q: data: %w", in.Name, err)
	}
	if int64(len(flat)) != b*n {
		return nil, false, fmt.Errorf("input %q: data has %d elements, shape %v needs %d", in.Name, len(flat), in.Shape, b*n)
	}
	rows := make([][]float64, b)
	for i := range rows {
		row := flat[int64(i)*n : int64(i+1)*n : int64(i+1)*n]
		if bits == 32 {
			for j, x := range row {
				row[j] = float64(float32(x))
			}
		}
		rows[i] = row
	}
	return rows, single, nil
}

// flatten appends the numbers of a (nested) JSON array to out, refusing
// more than limit elements and nesting deeper than 8.
func flatten(raw json.RawMessage, out *[]float64, limit, depth int) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return fmt.Errorf("missing")
	}
	if raw[0] != '[' {
		return fmt.Errorf("want an array of numbers")
	}
	if depth > 8 {
		return fmt.Errorf("nested deeper than 8")
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return err
	}
	for _, e := range elems {
		e = bytes.TrimSpace(e)
		if len(e) > 0 && e[0] == '[' {
			if err := flatten(e, out, limit, depth+1); err != nil {
				return err
			}
			continue
		}
		if len(*out) >= limit {
			return fmt.Errorf("more elements than the shape holds")
		}
		x, err := strconv.ParseFloat(string(e), 64)
		if err != nil || len(e) == 0 || e[0] == '"' || math.IsInf(x, 0) || math.IsNaN(x) {
			return fmt.Errorf("element %s is not a finite number", truncate(string(e), 32))
		}
		*out = append(*out, x)
	}
	return nil
}

// featuresPayload is the tabular request of docs/ARCHITECTURE.md: {"features": [...]}.
// bits 32 prints the shortest form that round-trips a float32 (0.3, not
// 0.30000001192092896).
func featuresPayload(row []float64, bits int) []byte {
	b := make([]byte, 0, 16+len(row)*10)
	b = append(b, `{"features":[`...)
	for i, x := range row {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, x, 'g', -1, bits)
	}
	return append(b, "]}"...)
}

// tabularOutput is a tabular model's answer: {"prediction": y} plus
// "probabilities" when the model gives them.
type tabularOutput struct {
	Prediction    json.RawMessage `json:"prediction"`
	Probabilities []float64       `json:"probabilities"`
}

// outputTensor gathers one value per row into a tensor: numbers make FP64
// [b], arrays of k numbers FP64 [b, k], strings BYTES [b], booleans BOOL [b].
func outputTensor(name string, vals []json.RawMessage) (ResponseOutput, error) {
	out := ResponseOutput{Name: name}
	b := int64(len(vals))
	kind := ""
	var dims []int64 // of one row's array (nested arrays: several)
	for i, v := range vals {
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return out, fmt.Errorf("row %d: %s: %v", i, name, err)
		}
		k := ""
		switch t := x.(type) {
		case float64:
			k = "FP64"
			out.Data = append(out.Data, t)
		case string:
			k = "BYTES"
			out.Data = append(out.Data, t)
		case bool:
			k = "BOOL"
			out.Data = append(out.Data, t)
		case []any:
			k = "FP64[]"
			d, err := arrayShape(t)
			if err != nil {
				return out, fmt.Errorf("row %d: %s: %v", i, name, err)
			}
			if dims != nil && !slices.Equal(d, dims) {
				return out, fmt.Errorf("row %d: %s has shape %v, row 0 has %v", i, name, d, dims)
			}
			dims = d
			out.Data = appendLeaves(out.Data, t)
		default:
			return out, fmt.Errorf("row %d: %s is %s, want a number, a string, a boolean or an array of numbers", i, name, truncate(string(v), 32))
		}
		if kind != "" && k != kind {
			return out, fmt.Errorf("row %d: %s changes type across rows", i, name)
		}
		kind = k
	}
	if kind == "FP64[]" {
		out.Datatype, out.Shape = "FP64", append([]int64{b}, dims...)
	} else {
		out.Datatype, out.Shape = kind, []int64{b}
	}
	if out.Data == nil {
		out.Data = []any{}
	}
	return out, nil
}

// arrayShape is the shape of a JSON array of numbers, nested to any depth
// and rectangular ([[1,2],[3,4]] is [2 2]); an error names what breaks it.
func arrayShape(a []any) ([]int64, error) {
	shape := []int64{int64(len(a))}
	if len(a) == 0 {
		return shape, nil
	}
	if _, ok := a[0].([]any); !ok {
		for _, e := range a {
			if _, ok := e.(float64); !ok {
				return nil, fmt.Errorf("holds a non-number")
			}
		}
		return shape, nil
	}
	var inner []int64
	for _, e := range a {
		sub, ok := e.([]any)
		if !ok {
			return nil, fmt.Errorf("mixes arrays and values at one depth")
		}
		d, err := arrayShape(sub)
		if err != nil {
			return nil, err
		}
		if inner != nil && !slices.Equal(d, inner) {
			return nil, fmt.Errorf("is not rectangular (%v and %v)", inner, d)
		}
		inner = d
	}
	return append(shape, inner...), nil
}

// appendLeaves appends a (checked by arrayShape) in row-major order.
func appendLeaves(dst []any, a []any) []any {
	for _, e := range a {
		if sub, ok := e.([]any); ok {
			dst = appendLeaves(dst, sub)
		} else {
			dst = append(dst, e)
		}
	}
	return dst
}

// namedOutputs splits predictions that are JSON objects ({"name": value},
// a model with several named outputs, such as an ONNX graph's) into one
// list of values per name, in sorted name order. ok is false when the
// predictions are not objects; an error when rows disagree on the names.
func namedOutputs(preds []json.RawMessage) (names []string, vals map[string][]json.RawMessage, ok bool, err error) {
	for i, p := range preds {
		t := bytes.TrimLeft(p, " \t\r\n")
		if len(t) == 0 || t[0] != '{' {
			if i > 0 && ok {
				return nil, nil, false, fmt.Errorf("row %d: prediction is not an object of named outputs, row 0's is", i)
			}
			return nil, nil, false, nil
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(p, &m); err != nil {
			return nil, nil, false, fmt.Errorf("row %d: prediction: %v", i, err)
		}
		if i == 0 {
			ok = true
			vals = make(map[string][]json.RawMessage, len(m))
			for n := range m {
				names = append(names, n)
				vals[n] = make([]json.RawMessage, len(preds))
			}
			sort.Strings(names)
		}
		if len(m) != len(names) {
			return nil, nil, false, fmt.Errorf("row %d: %d named outputs, row 0 has %d", i, len(m), len(names))
		}
		for n, v := range m {
			col, found := vals[n]
			if !found {
				return nil, nil, false, fmt.Errorf("row %d: output %q is not one of row 0's %q", i, n, names)
			}
			col[i] = v
		}
	}
	return names, vals, ok, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
