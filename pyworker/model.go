package pyworker

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
)

// ContentTypeTensor is the content type of an Input holding one row as a
// serialized api.Tensor (FLOAT64 or FLOAT32, shape [n] or [1, n]): a
// feature model takes it without parsing JSON.
const ContentTypeTensor = "application/vnd.manta.tensor+protobuf"

// PythonError is an error raised by Python code in the worker: a model's
// exception, or a load that failed. It unwraps to the sentinel of its code
// (api.ErrBadInput for ValueError, TypeError and KeyError raised by a
// model; api.ErrInternal for other exceptions; api.ErrLoadFailed for a
// load), so errors.Is works.
type PythonError struct {
	Model   string        // id@version
	Code    api.ErrorCode // the sentinel's code
	Type    string        // the exception's class, e.g. "ValueError"
	Message string        // str(exception)
}

func (e *PythonError) Error() string {
	return fmt.Sprintf("%v: model %s: python %s: %s", e.Code.Sentinel(), e.Model, e.Type, e.Message)
}

// Unwrap returns the sentinel of the code.
func (e *PythonError) Unwrap() error { return e.Code.Sentinel() }

func pythonError(key string, we *api.WorkerError) error {
	code := we.Code
	if code == api.ErrorCode_ERROR_CODE_UNSPECIFIED {
		code = api.ErrorCode_ERROR_CODE_INTERNAL
	}
	return &PythonError{Model: key, Code: code, Type: we.Type, Message: we.Message}
}

// model is one handle on a shared loaded model.
type model struct {
	s      *Supervisor
	e      *shared
	closed atomic.Bool
}

// MemoryBytes is the worker's RSS growth measured over the model's load
// (at least the size of its files).
func (m *model) MemoryBytes() int64 { return m.e.memory.Load() }

// Close releases this handle; the last handle of a model unloads it.
// Closing twice is a no-op.
func (m *model) Close() error {
	if m.closed.CompareAndSwap(false, true) {
		m.s.release(m.e)
	}
	return nil
}

// Predict runs a batch in the model's worker; several batches may be in
// flight at once (they queue in the worker's pipe). Rows the Go side can
// reject alone (bad JSON, a wrong feature count) get Output.Err wrapping
// api.ErrBadInput and are not sent; so do rows that fail alone in Python.
// The batch fails as a whole when the worker dies or is stuck (an error
// wrapping api.ErrInternal) or when the model fails every row (a
// *PythonError). Cancelling ctx returns at once; the worker still runs
// the batch and its answer is dropped.
func (m *model) Predict(ctx context.Context, batch []modelhost.Input) ([]modelhost.Output, error) {
	if m.closed.Load() {
		return nil, fmt.Errorf("%w: model %s: predict on a closed model", api.ErrInternal, m.e.key)
	}
	out := make([]modelhost.Output, len(batch))
	if len(batch) == 0 {
		return out, nil
	}
	e := m.e
	req := &api.WorkerPredict{Handle: e.handle}
	rows := make([]int, 0, len(batch)) // batch index of each row sent
	if e.kind == api.InputKind_INPUT_KIND_FEATURES {
		t, err := m.features(batch, out, &rows)
		if err != nil {
			return nil, err
		}
		req.Features = t
	} else {
		jsonOnly := true
		for i, in := range batch {
			rows = append(rows, i)
			req.Inputs = append(req.Inputs, in.Payload)
			if !isJSON(in.ContentType) {
				jsonOnly = false
			}
		}
		if !jsonOnly {
			for _, in := range batch {
				ct := in.ContentType
				if isJSON(ct) {
					ct = ""
				}
				req.ContentTypes = append(req.ContentTypes, ct)
			}
		}
	}
	if len(rows) == 0 {
		return out, nil
	}
	resp, err := m.s.call(ctx, e, &api.WorkerRequest{Kind: &api.WorkerRequest_Predict{Predict: req}}, "predict "+e.key)
	if req.Features != nil {
		putBuf(req.Features.Data) // marshalled and sent (or failed): free to reuse
	}
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, pythonError(e.key, resp.Error)
	}
	res := resp.GetPredict()
	if res == nil {
		return nil, fmt.Errorf("%w: model %s: worker answered without predictions", api.ErrInternal, e.key)
	}
	if err := e.fill(res, rows, out); err != nil {
		return nil, err
	}
	return out, nil
}

func isJSON(ct string) bool {
	return ct == "" || ct == modelhost.ContentTypeJSON || strings.HasPrefix(ct, modelhost.ContentTypeJSON+";")
}

// features builds the batch's feature matrix (float64, rows x width),
// marking rejected rows in out.
func (m *model) features(batch []modelhost.Input, out []modelhost.Output, rows *[]int) (*api.Tensor, error) {
	e := m.e
	width := e.nfeat
	var scratch []float64
	data := getBuf(len(batch) * max(width, 1) * 8)
	for i, in := range batch {
		var err error
		scratch = scratch[:0]
		switch {
		case isJSON(in.ContentType):
			scratch, err = parseFeatures(scratch, in.Payload)
		case in.ContentType == ContentTypeTensor:
			scratch, err = tensorRow(scratch, in.Payload)
		default:
			err = fmt.Errorf("unsupported content type %q (want %s or %s)", in.ContentType, modelhost.ContentTypeJSON, ContentTypeTensor)
		}
		if err == nil {
			if width == 0 {
				width = len(scratch)
			}
			if len(scratch) != width {
				err = fmt.Errorf("expected %d features, got %d", width, len(scratch))
			} else if width == 0 {
				err = fmt.Errorf("no features")
			}
		}
		if err != nil {
			out[i].Err = fmt.Errorf("%w: model %s: %v", api.ErrBadInput, e.key, err)
			continue
		}
		for _, v := range scratch {
			data = binary.LittleEndian.AppendUint64(data, math.Float64bits(v))
		}
		*rows = append(*rows, i)
	}
	return &api.Tensor{Dtype: api.DType_DTYPE_FLOAT64, Shape: []int64{int64(len(*rows)), int64(width)}, Data: data}, nil
}

// tensorRow decodes one ContentTypeTensor row.
func tensorRow(dst []float64, b []byte) ([]float64, error) {
	var t api.Tensor
	if err := proto.Unmarshal(b, &t); err != nil {
		return dst, fmt.Errorf("bad tensor: %v", err)
	}
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	if len(t.Shape) > 2 || (len(t.Shape) == 2 && t.Shape[0] != 1) || n < 0 {
		return dst, fmt.Errorf("tensor shape %v is not one row", t.Shape)
	}
	switch t.Dtype {
	case api.DType_DTYPE_FLOAT64:
		if int64(len(t.Data)) != 8*n {
			return dst, fmt.Errorf("tensor of shape %v has %d bytes of float64", t.Shape, len(t.Data))
		}
		for i := 0; i+8 <= len(t.Data); i += 8 {
			dst = append(dst, math.Float64frombits(binary.LittleEndian.Uint64(t.Data[i:])))
		}
	case api.DType_DTYPE_FLOAT32:
		if int64(len(t.Data)) != 4*n {
			return dst, fmt.Errorf("tensor of shape %v has %d bytes of float32", t.Shape, len(t.Data))
		}
		for i := 0; i+4 <= len(t.Data); i += 4 {
			dst = append(dst, float64(math.Float32frombits(binary.LittleEndian.Uint32(t.Data[i:]))))
		}
	default:
		return dst, fmt.Errorf("tensor dtype %v: want FLOAT64 or FLOAT32", t.Dtype)
	}
	return dst, nil
}

// fill turns the worker's result into outputs for the rows sent.
func (e *shared) fill(res *api.WorkerPredictResult, rows []int, out []modelhost.Output) error {
	n := len(rows)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: model %s: %s", api.ErrInternal, e.key, fmt.Sprintf(format, args...))
	}
	if len(res.RowErrors) != 0 && len(res.RowErrors) != n {
		return bad("%d row errors for %d rows", len(res.RowErrors), n)
	}
	rowErr := func(j int) error {
		if len(res.RowErrors) == 0 || res.RowErrors[j].Code == api.ErrorCode_ERROR_CODE_UNSPECIFIED {
			return nil
		}
		return pythonError(e.key, res.RowErrors[j])
	}
	switch {
	case res.Prediction != nil:
		pred, err := newRows(res.Prediction, n)
		if err != nil {
			return bad("prediction: %v", err)
		}
		var proba *tensorRows
		if res.Probabilities != nil {
			if proba, err = newRows(res.Probabilities, n); err != nil {
				return bad("probabilities: %v", err)
			}
		}
		// One buffer for every row's JSON, sliced (capacity capped, so an
		// append by a caller cannot run into the next row).
		per := 24 + 24*pred.stride
		if proba != nil {
			per += 24 + 24*proba.stride
		}
		buf := make([]byte, 0, n*per)
		ends := make([]int, n)
		for j := range rows {
			ends[j] = -1
			if rowErr(j) != nil {
				continue
			}
			mark := len(buf)
			buf = append(buf, `{"prediction":`...)
			var ok bool
			buf, ok = pred.appendJSON(buf, j)
			if ok && proba != nil {
				buf = append(buf, `,"probabilities":`...)
				buf, ok = proba.appendJSON(buf, j)
			}
			if !ok {
				buf = buf[:mark]
				ends[j] = -2
				continue
			}
			buf = append(buf, '}')
			ends[j] = len(buf)
		}
		startAt := 0
		for j, i := range rows {
			switch ends[j] {
			case -1:
				out[i].Err = rowErr(j)
			case -2:
				out[i].Err = bad("the model returned a NaN or infinite value")
			default:
				out[i] = modelhost.Output{Payload: buf[startAt:ends[j]:ends[j]], ContentType: modelhost.ContentTypeJSON}
				startAt = ends[j]
			}
		}
	case len(res.Outputs) == n:
		for j, i := range rows {
			if err := rowErr(j); err != nil {
				out[i].Err = err
				continue
			}
			out[i] = modelhost.Output{Payload: res.Outputs[j], ContentType: modelhost.ContentTypeJSON}
		}
	default:
		return bad("%d outputs for %d rows", len(res.Outputs), n)
	}
	return nil
}

// tensorRows reads the rows of a prediction tensor.
type tensorRows struct {
	t      *api.Tensor
	inner  []int64 // shape after the first dimension
	stride int     // elements per row
}

// maxBatchElems bounds the values (and empty arrays) of one batch's output
// tensor: 4M, some 80 MB of JSON.
const maxBatchElems = 1 << 22

func newRows(t *api.Tensor, n int) (*tensorRows, error) {
	if len(t.Shape) == 0 || t.Shape[0] != int64(n) {
		return nil, fmt.Errorf("shape %v for %d rows", t.Shape, n)
	}
	// span bounds the JSON written per row: a zero dimension makes the
	// data empty but the others would still be walked ([[],[],...]), and a
	// product of large dimensions must not overflow.
	stride, span := int64(1), int64(1)
	for _, d := range t.Shape[1:] {
		if d < 0 || d > 1<<24 {
			return nil, fmt.Errorf("bad shape %v", t.Shape)
		}
		stride *= d
		span *= max(d, 1)
		if span*int64(max(n, 1)) > maxBatchElems {
			return nil, fmt.Errorf("shape %v: more than %d values in a batch", t.Shape, maxBatchElems)
		}
	}
	size := 8
	if t.Dtype == api.DType_DTYPE_FLOAT32 {
		size = 4
	}
	if t.Dtype != api.DType_DTYPE_FLOAT64 && t.Dtype != api.DType_DTYPE_FLOAT32 && t.Dtype != api.DType_DTYPE_INT64 {
		return nil, fmt.Errorf("dtype %v", t.Dtype)
	}
	if int64(len(t.Data)) != int64(n)*stride*int64(size) {
		return nil, fmt.Errorf("%d bytes for shape %v", len(t.Data), t.Shape)
	}
	return &tensorRows{t: t, inner: t.Shape[1:], stride: int(stride)}, nil
}

// appendJSON appends row j as a JSON number or (nested) array; false when
// a value cannot be JSON (NaN, infinities).
func (r *tensorRows) appendJSON(b []byte, j int) ([]byte, bool) {
	return r.appendDims(b, j*r.stride, r.inner)
}

func (r *tensorRows) appendDims(b []byte, off int, dims []int64) ([]byte, bool) {
	if len(dims) == 0 {
		return r.appendElem(b, off)
	}
	step := 1
	for _, d := range dims[1:] {
		step *= int(d)
	}
	b = append(b, '[')
	for k := 0; k < int(dims[0]); k++ {
		if k > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = r.appendDims(b, off+k*step, dims[1:]); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

func (r *tensorRows) appendElem(b []byte, k int) ([]byte, bool) {
	d := r.t.Data
	switch r.t.Dtype {
	case api.DType_DTYPE_INT64:
		return strconv.AppendInt(b, int64(binary.LittleEndian.Uint64(d[8*k:])), 10), true
	case api.DType_DTYPE_FLOAT32:
		return appendFloat(b, float64(math.Float32frombits(binary.LittleEndian.Uint32(d[4*k:]))), 32)
	default:
		return appendFloat(b, math.Float64frombits(binary.LittleEndian.Uint64(d[8*k:])), 64)
	}
}

func appendFloat(b []byte, v float64, bits int) ([]byte, bool) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return b, false
	}
	return strconv.AppendFloat(b, v, 'g', -1, bits), true
}

var _ modelhost.Model = (*model)(nil)
